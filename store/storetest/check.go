package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
)

// seriesPoints is everything a stream delivered for one series.
type seriesPoints struct {
	S store.Series
	P []cim.Point
}

// maxDiffs caps the differences one comparison reports.
const maxDiffs = 12

// ensure creates the site and the assets that the readings name, once.
func (f *fixture) ensure(site string, rs []cim.Reading) {
	f.t.Helper()
	if !f.made[site] {
		if err := f.s.PutSite(f.ctx, cim.Site{ID: site, Name: "site " + site}); err != nil {
			f.t.Fatalf("PutSite %q: %v", site, err)
		}
		f.made[site] = true
	}
	for _, r := range rs {
		k := site + "\x00" + r.Asset
		if f.made[k] {
			continue
		}
		a := cim.Asset{Site: site, ID: r.Asset, Type: cim.EnergyAsset, Name: "asset " + r.Asset}
		if err := f.s.PutAsset(f.ctx, a); err != nil {
			f.t.Fatalf("PutAsset %q/%q: %v", site, r.Asset, err)
		}
		f.made[k] = true
	}
}

// write stores readings in the store and the model and checks the counts.
func (f *fixture) write(site string, rs []cim.Reading) store.WriteResult {
	f.t.Helper()
	f.ensure(site, rs)
	got, err := f.s.Write(f.ctx, site, rs)
	if err != nil {
		f.t.Fatalf("Write %d readings to site %q: %v", len(rs), site, err)
	}
	if want := f.m.write(site, rs); got != want {
		f.t.Errorf("Write %d readings to site %q: got %+v, want %+v", len(rs), site, got, want)
	}
	return got
}

// expectResult checks a result against numbers written in the test, which
// also checks the model.
func (f *fixture) expectResult(got store.WriteResult, accepted, duplicate, corrected int) {
	f.t.Helper()
	if want := (store.WriteResult{Accepted: accepted, Duplicate: duplicate, Corrected: corrected}); got != want {
		f.t.Errorf("Write: got %+v, want %+v", got, want)
	}
}

// stream calls Read or Aggregate, checks the streaming rules (series in
// order and never interleaved, points ascending, every series picked by the
// selector) and returns what was delivered.
func (f *fixture) stream(what string, sel store.Selector, call func(ctx context.Context, fn store.SeriesFunc) error) []seriesPoints {
	f.t.Helper()
	var out []seriesPoints
	bad := 0
	report := func(format string, args ...any) {
		if bad++; bad <= maxDiffs {
			f.t.Errorf(what+": "+format, args...)
		}
	}
	err := call(f.ctx, func(s store.Series, pts []cim.Point) error {
		if len(pts) == 0 {
			return nil
		}
		if !sel.Match(s) {
			report("delivered %s, which the selector does not pick", seriesName(s))
		}
		for i := 1; i < len(pts); i++ {
			if pts[i].Time <= pts[i-1].Time {
				report("%s: point at %s follows %s in one block", seriesName(s), fmtTime(pts[i].Time), fmtTime(pts[i-1].Time))
			}
		}
		n := len(out)
		if n > 0 && out[n-1].S == s {
			if last := out[n-1].P[len(out[n-1].P)-1]; pts[0].Time <= last.Time {
				report("%s: block starting at %s follows a block ending at %s", seriesName(s), fmtTime(pts[0].Time), fmtTime(last.Time))
			}
			out[n-1].P = append(out[n-1].P, pts...)
			return nil
		}
		if n > 0 && compareSeries(out[n-1].S, s) >= 0 {
			report("%s delivered after %s: series out of order or interleaved", seriesName(s), seriesName(out[n-1].S))
		}
		out = append(out, seriesPoints{S: s, P: slices.Clone(pts)})
		return nil
	})
	if err != nil && !(errors.Is(err, store.ErrNotFound) && !f.m.hasData(sel.Site)) {
		f.t.Fatalf("%s: %v", what, err)
	}
	return out
}

// read calls Read.
func (f *fixture) read(sel store.Selector) []seriesPoints {
	f.t.Helper()
	return f.stream("Read "+selName(sel), sel, func(ctx context.Context, fn store.SeriesFunc) error {
		return f.s.Read(ctx, sel, fn)
	})
}

// aggregate calls Aggregate.
func (f *fixture) aggregate(sel store.Selector, step time.Duration, agg store.Agg) []seriesPoints {
	f.t.Helper()
	return f.stream(fmt.Sprintf("Aggregate %s step %v %s", agg, step, selName(sel)), sel, func(ctx context.Context, fn store.SeriesFunc) error {
		return f.s.Aggregate(ctx, sel, step, agg, fn)
	})
}

// checkRead compares Read with the model.
func (f *fixture) checkRead(sel store.Selector) {
	f.t.Helper()
	f.diff("Read "+selName(sel), f.m.read(sel), f.read(sel), exact)
}

// checkAggregate compares Aggregate with the model.
func (f *fixture) checkAggregate(sel store.Selector, step time.Duration, agg store.Agg) {
	f.t.Helper()
	want := f.m.aggregate(sel, step.Milliseconds(), agg)
	got := f.aggregate(sel, step, agg)
	f.diff(fmt.Sprintf("Aggregate %s step %v %s", agg, step, selName(sel)), want, got, near)
}

// checkLatest compares Latest with the model.
func (f *fixture) checkLatest(site string) {
	f.t.Helper()
	got, err := f.s.Latest(f.ctx, site)
	if errors.Is(err, store.ErrNotFound) && !f.m.hasData(site) {
		err = nil
	}
	if err != nil {
		f.t.Fatalf("Latest %q: %v", site, err)
	}
	want := f.m.latest(site)
	bad := 0
	report := func(format string, args ...any) {
		if bad++; bad <= maxDiffs {
			f.t.Errorf("Latest %q: "+format, append([]any{site}, args...)...)
		}
	}
	for i := 1; i < len(got); i++ {
		if compareSeries(got[i-1].Series, got[i].Series) >= 0 {
			report("%s listed after %s: out of order or twice", seriesName(got[i].Series), seriesName(got[i-1].Series))
		}
	}
	byS := make(map[store.Series]cim.Point, len(got))
	for _, lp := range got {
		byS[lp.Series] = lp.Point
	}
	for _, w := range want {
		g, ok := byS[w.Series]
		switch {
		case !ok:
			report("%s missing, want %s", seriesName(w.Series), fmtPoint(w.Point))
		case g.Time != w.Time || g.Value != w.Value:
			report("%s: got %s, want %s", seriesName(w.Series), fmtPoint(g), fmtPoint(w.Point))
		}
		delete(byS, w.Series)
	}
	for _, lp := range got {
		if _, extra := byS[lp.Series]; extra {
			report("unexpected %s: %s", seriesName(lp.Series), fmtPoint(lp.Point))
		}
	}
	if bad > maxDiffs {
		f.t.Errorf("Latest %q: ... and %d more differences", site, bad-maxDiffs)
	}
}

// diff reports every difference between what a stream should and did
// deliver, naming series, time and values.
func (f *fixture) diff(what string, want, got []seriesPoints, eq func(a, b float64) bool) {
	f.t.Helper()
	var msgs []string
	gotBy := make(map[store.Series][]cim.Point, len(got))
	for _, sp := range got {
		gotBy[sp.S] = sp.P
	}
	wantBy := make(map[store.Series]bool, len(want))
	for _, w := range want {
		wantBy[w.S] = true
		g, ok := gotBy[w.S]
		if !ok {
			msgs = append(msgs, fmt.Sprintf("%s missing: want %d points from %s", seriesName(w.S), len(w.P), fmtPoint(w.P[0])))
			continue
		}
		msgs = append(msgs, diffPoints(seriesName(w.S), w.P, g, eq)...)
	}
	for _, sp := range got {
		if !wantBy[sp.S] {
			msgs = append(msgs, fmt.Sprintf("unexpected %s: %d points from %s", seriesName(sp.S), len(sp.P), fmtPoint(sp.P[0])))
		}
	}
	for i, m := range msgs {
		if i == maxDiffs {
			f.t.Errorf("%s: ... and %d more differences", what, len(msgs)-maxDiffs)
			break
		}
		f.t.Errorf("%s: %s", what, m)
	}
}

func diffPoints(name string, want, got []cim.Point, eq func(a, b float64) bool) []string {
	var msgs []string
	i, j := 0, 0
	for (i < len(want) || j < len(got)) && len(msgs) <= maxDiffs {
		switch {
		case j == len(got) || (i < len(want) && want[i].Time < got[j].Time):
			msgs = append(msgs, fmt.Sprintf("%s: missing point at %s, want value %v", name, fmtTime(want[i].Time), want[i].Value))
			i++
		case i == len(want) || got[j].Time < want[i].Time:
			msgs = append(msgs, fmt.Sprintf("%s: unexpected point at %s with value %v", name, fmtTime(got[j].Time), got[j].Value))
			j++
		default:
			if !eq(want[i].Value, got[j].Value) {
				msgs = append(msgs, fmt.Sprintf("%s at %s: got %v, want %v", name, fmtTime(want[i].Time), got[j].Value, want[i].Value))
			}
			i++
			j++
		}
	}
	return msgs
}

func exact(a, b float64) bool { return a == b }

// near compares computed values: equal, or within 1e-9 relative.
func near(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-9*max(math.Abs(a), math.Abs(b))
}

func seriesName(s store.Series) string {
	return fmt.Sprintf("series site=%q asset=%q quantity=%q phase=%s", s.Site, s.Asset, s.Quantity, s.Phase)
}

func selName(sel store.Selector) string {
	var b strings.Builder
	fmt.Fprintf(&b, "site=%q", sel.Site)
	if sel.Asset != "" {
		fmt.Fprintf(&b, " asset=%q", sel.Asset)
	}
	if sel.Quantity != "" {
		fmt.Fprintf(&b, " quantity=%q", sel.Quantity)
	}
	if sel.Phase != nil {
		fmt.Fprintf(&b, " phase=%s", *sel.Phase)
	}
	to := "∞"
	if sel.To != 0 {
		to = fmtTime(sel.To)
	}
	fmt.Fprintf(&b, " [%s, %s)", fmtTime(sel.From), to)
	return b.String()
}

func fmtTime(ms int64) string {
	return fmt.Sprintf("%d (%s)", ms, cim.TimeOf(ms).Format("2006-01-02T15:04:05.000Z"))
}

func fmtPoint(p cim.Point) string {
	return fmt.Sprintf("%v at %s", p.Value, fmtTime(p.Time))
}
