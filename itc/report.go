package itc

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

// The files WriteReports writes.
const (
	ReportMarkdown = "report.md"
	ReportJUnit    = "junit.xml"
	ReportJSON     = "report.json"
	ReportHTML     = "report.html"
)

// WriteReports writes the run's four reports into dir (made if missing):
// report.md, junit.xml, report.json and report.html. Each file is written
// whole or not at all, so a CI job never picks up half a report.
func WriteReports(dir string, r *Run) error {
	if r == nil {
		return errNoRun
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("itc: report folder: %w", err)
	}
	writers := []struct {
		name  string
		write func(io.Writer, *Run) error
	}{
		{ReportMarkdown, WriteMarkdown},
		{ReportJUnit, WriteJUnit},
		{ReportJSON, WriteJSON},
		{ReportHTML, WriteHTML},
	}
	for _, w := range writers {
		var b bytes.Buffer
		if err := w.write(&b, r); err != nil {
			return fmt.Errorf("itc: %s: %w", w.name, err)
		}
		if err := writeFileAtomic(filepath.Join(dir, w.name), b.Bytes()); err != nil {
			return fmt.Errorf("itc: %s: %w", w.name, err)
		}
	}
	return nil
}

func writeFileAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// WriteJSON writes the run as indented JSON; it decodes back into a Run.
func WriteJSON(w io.Writer, r *Run) error {
	if r == nil {
		return errNoRun
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("itc: run as JSON: %w", err)
	}
	return nil
}

// repStatusOrder is the order totals are given in.
var repStatusOrder = []Status{Passed, Failed, Suspended, NotRun}

// runTotals writes "14 cases: 10 passed, 1 failed, 1 suspended, 2 not run".
func runTotals(r *Run) string {
	counts := r.Counts()
	parts := make([]string, 0, len(repStatusOrder))
	for _, s := range repStatusOrder {
		parts = append(parts, fmt.Sprintf("%d %s", counts[s], statusText(s)))
	}
	noun := "results"
	if len(r.Results) == 1 {
		noun = "result"
	}
	return fmt.Sprintf("%d %s: %s", len(r.Results), noun, strings.Join(parts, ", "))
}

func statusText(s Status) string {
	if s == NotRun {
		return "not run"
	}
	return string(s)
}

// resultMeasures sums a result's assets for the summary tables: overall
// completeness (cycles arrived / recorded) and the worst p99 delay.
func resultMeasures(res *Result) (completeness string, p99 string) {
	cycles, arrived := 0, 0
	var worst time.Duration
	for _, a := range res.Assets {
		cycles += a.Cycles
		arrived += a.Arrived
		worst = max(worst, a.DelayP99)
	}
	if cycles == 0 {
		return "–", "–"
	}
	completeness = strconv.FormatFloat(100*float64(arrived)/float64(cycles), 'f', 1, 64) + " %"
	if arrived == 0 {
		return completeness, "–"
	}
	return completeness, repDelay(worst)
}

// repDelay rounds a delay to what a reader needs: ms below 10 s.
func repDelay(d time.Duration) string {
	if d < 10*time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

func repTime(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// assetDelays formats an asset's delays; none were measured when nothing
// arrived.
func assetDelays(a *AssetResult) (p50, p99, pmax string) {
	if a.Arrived == 0 {
		return "–", "–", "–"
	}
	return repDelay(a.DelayP50), repDelay(a.DelayP99), repDelay(a.DelayMax)
}

// repValue writes a number without trailing noise: 230.1, 12345, 1e-07.
func repValue(v float64) string { return strconv.FormatFloat(v, 'g', 10, 64) }

func repSeriesName(quantity, phase string) string {
	if phase == "" || phase == "total" {
		return quantity
	}
	return quantity + " " + phase
}

// repOneLine makes outside text safe for one table cell or terminal line:
// control characters (escape sequences, newlines) become spaces.
func repOneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
}

// mdCell escapes text for a Markdown table cell.
func mdCell(s string) string {
	s = repOneLine(s)
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '|', '\\', '`', '*', '_', '[', ']', '<', '>':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	if b.Len() == 0 {
		return " "
	}
	return b.String()
}

// WriteMarkdown writes the run as a Markdown report: totals, a summary
// table and, per result, its assets' measures, mismatches and reason.
func WriteMarkdown(w io.Writer, r *Run) error {
	if r == nil {
		return errNoRun
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Integration test run %s\n\n", mdCell(r.ID))
	fmt.Fprintf(&b, "- Platform: %s\n", mdCell(r.Platform))
	fmt.Fprintf(&b, "- Start: %s, end: %s (%s)\n", repTime(r.Start), repTime(r.End), repRunLength(r))
	fmt.Fprintf(&b, "- %s\n\n", runTotals(r))
	b.WriteString("| Case | Name | Site | Status | Completeness | Delay p99 | Reason |\n")
	b.WriteString("|---|---|---|---|---:|---:|---|\n")
	for i := range r.Results {
		res := &r.Results[i]
		c, p := resultMeasures(res)
		fmt.Fprintf(&b, "| %s | %s | %s | %s %s | %s | %s | %s |\n", mdCell(res.Case), mdCell(res.Name),
			mdCell(repSite(res)), statusMark(res.Status), statusText(res.Status), c, p, mdCell(res.Reason))
	}
	for i := range r.Results {
		res := &r.Results[i]
		fmt.Fprintf(&b, "\n## %s %s — %s\n\n", mdCell(res.Case), mdCell(res.Name), mdCell(repSite(res)))
		fmt.Fprintf(&b, "**%s** (%s to %s)", statusText(res.Status), repTime(res.Start), repTime(res.End))
		if res.Reason != "" {
			fmt.Fprintf(&b, ": %s", mdCell(res.Reason))
		}
		b.WriteString("\n")
		if len(res.Assets) == 0 {
			continue
		}
		b.WriteString("\n| Asset | Profile | Cycles | Arrived | Equal | Completeness | Delay p50 | p99 | max |\n")
		b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, a := range res.Assets {
			p50, p99, pmax := assetDelays(&a)
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %.1f %% | %s | %s | %s |\n", mdCell(a.Asset), mdCell(a.Profile),
				a.Cycles, a.Arrived, a.Equal, a.Completeness, p50, p99, pmax)
		}
		for _, a := range res.Assets {
			if len(a.Mismatches) == 0 {
				continue
			}
			fmt.Fprintf(&b, "\nValues that differ, %s:\n\n", mdCell(a.Asset))
			for _, m := range a.Mismatches {
				fmt.Fprintf(&b, "- %s at %s: device %s, platform %s\n", mdCell(repSeriesName(m.Quantity, m.Phase)),
					repTime(m.Time), repValue(m.Device), repValue(m.Platform))
			}
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

func statusMark(s Status) string {
	switch s {
	case Passed:
		return "✅"
	case Failed:
		return "❌"
	case Suspended:
		return "⏸"
	}
	return "➖"
}

func repSite(res *Result) string {
	if res.Site == "" {
		return "all sites"
	}
	return res.Site
}

func repRunLength(r *Run) string {
	if r.Start.IsZero() || r.End.Before(r.Start) {
		return "–"
	}
	return r.End.Sub(r.Start).Round(100 * time.Millisecond).String()
}

// The JUnit XML elements, as the common schema (Jenkins, GitLab, GitHub
// test reporters) has them.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string           `xml:"name,attr"`
	Tests      int              `xml:"tests,attr"`
	Failures   int              `xml:"failures,attr"`
	Errors     int              `xml:"errors,attr"`
	Skipped    int              `xml:"skipped,attr"`
	Time       string           `xml:"time,attr"`
	Timestamp  string           `xml:"timestamp,attr,omitempty"`
	Properties *junitProperties `xml:"properties,omitempty"`
	Cases      []junitCase      `xml:"testcase"`
}

type junitProperties struct {
	Props []junitProp `xml:"property"`
}

type junitProp struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	Skipped   *junitProblem `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the run as JUnit XML for CI systems: one testsuite per
// site, one testcase per case. A failed case carries a <failure>, a
// suspended one an <error> (the case could not be judged), one not run a
// <skipped>; each with the reason as its message.
func WriteJUnit(w io.Writer, r *Run) error {
	if r == nil {
		return errNoRun
	}
	out := junitSuites{Name: "gridlink itc " + xmlText(r.ID)}
	index := map[string]int{}
	var total time.Duration
	for i := range r.Results {
		res := &r.Results[i]
		site := repSite(res)
		si, ok := index[site]
		if !ok {
			si = len(out.Suites)
			index[site] = si
			out.Suites = append(out.Suites, junitSuite{Name: xmlText(site), Properties: &junitProperties{Props: []junitProp{
				{Name: "platform", Value: xmlText(r.Platform)}, {Name: "run", Value: xmlText(r.ID)}}}})
			if !r.Start.IsZero() {
				out.Suites[si].Timestamp = r.Start.UTC().Format("2006-01-02T15:04:05")
			}
		}
		s := &out.Suites[si]
		d := max(res.End.Sub(res.Start), 0)
		if res.Start.IsZero() || res.End.IsZero() {
			d = 0
		}
		total += d
		tc := junitCase{
			Name:      xmlText(res.Case + " " + res.Name),
			Classname: "itc." + xmlText(site),
			Time:      repSeconds(d),
			SystemOut: xmlText(junitDetail(res)),
		}
		reason := xmlText(repOneLine(res.Reason))
		switch res.Status {
		case Passed:
		case Failed:
			tc.Failure = &junitProblem{Message: reason, Type: "failed", Text: xmlText(mismatchText(res))}
			s.Failures++
		case Suspended:
			tc.Error = &junitProblem{Message: reason, Type: "suspended", Text: reason}
			s.Errors++
		default:
			tc.Skipped = &junitProblem{Message: reason}
			s.Skipped++
		}
		s.Tests++
		s.Cases = append(s.Cases, tc)
		s.Time = repSeconds(repSumTime(s.Cases))
	}
	for _, s := range out.Suites {
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Errors += s.Errors
		out.Skipped += s.Skipped
	}
	out.Time = repSeconds(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("itc: run as JUnit XML: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func repSumTime(cases []junitCase) time.Duration {
	var d time.Duration
	for _, c := range cases {
		f, _ := strconv.ParseFloat(c.Time, 64)
		d += time.Duration(f * float64(time.Second))
	}
	return d
}

func repSeconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }

// xmlText drops what XML 1.0 cannot carry at all (most control
// characters, invalid UTF-8): encoding/xml would escape them into
// character references that parsers refuse.
func xmlText(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return r
		case r < 0x20, r == unicode.ReplacementChar, r >= 0xFFFE && r <= 0xFFFF, r >= 0xD800 && r <= 0xDFFF:
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
}

// junitDetail is a result's measures in plain text, for <system-out>.
func junitDetail(res *Result) string {
	var b strings.Builder
	for _, a := range res.Assets {
		fmt.Fprintf(&b, "%s: %d cycles, %d arrived, %d equal, completeness %.1f %%, delay p50 %s p99 %s max %s\n",
			repOneLine(a.Asset), a.Cycles, a.Arrived, a.Equal, a.Completeness, repDelay(a.DelayP50), repDelay(a.DelayP99), repDelay(a.DelayMax))
	}
	return b.String()
}

// mismatchText lists the mismatch examples of a failed result.
func mismatchText(res *Result) string {
	var b strings.Builder
	b.WriteString(repOneLine(res.Reason) + "\n")
	for _, a := range res.Assets {
		for _, m := range a.Mismatches {
			fmt.Fprintf(&b, "%s %s at %s: device %s, platform %s\n", repOneLine(a.Asset), repOneLine(repSeriesName(m.Quantity, m.Phase)),
				repTime(m.Time), repValue(m.Device), repValue(m.Platform))
		}
	}
	return b.String()
}

// Summary writes the run as an aligned table for a terminal, one line per
// result, and the totals.
func Summary(w io.Writer, r *Run) error {
	if r == nil {
		return errNoRun
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tSITE\tSTATUS\tASSETS\tCOMPLETE\tP99\tREASON")
	for i := range r.Results {
		res := &r.Results[i]
		c, p := resultMeasures(res)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", repOneLine(res.Case), repOneLine(repSite(res)), statusText(res.Status),
			len(res.Assets), c, p, repClip(repOneLine(res.Reason), 160))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%s in %s\n", runTotals(r), repRunLength(r))
	return err
}

func repClip(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// errNoRun is returned by the writers for a nil run.
var errNoRun = errors.New("itc: no run to report")
