package memstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/rollup"
)

// Write implements store.Readings. Readings are applied one after another,
// each counted against the value stored at that moment.
func (s *Store) Write(ctx context.Context, site string, readings []cim.Reading) (store.WriteResult, error) {
	var res store.WriteResult
	if err := ctx.Err(); err != nil {
		return res, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range readings {
		se := store.Series{Site: site, SeriesKey: r.SeriesKey}
		pts := s.series[se]
		i, found := slices.BinarySearchFunc(pts, r.Time, byTime)
		switch {
		case !found:
			s.series[se] = slices.Insert(pts, i, r.Point)
			res.Accepted++
		case pts[i].Value == r.Value:
			res.Duplicate++
		default:
			pts[i].Value = r.Value
			res.Corrected++
		}
	}
	return res, nil
}

func byTime(p cim.Point, t int64) int { return cmp.Compare(p.Time, t) }

// seriesPoints is a copy of one series' points.
type seriesPoints struct {
	se  store.Series
	pts []cim.Point
}

// snapshot copies, under one read lock, the points before to (all of them
// when to is 0) of every selected series, in contract order, so that fn
// runs without the lock held. It copies from the start of each series so
// that Aggregate can look back before From.
func (s *Store) snapshot(sel store.Selector, to int64) []seriesPoints {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []seriesPoints
	for se, pts := range s.series {
		if !sel.Match(se) {
			continue
		}
		if to != 0 {
			i, _ := slices.BinarySearchFunc(pts, to, byTime)
			pts = pts[:i]
		}
		out = append(out, seriesPoints{se, slices.Clone(pts)})
	}
	slices.SortFunc(out, func(a, b seriesPoints) int {
		return cmp.Or(cmp.Compare(a.se.Asset, b.se.Asset), cmp.Compare(a.se.Quantity, b.se.Quantity), cmp.Compare(a.se.Phase, b.se.Phase))
	})
	return out
}

// Read implements store.Readings.
func (s *Store) Read(ctx context.Context, sel store.Selector, fn store.SeriesFunc) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, sp := range s.snapshot(sel, sel.To) {
		i, _ := slices.BinarySearchFunc(sp.pts, sel.From, byTime)
		if err := stream(ctx, sp.se, sp.pts[i:], fn); err != nil {
			return err
		}
	}
	return nil
}

// stream passes points to fn in blocks.
func stream(ctx context.Context, se store.Series, pts []cim.Point, fn store.SeriesFunc) error {
	for len(pts) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(len(pts), blockSize)
		if err := fn(se, pts[:n]); err != nil {
			return err
		}
		pts = pts[n:]
	}
	return nil
}

// Aggregate implements store.Readings, straight from the raw points.
func (s *Store) Aggregate(ctx context.Context, sel store.Selector, step time.Duration, agg store.Agg, fn store.SeriesFunc) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := store.ParseAgg(string(agg)); err != nil {
		return fmt.Errorf("aggregate: %w", err)
	}
	if step < time.Millisecond || step%time.Millisecond != 0 {
		return fmt.Errorf("aggregate: step %v is not a positive whole number of milliseconds", step)
	}
	ms := step.Milliseconds()
	for _, sp := range s.snapshot(sel, sel.To) {
		out := aggregate(sp.pts, sel.From, ms, agg)
		if err := stream(ctx, sp.se, out, fn); err != nil {
			return err
		}
	}
	return nil
}

// aggregate computes one series' aggregate from all its points before To
// (ascending): intervals aligned to the epoch, only points from `from` on
// counting, and delta taken against the last point before each interval's
// first counted instant.
func aggregate(pts []cim.Point, from, step int64, agg store.Agg) []cim.Point {
	i, _ := slices.BinarySearchFunc(pts, from, byTime)
	var prev *cim.Point
	if i > 0 {
		prev = &pts[i-1]
	}
	var out []cim.Point
	for i < len(pts) {
		start := pts[i].Time - mod(pts[i].Time, step)
		j := i
		for j < len(pts) && pts[j].Time < start+step {
			j++
		}
		out = append(out, cim.Point{Time: start, Value: value(pts[i:j], agg, prev)})
		prev = &pts[j-1]
		i = j
	}
	return out
}

// mod is the remainder of floor division, never negative for step > 0.
func mod(t, step int64) int64 {
	return ((t % step) + step) % step
}

func value(g []cim.Point, agg store.Agg, prev *cim.Point) float64 {
	first, last := g[0].Value, g[len(g)-1].Value
	switch agg {
	case store.AggFirst:
		return first
	case store.AggLast:
		return last
	case store.AggCount:
		return float64(len(g))
	case store.AggDelta:
		inc := 0.0
		if prev != nil {
			inc = rollup.Increase(prev.Value, first)
		}
		for k := 1; k < len(g); k++ {
			inc += rollup.Increase(g[k-1].Value, g[k].Value)
		}
		return inc
	}
	sum, lo, hi := 0.0, first, first
	for _, p := range g {
		sum += p.Value
		lo, hi = min(lo, p.Value), max(hi, p.Value)
	}
	switch agg {
	case store.AggMin:
		return lo
	case store.AggMax:
		return hi
	case store.AggSum:
		return sum
	}
	return sum / float64(len(g)) // store.AggAvg
}

// Latest implements store.Readings.
func (s *Store) Latest(ctx context.Context, site string) ([]store.LatestPoint, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []store.LatestPoint
	for _, sp := range s.snapshot(store.Selector{Site: site}, 0) {
		if len(sp.pts) > 0 {
			out = append(out, store.LatestPoint{Series: sp.se, Point: sp.pts[len(sp.pts)-1]})
		}
	}
	return out, nil
}
