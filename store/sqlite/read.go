package sqlite

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/chunk"
	"github.com/gridlink/gridlink/store/rollup"
)

// snapshot is a selected series with a copy of its head points in range.
type snapshot struct {
	id    int64
	key   store.Series
	head  []cim.Point
	older []cim.Point // head points before the range, when asked for
}

func compareSeries(a, b store.Series) int {
	return cmp.Or(cmp.Compare(a.Asset, b.Asset), cmp.Compare(a.Quantity, b.Quantity), cmp.Compare(a.Phase, b.Phase))
}

// upper turns the selector's open upper bound into a number.
func upper(to int64) int64 {
	if to == 0 {
		return math.MaxInt64
	}
	return to
}

// selectSeries copies, under the lock, what a read needs from memory. The
// heads are copied before any block is read so that a flush running
// meanwhile can only make a point appear twice (merged away), never vanish.
// With older, the head points before the range are copied too.
func (s *Store) selectSeries(sel store.Selector, older bool) []snapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []snapshot
	to := upper(sel.To)
	for _, st := range s.bySite[sel.Site] {
		if !sel.Match(st.key) {
			continue
		}
		i, _ := slices.BinarySearchFunc(st.head, sel.From, cmpTime)
		j, _ := slices.BinarySearchFunc(st.head, to, cmpTime)
		sn := snapshot{id: st.id, key: st.key}
		if older {
			c := slices.Clone(st.head[:j])
			sn.older, sn.head = c[:i:i], c[i:]
		} else {
			sn.head = slices.Clone(st.head[i:j])
		}
		out = append(out, sn)
	}
	slices.SortFunc(out, func(a, b snapshot) int { return compareSeries(a.key, b.key) })
	return out
}

// scan emits the points of a series in [from, to), blocks merged with the
// head, in ascending blocks. head must already lie in [from, to).
func (s *Store) scan(ctx context.Context, id int64, head []cim.Point, from, to int64, emit func([]cim.Point) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT start_t, data FROM chunks WHERE series_id = ? AND start_t >= ? AND start_t < ? ORDER BY start_t`,
		id, rollup.Floor(from, window), to)
	if err != nil {
		return fmt.Errorf("read series %d: %w", id, err)
	}
	defer rows.Close()
	var buf []cim.Point
	for rows.Next() {
		var start int64
		var data []byte
		if err := rows.Scan(&start, &data); err != nil {
			return fmt.Errorf("read series %d: %w", id, err)
		}
		// Head points before this window come first.
		n, _ := slices.BinarySearchFunc(head, start, cmpTime)
		if n > 0 {
			if err := emit(head[:n]); err != nil {
				return err
			}
			head = head[n:]
		}
		if buf, err = chunk.Decode(buf[:0], data); err != nil {
			return fmt.Errorf("series %d block at %d: %w", id, start, err)
		}
		i, _ := slices.BinarySearchFunc(buf, from, cmpTime)
		j, _ := slices.BinarySearchFunc(buf, to, cmpTime)
		pts := buf[i:j]
		n, _ = slices.BinarySearchFunc(head, start+window, cmpTime)
		if n > 0 {
			pts = mergePoints(pts, head[:n])
			head = head[n:]
		}
		if len(pts) > 0 {
			if err := emit(pts); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read series %d: %w", id, err)
	}
	if len(head) > 0 {
		return emit(head)
	}
	return nil
}

// Read implements store.Readings.
func (s *Store) Read(ctx context.Context, sel store.Selector, fn store.SeriesFunc) error {
	to := upper(sel.To)
	for _, sn := range s.selectSeries(sel, false) {
		err := s.scan(ctx, sn.id, sn.head, sel.From, to, func(pts []cim.Point) error {
			return fn(sn.key, pts)
		})
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// Latest implements store.Readings.
func (s *Store) Latest(ctx context.Context, site string) ([]store.LatestPoint, error) {
	s.mu.RLock()
	var out []store.LatestPoint
	for _, st := range s.bySite[site] {
		if st.maxT != math.MinInt64 {
			out = append(out, store.LatestPoint{Series: st.key, Point: st.last})
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b store.LatestPoint) int { return compareSeries(a.Series, b.Series) })
	return out, ctx.Err()
}

// lastBefore finds the series' newest point before t; head holds the head
// points before t.
func (s *Store) lastBefore(ctx context.Context, sn snapshot, head []cim.Point, t int64) (cim.Point, bool, error) {
	var best cim.Point
	found := false
	if len(head) > 0 {
		best, found = head[len(head)-1], true
	}
	rows, err := s.db.QueryContext(ctx, `SELECT start_t, data FROM chunks WHERE series_id = ? AND start_t < ? ORDER BY start_t DESC`, sn.id, t)
	if err != nil {
		return best, found, fmt.Errorf("read series %d: %w", sn.id, err)
	}
	defer rows.Close()
	var buf []cim.Point
	for rows.Next() {
		var start int64
		var data []byte
		if err := rows.Scan(&start, &data); err != nil {
			return best, found, fmt.Errorf("read series %d: %w", sn.id, err)
		}
		if found && start+window <= best.Time {
			break // the head already has something newer than this block
		}
		if buf, err = chunk.Decode(buf[:0], data); err != nil {
			return best, found, fmt.Errorf("series %d block at %d: %w", sn.id, start, err)
		}
		if i, _ := slices.BinarySearchFunc(buf, t, cmpTime); i > 0 {
			if p := buf[i-1]; !found || p.Time > best.Time {
				best, found = p, true
			}
			break
		}
	}
	return best, found, rows.Err()
}

// Aggregate implements store.Readings. Whole 15-minute intervals that the
// head does not touch come from the stored rollups; the rest is computed from
// points.
func (s *Store) Aggregate(ctx context.Context, sel store.Selector, step time.Duration, agg store.Agg, fn store.SeriesFunc) error {
	stepMS := step.Milliseconds()
	if stepMS <= 0 || time.Duration(stepMS)*time.Millisecond != step {
		return fmt.Errorf("aggregate step %s: must be a positive whole number of milliseconds", step)
	}
	if _, err := store.ParseAgg(string(agg)); err != nil {
		return err
	}
	to := upper(sel.To)
	for _, sn := range s.selectSeries(sel, agg == store.AggDelta) {
		f := folder{step: stepMS, agg: agg}
		if agg == store.AggDelta {
			p, ok, err := s.lastBefore(ctx, sn, sn.older, sel.From)
			if err != nil {
				return err
			}
			f.prev, f.hasPrev = p.Value, ok
		}
		var err error
		if stepMS%rollupMS == 0 {
			err = s.foldRollups(ctx, sn, sel.From, to, &f)
		} else {
			err = s.scan(ctx, sn.id, sn.head, sel.From, to, f.addPoints)
		}
		if err != nil {
			return err
		}
		f.finish()
		if len(f.out) > 0 {
			if err := fn(sn.key, f.out); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// foldRollups feeds the folder with stored rollups for the clean whole
// 15-minute intervals of [from, to) and with points for the rest.
func (s *Store) foldRollups(ctx context.Context, sn snapshot, from, to int64, f *folder) error {
	raw := func(a, b int64) error {
		if a >= b {
			return nil
		}
		i, _ := slices.BinarySearchFunc(sn.head, a, cmpTime)
		j, _ := slices.BinarySearchFunc(sn.head, b, cmpTime)
		return s.scan(ctx, sn.id, sn.head[i:j], a, b, f.addPoints)
	}
	cleanFrom, cleanTo, ok := rollup.Whole(from, to, rollupMS)
	if !ok {
		return raw(from, to)
	}
	if err := raw(from, cleanFrom); err != nil {
		return err
	}
	var dirty []int64
	for _, p := range sn.head {
		if b := rollup.Floor(p.Time, rollupMS); b >= cleanFrom && b+rollupMS <= cleanTo && (len(dirty) == 0 || dirty[len(dirty)-1] != b) {
			dirty = append(dirty, b)
		}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+rollupColumns+` FROM rollups
		WHERE series_id = ? AND bucket >= ? AND bucket < ? ORDER BY bucket`, sn.id, cleanFrom, cleanTo)
	if err != nil {
		return fmt.Errorf("read rollups of series %d: %w", sn.id, err)
	}
	var stored []struct {
		b int64
		r rollup.Rollup
	}
	for rows.Next() {
		b, r, err := scanRollup(rows)
		if err != nil {
			rows.Close()
			return fmt.Errorf("read rollups of series %d: %w", sn.id, err)
		}
		stored = append(stored, struct {
			b int64
			r rollup.Rollup
		}{b, r})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read rollups of series %d: %w", sn.id, err)
	}
	for _, row := range stored {
		for len(dirty) > 0 && dirty[0] <= row.b {
			if err := raw(dirty[0], dirty[0]+rollupMS); err != nil {
				return err
			}
			dirty = dirty[1:]
		}
		if isDirty(sn.head, row.b) {
			continue
		}
		f.addRollup(row.b, row.r)
	}
	for _, b := range dirty {
		if err := raw(b, b+rollupMS); err != nil {
			return err
		}
	}
	if cleanTo == math.MaxInt64 {
		return nil
	}
	return raw(cleanTo, to)
}

// isDirty reports whether the head has a point in the 15-minute interval b.
func isDirty(head []cim.Point, b int64) bool {
	i, _ := slices.BinarySearchFunc(head, b, cmpTime)
	return i < len(head) && head[i].Time < b+rollupMS
}

// folder combines points and rollups, in ascending time, into intervals of
// one step.
type folder struct {
	step    int64
	agg     store.Agg
	prev    float64
	hasPrev bool
	cur     rollup.Rollup
	curB    int64
	out     []cim.Point
}

func (f *folder) addPoints(pts []cim.Point) error {
	for _, p := range pts {
		b := rollup.Floor(p.Time, f.step)
		if f.cur.N > 0 && b != f.curB {
			f.finish()
		}
		f.curB = b
		f.cur.Add(p)
	}
	return nil
}

func (f *folder) addRollup(at int64, r rollup.Rollup) {
	b := rollup.Floor(at, f.step)
	if f.cur.N > 0 && b != f.curB {
		f.finish()
	}
	f.curB = b
	f.cur.Merge(r)
}

func (f *folder) finish() {
	if f.cur.N == 0 {
		return
	}
	f.out = append(f.out, cim.Point{Time: f.curB, Value: f.cur.Value(f.agg, f.prev, f.hasPrev)})
	f.prev, f.hasPrev = f.cur.Last, true
	f.cur = rollup.Rollup{}
}
