package storetest

import (
	"cmp"
	"maps"
	"slices"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
)

// model is the suite's reference of what a store holds: every point of
// every series, and the rules of the contract computed the obvious way.
type model struct {
	series map[store.Series]map[int64]float64
}

func newModel() *model {
	return &model{series: make(map[store.Series]map[int64]float64)}
}

// write applies readings one after another and counts what each did.
func (m *model) write(site string, rs []cim.Reading) store.WriteResult {
	var res store.WriteResult
	for _, r := range rs {
		se := store.Series{Site: site, SeriesKey: r.SeriesKey}
		pts := m.series[se]
		if pts == nil {
			pts = make(map[int64]float64)
			m.series[se] = pts
		}
		old, ok := pts[r.Time]
		switch {
		case !ok:
			res.Accepted++
		case old == r.Value:
			res.Duplicate++
		default:
			res.Corrected++
		}
		pts[r.Time] = r.Value
	}
	return res
}

// hasData reports whether any reading of the site was written.
func (m *model) hasData(site string) bool {
	for se := range m.series {
		if se.Site == site {
			return true
		}
	}
	return false
}

// points returns the series' points in time order.
func (m *model) points(se store.Series) []cim.Point {
	pts := m.series[se]
	out := make([]cim.Point, 0, len(pts))
	for _, t := range slices.Sorted(maps.Keys(pts)) {
		out = append(out, cim.Point{Time: t, Value: pts[t]})
	}
	return out
}

// selected returns the series the selector picks, in contract order.
func (m *model) selected(sel store.Selector) []store.Series {
	var out []store.Series
	for se := range m.series {
		if sel.Match(se) {
			out = append(out, se)
		}
	}
	slices.SortFunc(out, compareSeries)
	return out
}

// read is what Read must deliver.
func (m *model) read(sel store.Selector) []seriesPoints {
	var out []seriesPoints
	for _, se := range m.selected(sel) {
		var pts []cim.Point
		for _, p := range m.points(se) {
			if inRange(p.Time, sel.From, sel.To) {
				pts = append(pts, p)
			}
		}
		if len(pts) > 0 {
			out = append(out, seriesPoints{se, pts})
		}
	}
	return out
}

// aggregate is what Aggregate must deliver.
func (m *model) aggregate(sel store.Selector, step int64, agg store.Agg) []seriesPoints {
	var out []seriesPoints
	for _, se := range m.selected(sel) {
		if pts := aggregatePoints(m.points(se), sel.From, sel.To, step, agg); len(pts) > 0 {
			out = append(out, seriesPoints{se, pts})
		}
	}
	return out
}

// latest is what Latest must return.
func (m *model) latest(site string) []store.LatestPoint {
	var out []store.LatestPoint
	for _, se := range m.selected(store.Selector{Site: site}) {
		pts := m.points(se)
		if len(pts) > 0 {
			out = append(out, store.LatestPoint{Series: se, Point: pts[len(pts)-1]})
		}
	}
	return out
}

// aggregatePoints computes the aggregate of one series from its raw points
// (all of them, in time order), the reference for every driver: points
// outside [from, to) do not count, intervals are aligned to the epoch, empty
// intervals are left out, and the delta of an interval is its last value
// minus the last value before its first counted instant (the previous
// interval's last value, or the last point before from), or minus its first
// value when the series has no earlier point, plus the value before each
// drop (a counter reset) on the way.
func aggregatePoints(all []cim.Point, from, to, step int64, agg store.Agg) []cim.Point {
	i, _ := slices.BinarySearchFunc(all, from, func(p cim.Point, t int64) int { return cmp.Compare(p.Time, t) })
	var prev float64
	hasPrev := i > 0
	if hasPrev {
		prev = all[i-1].Value
	}
	var out []cim.Point
	for i < len(all) && inRange(all[i].Time, from, to) {
		start := floorDiv(all[i].Time, step) * step
		j := i
		for j < len(all) && inRange(all[j].Time, from, to) && all[j].Time < start+step {
			j++
		}
		g := all[i:j]
		out = append(out, cim.Point{Time: start, Value: aggregateValue(g, agg, prev, hasPrev)})
		prev, hasPrev = g[len(g)-1].Value, true
		i = j
	}
	return out
}

func aggregateValue(g []cim.Point, agg store.Agg, prev float64, hasPrev bool) float64 {
	first, last := g[0].Value, g[len(g)-1].Value
	switch agg {
	case store.AggAvg, store.AggSum:
		var sum float64
		for _, p := range g {
			sum += p.Value
		}
		if agg == store.AggAvg {
			return sum / float64(len(g))
		}
		return sum
	case store.AggMin, store.AggMax:
		v := first
		for _, p := range g {
			if agg == store.AggMin {
				v = min(v, p.Value)
			} else {
				v = max(v, p.Value)
			}
		}
		return v
	case store.AggFirst:
		return first
	case store.AggLast:
		return last
	case store.AggCount:
		return float64(len(g))
	case store.AggDelta:
		// last - start, plus what each reset took away: at a drop from a
		// to b the counter restarted from zero, so it grew by b, not b - a.
		start, vs := first, make([]float64, 0, len(g)+1)
		if hasPrev {
			start, vs = prev, append(vs, prev)
		}
		for _, p := range g {
			vs = append(vs, p.Value)
		}
		d := last - start
		for k := 1; k < len(vs); k++ {
			if vs[k] < vs[k-1] {
				d += vs[k-1]
			}
		}
		return d
	}
	panic("storetest: unknown aggregation " + string(agg))
}

func inRange(t, from, to int64) bool {
	return t >= from && (to == 0 || t < to)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// compareSeries orders series of one site as the contract does.
func compareSeries(a, b store.Series) int {
	return cmp.Or(
		cmp.Compare(a.Site, b.Site),
		cmp.Compare(a.Asset, b.Asset),
		cmp.Compare(a.Quantity, b.Quantity),
		cmp.Compare(a.Phase, b.Phase),
	)
}
