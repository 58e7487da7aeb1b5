// Package rollup summarises the points of an interval so that aggregates
// over longer intervals can be combined from stored summaries instead of raw
// points.
package rollup

import (
	"math"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
)

// Rollup summarises the points of one interval of one series.
type Rollup struct {
	N             int64
	Sum, Min, Max float64
	FirstT        int64
	First         float64
	LastT         int64
	Last          float64
	// Inc is the counter's increase from First to Last: the sum of
	// Increase over each pair of neighbouring points.
	Inc float64
}

// Increase is how much a cumulative counter grew from one reading to the
// next. A drop is a reset (a meter replaced, a register that overflowed or
// was cleared): the counter restarted from zero, so it grew by the new
// value. Summing Increase never gives negative energy over a reset.
func Increase(from, to float64) float64 {
	if to < from {
		return to
	}
	return to - from
}

// Add folds one point in. Points must come in ascending time order, as Inc
// follows the series from point to point.
func (r *Rollup) Add(p cim.Point) {
	r.Merge(Rollup{N: 1, Sum: p.Value, Min: p.Value, Max: p.Value, FirstT: p.Time, First: p.Value, LastT: p.Time, Last: p.Value})
}

// Merge folds in the summary of the points that follow r's.
func (r *Rollup) Merge(o Rollup) {
	if o.N == 0 {
		return
	}
	if r.N == 0 {
		*r = o
		return
	}
	r.N += o.N
	r.Sum += o.Sum
	r.Min = math.Min(r.Min, o.Min)
	r.Max = math.Max(r.Max, o.Max)
	r.Inc += Increase(r.Last, o.First) + o.Inc
	r.LastT, r.Last = o.LastT, o.Last
}

// Value gives the aggregate. For store.AggDelta, prev is the series' last
// value before the interval and hasPrev says whether there is one: the
// increase from it to the interval's first point counts too.
func (r Rollup) Value(agg store.Agg, prev float64, hasPrev bool) float64 {
	switch agg {
	case store.AggAvg:
		return r.Sum / float64(r.N)
	case store.AggMin:
		return r.Min
	case store.AggMax:
		return r.Max
	case store.AggSum:
		return r.Sum
	case store.AggFirst:
		return r.First
	case store.AggLast:
		return r.Last
	case store.AggCount:
		return float64(r.N)
	case store.AggDelta:
		if hasPrev {
			return Increase(prev, r.First) + r.Inc
		}
		return r.Inc
	}
	return math.NaN()
}

// Floor aligns t down to a multiple of step (both in ms), also for negative t.
func Floor(t, step int64) int64 {
	b := t - t%step
	if t%step < 0 {
		b -= step
	}
	return b
}

// Whole returns the span [lo, hi) of the whole intervals of length step
// inside [from, to); to == math.MaxInt64 means no upper bound. ok is false
// when no whole interval fits.
func Whole(from, to, step int64) (lo, hi int64, ok bool) {
	lo = Floor(from, step)
	if lo < from {
		lo += step
	}
	hi = to
	if to != math.MaxInt64 {
		hi = Floor(to, step)
	}
	return lo, hi, lo < hi
}
