package itc

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 10, 1, 10, 0, 0, 0, time.UTC)

func series(quantity, unit string, n int, dev, plat func(i int) float64) PlotSeries {
	s := PlotSeries{Quantity: quantity, Phase: "total", Unit: unit}
	for i := range n {
		ms := t0.Add(time.Duration(i) * time.Second).UnixMilli()
		s.Device = append(s.Device, PlotPoint{T: ms, V: dev(i)})
		if plat != nil {
			s.Platform = append(s.Platform, PlotPoint{T: ms, V: plat(i)})
		}
	}
	return s
}

// sampleRun has one result of each status, over three sites and none,
// with text that must be escaped everywhere.
func sampleRun() *Run {
	volts := func(i int) float64 { return 230 + float64(i%5)/10 }
	return &Run{
		ID: "run-1", Platform: "http://127.0.0.1:8080", Start: t0, End: t0.Add(25 * time.Second),
		Results: []Result{
			{Case: "ITC1.01", Name: "Smart Meter Integration", Site: "bristol", Status: Passed,
				Start: t0, End: t0.Add(20 * time.Second),
				Assets: []AssetResult{{Asset: "house-01/meter", Profile: "emonpi", Cycles: 20, Arrived: 20, Equal: 20,
					Completeness: 100, DelayP50: 120 * time.Millisecond, DelayP99: 340 * time.Millisecond, DelayMax: 400 * time.Millisecond,
					Series: []PlotSeries{series("voltage", "V", 20, volts, volts)}}}},
			{Case: "ITC1.01", Name: "Smart Meter Integration", Site: "athens", Status: Failed,
				Reason: "house-01/meter voltage at 10:00:03Z: device 230.3 V, platform 2303 V | scale <b>×10</b>",
				Start:  t0, End: t0.Add(20 * time.Second),
				Assets: []AssetResult{{Asset: "house-01/meter", Profile: "qubino-3ph", Cycles: 20, Arrived: 19, Equal: 0,
					Completeness: 95, DelayP50: time.Second, DelayP99: 2 * time.Second, DelayMax: 3 * time.Second,
					Mismatches: []Mismatch{{Quantity: "voltage", Phase: "total", Time: t0.Add(3 * time.Second), Device: 230.3, Platform: 2303}},
					Series:     []PlotSeries{series("voltage", "V", 19, volts, func(i int) float64 { return 10 * volts(i) })}}}},
			{Case: "ITC2.01", Name: "Charging Point Integration", Site: "steinheim", Status: Suspended,
				Reason: "no reading of cp-01 reached the platform within 30s\x1b[31m",
				Start:  t0, End: t0.Add(30 * time.Second),
				Assets: []AssetResult{{Asset: "cp-01", Cycles: 10}}},
			{Case: "ITC9.01", Name: "Physiological Sensor - HEMS Integration", Status: NotRun,
				Reason: "no physiological_sensor with a device truth on sites athens, bristol <script>alert(1)</script>"},
		},
	}
}

func TestWriteJSONRoundTrips(t *testing.T) {
	r := sampleRun()
	var b bytes.Buffer
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	var back Run
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, r) {
		t.Errorf("round trip differs:\n%+v\n%+v", back, *r)
	}
}

type jProblem struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

func TestWriteJUnit(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJUnit(&b, sampleRun()); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "<?xml") {
		t.Errorf("no XML declaration: %.40s", b.String())
	}
	var got struct {
		XMLName  xml.Name `xml:"testsuites"`
		Tests    int      `xml:"tests,attr"`
		Failures int      `xml:"failures,attr"`
		Errors   int      `xml:"errors,attr"`
		Skipped  int      `xml:"skipped,attr"`
		Suites   []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Errors   int    `xml:"errors,attr"`
			Skipped  int    `xml:"skipped,attr"`
			Time     string `xml:"time,attr"`
			Cases    []struct {
				Name      string    `xml:"name,attr"`
				Classname string    `xml:"classname,attr"`
				Time      string    `xml:"time,attr"`
				Failure   *jProblem `xml:"failure"`
				Error     *jProblem `xml:"error"`
				Skipped   *jProblem `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("not XML: %v\n%s", err, b.String())
	}
	if got.Tests != 4 || got.Failures != 1 || got.Errors != 1 || got.Skipped != 1 {
		t.Errorf("counts tests %d failures %d errors %d skipped %d, want 4 1 1 1", got.Tests, got.Failures, got.Errors, got.Skipped)
	}
	var names []string
	for _, s := range got.Suites {
		names = append(names, s.Name)
		if s.Tests != len(s.Cases) {
			t.Errorf("suite %s: tests=%d for %d cases", s.Name, s.Tests, len(s.Cases))
		}
	}
	if want := []string{"bristol", "athens", "steinheim", "all sites"}; !reflect.DeepEqual(names, want) {
		t.Errorf("suites %v, want one per site %v", names, want)
	}
	pass := got.Suites[0].Cases[0]
	if pass.Name != "ITC1.01 Smart Meter Integration" || pass.Time != "20.000" || pass.Failure != nil || pass.Skipped != nil || pass.Error != nil {
		t.Errorf("passed case %+v", pass)
	}
	fail := got.Suites[1].Cases[0].Failure
	if fail == nil || !strings.Contains(fail.Message, "device 230.3 V, platform 2303 V") ||
		!strings.Contains(fail.Text, "voltage at 2025-10-01 10:00:03Z: device 230.3, platform 2303") {
		t.Errorf("failure %+v", fail)
	}
	if e := got.Suites[2].Cases[0].Error; e == nil || !strings.Contains(e.Message, "within 30s") || strings.ContainsRune(e.Message, 0x1b) {
		t.Errorf("suspended case's error %+v", e)
	}
	if s := got.Suites[3].Cases[0].Skipped; s == nil || !strings.Contains(s.Message, "no physiological_sensor") {
		t.Errorf("not run case's skip %+v", s)
	}
}

func TestWriteMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := WriteMarkdown(&b, sampleRun()); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"# Integration test run run-1",
		"4 results: 1 passed, 1 failed, 1 suspended, 1 not run",
		"| Case | Name | Site | Status |",
		"| ITC1.01 | Smart Meter Integration | athens | ❌ failed | 95.0 % | 2s |",
		`platform 2303 V \| scale \<b\>×10\</b\>`,
		"| house-01/meter | qubino-3ph | 20 | 19 | 0 | 95.0 % | 1s | 2s | 3s |",
		"- voltage at 2025-10-01 10:00:03Z: device 230.3, platform 2303",
		"## ITC9.01 Physiological Sensor - HEMS Integration — all sites",
		"**not run**",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q", want)
		}
	}
	// Every table row has as many cells as its header.
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "| ITC") {
			if n := len(regexp.MustCompile(`(^|[^\\])\|`).FindAllString(l, -1)); n != 8 {
				t.Errorf("row with %d separators: %s", n, l)
			}
		}
	}
	if strings.ContainsRune(md, 0x1b) {
		t.Error("an escape character reached the report")
	}
}

func TestWriteHTML(t *testing.T) {
	var b bytes.Buffer
	if err := WriteHTML(&b, sampleRun()); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{
		"<!DOCTYPE html>", "<title>gridlink ITC run run-1</title>",
		"4 results: 1 passed, 1 failed, 1 suspended, 1 not run",
		`<td class="failed">failed</td>`, `<td class="not_run">not run</td>`,
		"&lt;script&gt;alert(1)&lt;/script&gt;",
		"voltage at 2025-10-01 10:00:03Z: device 230.3, platform 2303",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// Self-contained: no script, nothing fetched from elsewhere.
	for _, bad := range []string{"<script", "src=", "<link", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("page holds %q", bad)
		}
	}
	// Each plot is well-formed SVG with the device line, the platform dots
	// and the axes (times, unit).
	svgs := regexp.MustCompile(`(?s)<svg .*?</svg>`).FindAllString(page, -1)
	if len(svgs) != 2 {
		t.Fatalf("%d plots, want 2 (one series per asset with values)", len(svgs))
	}
	type svgDoc struct {
		Polyline []struct {
			Points string `xml:"points,attr"`
		} `xml:"polyline"`
		Circle []struct {
			Class string `xml:"class,attr"`
		} `xml:"circle"`
		Text []string `xml:"text"`
	}
	for i, want := range []struct{ dots, off int }{{20, 0}, {19, 19}} {
		var doc svgDoc
		if err := xml.Unmarshal([]byte(svgs[i]), &doc); err != nil {
			t.Fatalf("plot %d is not well-formed: %v\n%s", i, err, svgs[i])
		}
		// A step per cycle: two corners per device value.
		if len(doc.Polyline) != 1 || len(strings.Fields(doc.Polyline[0].Points)) != 2*want.dots {
			t.Errorf("plot %d: device line %+v", i, doc.Polyline)
		}
		off := 0
		for _, c := range doc.Circle {
			if strings.Contains(c.Class, "off") {
				off++
			}
		}
		if len(doc.Circle) != want.dots || off != want.off {
			t.Errorf("plot %d: %d dots, %d off; want %d, %d", i, len(doc.Circle), off, want.dots, want.off)
		}
		texts := strings.Join(doc.Text, "|")
		for _, w := range []string{"10:00:00", "10:00:10", "time (UTC)", "|V|", "voltage"} {
			if !strings.Contains(texts, w) {
				t.Errorf("plot %d: axis texts %q lack %q", i, texts, w)
			}
		}
	}
}

func TestSummary(t *testing.T) {
	var b bytes.Buffer
	if err := Summary(&b, sampleRun()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines, want a header, 4 results and totals:\n%s", len(lines), b.String())
	}
	// The columns line up: STATUS starts at the same column on every row.
	col := strings.Index(lines[0], "STATUS")
	for _, l := range lines[1:5] {
		st := l[col:]
		if !strings.HasPrefix(st, "passed") && !strings.HasPrefix(st, "failed") && !strings.HasPrefix(st, "suspended") && !strings.HasPrefix(st, "not run") {
			t.Errorf("status not at column %d: %q", col, l)
		}
	}
	if !strings.HasPrefix(lines[2], "ITC1.01  athens") || !strings.Contains(lines[2], "95.0 %") {
		t.Errorf("failed row %q", lines[2])
	}
	if lines[5] != "4 results: 1 passed, 1 failed, 1 suspended, 1 not run in 25s" {
		t.Errorf("totals %q", lines[5])
	}
	if strings.ContainsRune(b.String(), 0x1b) {
		t.Error("an escape sequence from a reason reached the terminal")
	}
}

func TestWriteReports(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	r := sampleRun()
	if err := WriteReports(dir, r); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{ReportJUnit, ReportHTML, ReportJSON, ReportMarkdown}; !reflect.DeepEqual(names, want) {
		t.Errorf("files %v, want %v and nothing else", names, want)
	}
	data, err := os.ReadFile(filepath.Join(dir, ReportJSON))
	if err != nil {
		t.Fatal(err)
	}
	var back Run
	if err := json.Unmarshal(data, &back); err != nil || back.ID != r.ID || len(back.Results) != 4 {
		t.Errorf("report.json: %v, %+v", err, back)
	}
	for name, w := range map[string]func(io.Writer, *Run) error{"md": WriteMarkdown, "junit": WriteJUnit, "json": WriteJSON, "html": WriteHTML, "summary": Summary} {
		if err := w(io.Discard, nil); !errors.Is(err, errNoRun) {
			t.Errorf("%s of nil run: %v", name, err)
		}
	}
}

func TestEmptyRun(t *testing.T) {
	r := &Run{ID: "empty"}
	for name, w := range map[string]func(io.Writer, *Run) error{"md": WriteMarkdown, "junit": WriteJUnit, "json": WriteJSON, "html": WriteHTML, "summary": Summary} {
		var b bytes.Buffer
		if err := w(&b, r); err != nil || b.Len() == 0 {
			t.Errorf("%s: %v, %d bytes", name, err, b.Len())
		}
	}
}

func TestPlotAxes(t *testing.T) {
	if got := niceTicks(0, 9.7, 5); !reflect.DeepEqual(got, []float64{0, 2, 4, 6, 8, 10}) {
		t.Errorf("niceTicks(0, 9.7) = %v", got)
	}
	if got := niceTicks(0.1, 0.35, 5); !reflect.DeepEqual(got, []float64{0.1, 0.15, 0.2, 0.25, 0.3, 0.35}) {
		t.Errorf("niceTicks(0.1, 0.35) = %v", got)
	}
	ms := t0.UnixMilli()
	if got := timeTicks(ms+300, ms+20_000, 5); len(got) != 4 || got[0] != ms+5000 {
		t.Errorf("timeTicks over 20 s = %v", got)
	}
	// One point, a flat line, NaN and a long series still give a plot.
	p := layoutPlot(PlotSeries{Quantity: "q", Unit: "W", Device: []PlotPoint{{T: ms, V: 5}}})
	if len(p.YTicks) < 2 || len(p.XTicks) == 0 || p.Line == "" {
		t.Errorf("one point: %+v", p)
	}
	long := series("q", "W", 5000, func(i int) float64 { return float64(i) }, nil)
	long.Device = append(long.Device, PlotPoint{T: ms, V: nanValue()})
	if p := layoutPlot(long); len(strings.Fields(p.Line)) > 2*(htmlMaxPoints+1) || strings.Contains(p.Line, "NaN") {
		t.Errorf("long series: %d points", len(strings.Fields(p.Line)))
	}
}

func nanValue() float64 { return math.NaN() }

func benchRun() *Run {
	r := &Run{ID: "bench", Platform: "http://p", Start: t0, End: t0.Add(time.Minute)}
	v := func(i int) float64 { return 1000 + float64(i) }
	for i := range 18 {
		res := Result{Case: "ITC1.01", Name: "Smart Meter Integration", Site: "bristol", Status: Passed, Start: t0, End: t0.Add(20 * time.Second)}
		if i%3 == 0 {
			res.Status, res.Reason = Failed, "values differ"
		}
		for range 3 {
			res.Assets = append(res.Assets, AssetResult{Asset: "house-01/meter", Cycles: 200, Arrived: 200, Equal: 200, Completeness: 100,
				Series: []PlotSeries{series("power_active", "W", 200, v, v), series("energy_active_import", "Wh", 200, v, v)}})
		}
		r.Results = append(r.Results, res)
	}
	return r
}

func BenchmarkWriteHTML(b *testing.B) {
	r := benchRun()
	for b.Loop() {
		if err := WriteHTML(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteJUnit(b *testing.B) {
	r := benchRun()
	for b.Loop() {
		if err := WriteJUnit(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzReportText feeds outside text (asset ids, reasons, units come from
// the platform and the devices) to the writers: JUnit must stay parseable
// XML, the HTML page must never carry it as markup, the JSON must round-trip.
func FuzzReportText(f *testing.F) {
	f.Add("house-01/meter", "device 1, platform 2", "V")
	f.Add("<script>", "]]>\x00\x1b[31m\ufffe", "\"'&")
	f.Add("\xff\xfe", "|*_`", "")
	f.Fuzz(func(t *testing.T, asset, reason, unit string) {
		r := sampleRun()
		r.Results[1].Reason = reason
		r.Results[1].Assets[0].Asset = asset
		r.Results[1].Assets[0].Series[0].Unit = unit
		r.Results[3].Reason = reason
		var b bytes.Buffer
		if err := WriteJUnit(&b, r); err != nil {
			t.Fatal(err)
		}
		dec := xml.NewDecoder(&b)
		for {
			if _, err := dec.Token(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("JUnit not XML with reason %q: %v", reason, err)
			}
		}
		b.Reset()
		if err := WriteHTML(&b, r); err != nil {
			t.Fatal(err)
		}
		if strings.Count(b.String(), "<script") != 0 {
			t.Fatalf("markup from outside text reached the page")
		}
		b.Reset()
		if err := WriteJSON(&b, r); err != nil {
			t.Fatal(err)
		}
		if err := Summary(io.Discard, r); err != nil {
			t.Fatal(err)
		}
	})
}
