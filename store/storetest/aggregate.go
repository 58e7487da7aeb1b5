package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
)

var aggregateTests = []test{
	{"Explicit", testAggExplicit},
	{"EpochAlignment", testAggEpoch},
	{"DeltaUnalignedFrom", testAggDeltaUnaligned},
	{"DeltaOverCounterReset", testAggDeltaReset},
	{"Matrix", testAggMatrix},
	{"LateDataAndCorrections", testAggLate},
	{"InvalidArguments", testAggInvalid},
}

// allAggs lists every aggregation.
var allAggs = []store.Agg{
	store.AggAvg, store.AggMin, store.AggMax, store.AggSum,
	store.AggFirst, store.AggLast, store.AggCount, store.AggDelta,
}

// run runs fn as a subtest with its own *testing.T on the same store.
func (f *fixture) run(name string, fn func(f *fixture)) {
	f.t.Run(name, func(t *testing.T) {
		g := *f
		g.t = t
		fn(&g)
	})
}

// expectAggregate compares Aggregate of one series with points written in
// the test.
func (f *fixture) expectAggregate(sel store.Selector, step time.Duration, agg store.Agg, se store.Series, want ...cim.Point) {
	f.t.Helper()
	var w []seriesPoints
	if len(want) > 0 {
		w = []seriesPoints{{S: se, P: want}}
	}
	f.diff(fmt.Sprintf("Aggregate %s step %v %s (explicit)", agg, step, selName(sel)), w, f.aggregate(sel, step, agg), near)
	f.checkAggregate(sel, step, agg)
}

func pt(t int64, v float64) cim.Point { return cim.Point{Time: t, Value: v} }

// testAggExplicit checks values worked out by hand, which also checks the
// suite's reference.
func testAggExplicit(f *fixture) {
	f.write("s", []cim.Reading{
		rd("m1", "energy_import", cim.PhaseTotal, t0-10*minute, 100),
		rd("m1", "energy_import", cim.PhaseTotal, t0+1*minute, 110),
		rd("m1", "energy_import", cim.PhaseTotal, t0+14*minute, 115),
		rd("m1", "energy_import", cim.PhaseTotal, t0+16*minute, 130),
		rd("m1", "energy_import", cim.PhaseTotal, t0+46*minute, 200),
	})
	se := store.Series{Site: "s", SeriesKey: cim.SeriesKey{Asset: "m1", Quantity: "energy_import"}}
	q := 15 * time.Minute
	from := store.Selector{Site: "s", From: t0}
	// The interval at t0+30m is empty and left out.
	f.expectAggregate(from, q, store.AggDelta, se, pt(t0, 15), pt(t0+15*minute, 15), pt(t0+45*minute, 70))
	f.expectAggregate(from, q, store.AggCount, se, pt(t0, 2), pt(t0+15*minute, 1), pt(t0+45*minute, 1))
	f.expectAggregate(from, q, store.AggSum, se, pt(t0, 225), pt(t0+15*minute, 130), pt(t0+45*minute, 200))
	f.expectAggregate(from, q, store.AggAvg, se, pt(t0, 112.5), pt(t0+15*minute, 130), pt(t0+45*minute, 200))
	f.expectAggregate(from, q, store.AggMin, se, pt(t0, 110), pt(t0+15*minute, 130), pt(t0+45*minute, 200))
	f.expectAggregate(from, q, store.AggMax, se, pt(t0, 115), pt(t0+15*minute, 130), pt(t0+45*minute, 200))
	f.expectAggregate(from, q, store.AggFirst, se, pt(t0, 110), pt(t0+15*minute, 130), pt(t0+45*minute, 200))
	f.expectAggregate(from, q, store.AggLast, se, pt(t0, 115), pt(t0+15*minute, 130), pt(t0+45*minute, 200))
	// Delta looks back before From for the value before the first interval.
	f.expectAggregate(store.Selector{Site: "s", From: t0 + 15*minute}, q, store.AggDelta, se, pt(t0+15*minute, 15), pt(t0+45*minute, 70))
	f.expectAggregate(store.Selector{Site: "s", From: t0 + 15*minute, To: t0 + 30*minute}, q, store.AggDelta, se, pt(t0+15*minute, 15))
	// With no earlier point, delta is last minus first of the interval.
	f.expectAggregate(all("s"), q, store.AggDelta, se, pt(t0-15*minute, 0), pt(t0, 15), pt(t0+15*minute, 15), pt(t0+45*minute, 70))
	f.expectAggregate(store.Selector{Site: "s", To: t0 + 15*minute}, q, store.AggDelta, se, pt(t0-15*minute, 0), pt(t0, 15))
	f.expectAggregate(from, time.Hour, store.AggDelta, se, pt(t0, 100))
	f.expectAggregate(from, time.Hour, store.AggCount, se, pt(t0, 4))
	f.expectAggregate(all("s"), 24*time.Hour, store.AggDelta, se, pt(t0-day, 0), pt(t0, 100))
	// 7 minutes: t0 is 5 minutes past an interval start.
	f.expectAggregate(all("s"), 7*time.Minute, store.AggCount, se,
		pt(t0-12*minute, 1), pt(t0-5*minute, 1), pt(t0+9*minute, 1), pt(t0+16*minute, 1), pt(t0+44*minute, 1))
	f.expectAggregate(all("s"), 7*time.Minute, store.AggDelta, se,
		pt(t0-12*minute, 0), pt(t0-5*minute, 10), pt(t0+9*minute, 5), pt(t0+16*minute, 15), pt(t0+44*minute, 70))
	f.expectAggregate(store.Selector{Site: "s", From: t0 + 10*minute, To: t0 + 50*minute}, 7*time.Minute, store.AggDelta, se,
		pt(t0+9*minute, 5), pt(t0+16*minute, 15), pt(t0+44*minute, 70))
}

// testAggEpoch checks that intervals are aligned to the Unix epoch, not to
// From or to the first point.
func testAggEpoch(f *fixture) {
	f.write("s", []cim.Reading{
		rd("m1", "active_power", cim.PhaseTotal, 1000, 1),
		rd("m1", "active_power", cim.PhaseTotal, 419_999, 2),
		rd("m1", "active_power", cim.PhaseTotal, 420_000, 3),
		rd("m1", "active_power", cim.PhaseTotal, 840_001, 4),
		rd("m1", "active_power", cim.PhaseTotal, t0-1, 5),
		rd("m1", "active_power", cim.PhaseTotal, t0, 6),
	})
	se := store.Series{Site: "s", SeriesKey: cim.SeriesKey{Asset: "m1", Quantity: "active_power"}}
	f.expectAggregate(all("s"), 7*time.Minute, store.AggCount, se, pt(0, 2), pt(420_000, 1), pt(840_000, 1), pt(t0-5*minute, 2))
	f.expectAggregate(all("s"), 24*time.Hour, store.AggSum, se, pt(0, 10), pt(t0-day, 5), pt(t0, 6))
	f.expectAggregate(all("s"), time.Hour, store.AggFirst, se, pt(0, 1), pt(t0-hour, 5), pt(t0, 6))
	f.expectAggregate(store.Selector{Site: "s", From: 419_999, To: t0}, 15*time.Minute, store.AggLast, se, pt(0, 4), pt(t0-15*minute, 5))
	f.expectAggregate(store.Selector{Site: "s", From: 2000, To: t0 - 1}, 5*time.Minute, store.AggMin, se, pt(300_000, 2), pt(600_000, 4))
}

// testAggDeltaUnalignedFrom pins down the delta of a partial first interval:
// the value before it is the last point before From, not the last point
// before the interval's start (store.Readings.Aggregate).
func testAggDeltaUnaligned(f *fixture) {
	f.write("s", []cim.Reading{
		rd("m1", "energy_import", cim.PhaseTotal, t0-10*minute, 100),
		rd("m1", "energy_import", cim.PhaseTotal, t0+1*minute, 110),
		rd("m1", "energy_import", cim.PhaseTotal, t0+14*minute, 115),
		rd("m1", "energy_import", cim.PhaseTotal, t0+16*minute, 130),
	})
	se := store.Series{Site: "s", SeriesKey: cim.SeriesKey{Asset: "m1", Quantity: "energy_import"}}
	sel := store.Selector{Site: "s", From: t0 + 5*minute}
	f.expectAggregate(sel, 15*time.Minute, store.AggDelta, se, pt(t0, 5), pt(t0+15*minute, 15))
	f.expectAggregate(sel, time.Hour, store.AggDelta, se, pt(t0, 20))
	f.expectAggregate(sel, 15*time.Minute, store.AggCount, se, pt(t0, 1), pt(t0+15*minute, 1))
	sel = store.Selector{Site: "s", From: t0 + 5*minute, To: t0 + 15*minute + 1}
	f.expectAggregate(sel, 15*time.Minute, store.AggDelta, se, pt(t0, 5))
	sel = store.Selector{Site: "s", From: t0 - 5*minute, To: t0 + 14*minute}
	f.expectAggregate(sel, 15*time.Minute, store.AggDelta, se, pt(t0, 10))
	f.expectAggregate(sel, time.Hour, store.AggDelta, se, pt(t0, 10))
	f.expectAggregate(sel, 7*time.Minute, store.AggDelta, se, pt(t0-5*minute, 10))
}

// testAggDeltaOverReset checks by hand that delta counts a drop as a counter
// reset (restart from zero), also when the drop falls between intervals,
// before From, or arrives late into stored rollups.
func testAggDeltaReset(f *fixture) {
	f.write("s", []cim.Reading{
		rd("m1", "energy_import", cim.PhaseTotal, t0-10*minute, 100),
		rd("m1", "energy_import", cim.PhaseTotal, t0+1*minute, 110),
		rd("m1", "energy_import", cim.PhaseTotal, t0+5*minute, 3), // reset inside an interval
		rd("m1", "energy_import", cim.PhaseTotal, t0+14*minute, 8),
		rd("m1", "energy_import", cim.PhaseTotal, t0+16*minute, 2), // reset at an interval's first point
		rd("m1", "energy_import", cim.PhaseTotal, t0+29*minute, 12),
		rd("m1", "energy_import", cim.PhaseTotal, t0+31*minute, 20),
	})
	se := store.Series{Site: "s", SeriesKey: cim.SeriesKey{Asset: "m1", Quantity: "energy_import"}}
	q := 15 * time.Minute
	from := store.Selector{Site: "s", From: t0}
	// t0: 100→110 (+10), →3 (reset, +3), →8 (+5); t0+15m: 8→2 (reset, +2),
	// →12 (+10); t0+30m: 12→20 (+8).
	f.expectAggregate(from, q, store.AggDelta, se, pt(t0, 18), pt(t0+15*minute, 12), pt(t0+30*minute, 8))
	f.expectAggregate(from, time.Hour, store.AggDelta, se, pt(t0, 38))
	f.expectAggregate(store.Selector{Site: "s", From: t0 + 10*minute}, q, store.AggDelta, se, pt(t0, 5), pt(t0+15*minute, 12), pt(t0+30*minute, 8))
	f.expectAggregate(all("s"), q, store.AggDelta, se, pt(t0-15*minute, 0), pt(t0, 18), pt(t0+15*minute, 12), pt(t0+30*minute, 8))
	f.expectAggregate(all("s"), 7*time.Minute, store.AggDelta, se,
		pt(t0-12*minute, 0), pt(t0-5*minute, 10), pt(t0+2*minute, 3), pt(t0+9*minute, 5), pt(t0+16*minute, 2), pt(t0+23*minute, 10), pt(t0+30*minute, 8))
	// Late points between stored ones: a reset arrives inside an interval
	// already summed, and a point before everything.
	f.write("s", []cim.Reading{
		rd("m1", "energy_import", cim.PhaseTotal, t0+20*minute, 1), // 8→2 (+2), 2→1 (reset, +1), 1→12 (+11)
		rd("m1", "energy_import", cim.PhaseTotal, t0-20*minute, 150),
	})
	f.expectAggregate(from, q, store.AggDelta, se, pt(t0, 18), pt(t0+15*minute, 14), pt(t0+30*minute, 8))
	f.expectAggregate(all("s"), q, store.AggDelta, se, pt(t0-30*minute, 0), pt(t0-15*minute, 100), pt(t0, 18), pt(t0+15*minute, 14), pt(t0+30*minute, 8))
	f.write("s", []cim.Reading{rd("m1", "energy_import", cim.PhaseTotal, t0+20*minute, 5)}) // a correction: 8→2 (+2), 2→5 (+3), 5→12 (+7)
	f.expectAggregate(from, q, store.AggDelta, se, pt(t0, 18), pt(t0+15*minute, 12), pt(t0+30*minute, 8))
	f.write("s", []cim.Reading{rd("m1", "energy_import", cim.PhaseTotal, t0+25*minute, 30)}) // 5→30 (+25), 30→12 (reset, +12)
	f.expectAggregate(from, q, store.AggDelta, se, pt(t0, 18), pt(t0+15*minute, 2+3+25+12), pt(t0+30*minute, 8))
}

// matrixSteps are the steps every aggregation is checked with: multiples of
// the rollup step and steps that are not.
var matrixSteps = []time.Duration{
	time.Minute, 5 * time.Minute, 7 * time.Minute, 15 * time.Minute,
	45 * time.Minute, time.Hour, 2 * time.Hour, 24 * time.Hour,
}

// matrixData writes irregular series with gaps, a counter and dense series.
func (f *fixture) matrixData() {
	r := newRand(7)
	var rs []cim.Reading
	for t := t0 - 12*hour; t < t0+36*hour; {
		rs = append(rs, rd("m1", "active_power", cim.PhaseTotal, t, exactValue(r)))
		switch x := r.IntN(100); {
		case x < 84:
			t += 1 + r.Int64N(minute)
		case x < 99:
			t += minute + r.Int64N(40*minute)
		default:
			t += 3 * hour
		}
	}
	counter := 1000.0
	for t := t0 - 6*hour; t < t0+30*hour; t += 5*minute + r.Int64N(minute) - 30*second {
		if t > t0+10*hour && t < t0+12*hour {
			continue
		}
		counter += float64(r.IntN(100)) / 4
		if r.IntN(60) == 0 {
			counter = float64(r.IntN(100)) / 4 // a reset
		}
		rs = append(rs, rd("m1", "energy_import", cim.PhaseTotal, t, counter))
	}
	for t := t0 + 2*hour; t < t0+8*hour; t += 10 * second {
		rs = append(rs, rd("m2", "voltage", cim.PhaseL1, t, 230+float64(r.IntN(80))/8))
		rs = append(rs, rd("m2", "voltage", cim.PhaseL2, t+r.Int64N(second), 230+float64(r.IntN(80))/8))
	}
	f.write("s", rs)
}

// matrixSelectors are ranges aligned and unaligned to the steps.
var matrixSelectors = []struct {
	name string
	sel  store.Selector
}{
	{"all", store.Selector{Site: "s"}},
	{"aligned", store.Selector{Site: "s", From: t0, To: t0 + day}},
	{"unaligned", store.Selector{Site: "s", From: t0 + 7*minute + 13123, To: t0 + 20*hour + 22*minute + 7}},
	{"to-only", store.Selector{Site: "s", To: t0 + 5*hour + 1}},
	{"inside-one-bucket", store.Selector{Site: "s", From: t0 + 15*minute + 5*second, To: t0 + 25*minute}},
	{"filtered", store.Selector{Site: "s", Asset: "m2", Phase: phase(cim.PhaseL1), From: t0 + 2*hour + 1, To: t0 + 3*hour - 1}},
}

func testAggMatrix(f *fixture) {
	f.matrixData()
	for _, agg := range allAggs {
		for _, step := range matrixSteps {
			for _, s := range matrixSelectors {
				f.run(fmt.Sprintf("%s/%v/%s", agg, step, s.name), func(f *fixture) {
					f.checkAggregate(s.sel, step, agg)
				})
			}
		}
	}
}

// testAggLate aggregates, then writes late points and corrections into
// intervals already aggregated (so into stored rollups), and aggregates
// again.
func testAggLate(f *fixture) {
	r := newRand(8)
	var rs []cim.Reading
	counter := 0.0
	for t := t0; t < t0+4*hour; t += 30 * second {
		counter += float64(r.IntN(40)) / 4
		rs = append(rs,
			rd("m1", "active_power", cim.PhaseTotal, t, exactValue(r)),
			rd("m1", "energy_import", cim.PhaseTotal, t, counter),
			rd("m2", "voltage", cim.PhaseL1, t, 230+float64(r.IntN(80))/8))
	}
	f.write("s", rs)
	check := func(f *fixture) {
		for _, step := range []time.Duration{15 * time.Minute, time.Hour, 7 * time.Minute, 24 * time.Hour} {
			for _, sel := range []store.Selector{
				{Site: "s"},
				{Site: "s", From: t0, To: t0 + 4*hour},
				{Site: "s", From: t0 + 7*minute + 13*second, To: t0 + 3*hour + 20*minute + 7},
			} {
				for _, agg := range allAggs {
					f.checkAggregate(sel, step, agg)
				}
			}
		}
	}
	f.run("before", check)
	late := []cim.Reading{
		rd("m1", "active_power", cim.PhaseTotal, t0, 1e6),                      // first of a bucket
		rd("m1", "active_power", cim.PhaseTotal, t0+14*minute+30*second, -1e6), // last of a bucket
		rd("m1", "active_power", cim.PhaseTotal, t0+20*minute, 2e6),            // new maximum
		rd("m1", "active_power", cim.PhaseTotal, t0+40*minute, -2e6),           // new minimum
		rd("m1", "energy_import", cim.PhaseTotal, t0+14*minute+30*second, 5000),
		rd("m1", "energy_import", cim.PhaseTotal, t0-hour, 0), // before everything
		rd("m2", "voltage", cim.PhaseL1, t0+hour, f.m.series[store.Series{Site: "s", SeriesKey: cim.SeriesKey{Asset: "m2", Quantity: "voltage", Phase: cim.PhaseL1}}][t0+hour]),
	}
	for t := t0 + 90*minute + 7*second; t < t0+2*hour; t += 30 * second {
		late = append(late, rd("m1", "active_power", cim.PhaseTotal, t, exactValue(r)))
		late = append(late, rd("m3", "current", cim.PhaseL2, t, exactValue(r)))
	}
	f.write("s", late)
	f.run("after", check)
	f.checkRead(all("s"))
	f.checkLatest("s")
}

func testAggInvalid(f *fixture) {
	f.filterData()
	for _, c := range []struct {
		step time.Duration
		agg  store.Agg
	}{
		{0, store.AggAvg}, {-15 * time.Minute, store.AggSum}, {15 * time.Minute, "median"}, {time.Hour, ""},
	} {
		calls := 0
		err := f.s.Aggregate(f.ctx, all("s"), c.step, c.agg, func(store.Series, []cim.Point) error {
			calls++
			return nil
		})
		if err == nil || calls > 0 {
			f.t.Errorf("Aggregate with step %v and agg %q: got error %v after %d calls of fn, want an error and no call", c.step, c.agg, err, calls)
		}
	}
}
