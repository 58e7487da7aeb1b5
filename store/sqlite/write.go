package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/chunk"
	"github.com/gridlink/gridlink/store/rollup"
)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("store closed")

// ErrMetaOnly is returned by Write on a store opened with Options.MetaOnly.
var ErrMetaOnly = errors.New("store opened for metadata only")

type writeReq struct {
	site     string
	readings []cim.Reading
	res      store.WriteResult
	err      error
	done     chan struct{}
}

// groupSeries gathers what one group commit changes in one series.
type groupSeries struct {
	st   *seriesState
	fast []cim.Point           // points newer than anything stored, ascending
	ooo  map[int64]float64     // other new or corrected points
	maxT int64                 // newest time including this group
	old  map[int64][]cim.Point // decoded blocks looked at, by window start
}

// Write implements store.Readings. Readings from concurrent calls are
// committed together by one goroutine (group commit).
func (s *Store) Write(ctx context.Context, site string, readings []cim.Reading) (store.WriteResult, error) {
	if s.opts.MetaOnly {
		return store.WriteResult{}, ErrMetaOnly
	}
	if len(readings) == 0 {
		return store.WriteResult{}, nil
	}
	req := &writeReq{site: site, readings: readings, done: make(chan struct{})}
	select {
	case s.reqs <- req:
	case <-s.closing:
		return store.WriteResult{}, ErrClosed
	case <-ctx.Done():
		return store.WriteResult{}, ctx.Err()
	}
	select {
	case <-req.done:
		return req.res, req.err
	case <-s.done:
		// The committer has stopped; it finished every request it took.
		select {
		case <-req.done:
			return req.res, req.err
		default:
			return store.WriteResult{}, ErrClosed
		}
	case <-ctx.Done():
		// The write may still commit; writes are idempotent, so a retry is safe.
		return store.WriteResult{}, ctx.Err()
	}
}

func (s *Store) commitLoop() {
	defer close(s.done)
	tick := time.NewTicker(s.opts.FlushInterval)
	defer tick.Stop()
	// One flush at a time runs beside the committer, so a group commit never
	// waits for the heads to be compressed.
	var flushing *flushJob
	flushed := make(chan error, 1)
	startFlush := func() {
		if flushing != nil {
			return
		}
		if flushing = s.freeze(); flushing == nil {
			return
		}
		go func(job *flushJob) {
			start := time.Now()
			err := s.write(context.Background(), job)
			if err == nil {
				s.log.Debug("flushed readings into blocks", "points", job.points, "took", time.Since(start))
			}
			flushed <- err
		}(flushing)
	}
	endFlush := func(err error) {
		if err != nil {
			s.log.Error("flush readings into blocks", "err", err)
			s.mu.Lock()
			for _, st := range flushing.series {
				st.headShared = false
			}
			s.mu.Unlock()
		} else {
			s.finish(flushing)
		}
		flushing = nil
	}
	for {
		select {
		case req := <-s.reqs:
			group := []*writeReq{req}
			n := len(req.readings)
		gather:
			for n < s.opts.MaxGroupReadings {
				select {
				case r := <-s.reqs:
					group = append(group, r)
					n += len(r.readings)
				default:
					break gather
				}
			}
			s.commit(group)
			if s.headPoints() >= s.opts.MaxHeadPoints {
				startFlush()
			}
		case err := <-flushed:
			endFlush(err)
		case <-tick.C:
			if s.headPoints() > 0 {
				startFlush()
			}
		case <-s.closing:
			if flushing != nil {
				endFlush(<-flushed)
			}
			// Fail what is still queued; Close flushes after this returns.
			for {
				select {
				case r := <-s.reqs:
					r.err = ErrClosed
					close(r.done)
				default:
					return
				}
			}
		}
	}
}

func (s *Store) headPoints() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.headSize
}

// commit classifies, logs durably and applies one group of writes.
func (s *Store) commit(group []*writeReq) {
	ctx := context.Background()
	fail := func(err error) {
		for _, r := range group {
			r.err = err
			close(r.done)
		}
	}
	if err := s.createSeries(ctx, group); err != nil {
		fail(err)
		return
	}
	var touched []*groupSeries
	for _, req := range group {
		for _, r := range req.readings {
			st := s.series[store.Series{Site: req.site, SeriesKey: r.SeriesKey}]
			g := st.g
			if g == nil {
				g = &groupSeries{st: st, maxT: st.maxT}
				st.g = g
				touched = append(touched, g)
			}
			if r.Time > g.maxT {
				g.fast = append(g.fast, r.Point)
				g.maxT = r.Time
				req.res.Accepted++
				continue
			}
			old, found, err := s.lookup(ctx, g, r.Time)
			if err != nil {
				s.resetGroup(touched)
				fail(err)
				return
			}
			switch {
			case !found:
				req.res.Accepted++
			case old == r.Value:
				req.res.Duplicate++
				continue
			default:
				req.res.Corrected++
			}
			if i, ok := slices.BinarySearchFunc(g.fast, r.Time, cmpTime); ok {
				g.fast[i].Value = r.Value
				continue
			}
			if g.ooo == nil {
				g.ooo = make(map[int64]float64)
			}
			g.ooo[r.Time] = r.Value
		}
	}
	changes := make([][]cim.Point, len(touched))
	for i, g := range touched {
		changes[i] = g.changes()
	}
	var err error
	if rec := encodeWAL(touched, changes); rec != nil {
		err = s.logWAL(ctx, rec)
	}
	if err == nil {
		s.apply(touched, changes)
	}
	s.resetGroup(touched)
	if err != nil {
		fail(err)
		return
	}
	for _, r := range group {
		close(r.done)
	}
}

func cmpTime(p cim.Point, t int64) int {
	switch {
	case p.Time < t:
		return -1
	case p.Time > t:
		return 1
	}
	return 0
}

func (s *Store) resetGroup(touched []*groupSeries) {
	for _, g := range touched {
		g.st.g = nil
	}
}

// changes merges the fast and out-of-order points into one ascending list.
func (g *groupSeries) changes() []cim.Point {
	if len(g.ooo) == 0 {
		return g.fast
	}
	out := make([]cim.Point, 0, len(g.fast)+len(g.ooo))
	for t, v := range g.ooo {
		out = append(out, cim.Point{Time: t, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time < out[j].Time })
	return mergePoints(out, g.fast) // disjoint times: fast is newer than every ooo point
}

// lookup finds the value stored (or written earlier in this group) at t.
func (s *Store) lookup(ctx context.Context, g *groupSeries, t int64) (float64, bool, error) {
	if v, ok := g.ooo[t]; ok {
		return v, true, nil
	}
	if i, ok := slices.BinarySearchFunc(g.fast, t, cmpTime); ok {
		return g.fast[i].Value, true, nil
	}
	if i, ok := slices.BinarySearchFunc(g.st.head, t, cmpTime); ok {
		return g.st.head[i].Value, true, nil
	}
	if t > g.st.blockMaxT {
		return 0, false, nil
	}
	w := rollup.Floor(t, window)
	pts, ok := g.old[w]
	if !ok {
		var err error
		pts, err = s.readBlock(ctx, s.db, g.st.id, w)
		if err != nil {
			return 0, false, err
		}
		if g.old == nil {
			g.old = make(map[int64][]cim.Point)
		}
		g.old[w] = pts
	}
	if i, ok := slices.BinarySearchFunc(pts, t, cmpTime); ok {
		return pts[i].Value, true, nil
	}
	return 0, false, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// readBlock decodes the block of a series' window, or returns nil if there
// is none.
func (s *Store) readBlock(ctx context.Context, q querier, id, start int64) ([]cim.Point, error) {
	var data []byte
	err := q.QueryRowContext(ctx, `SELECT data FROM chunks WHERE series_id = ? AND start_t = ?`, id, start).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read block of series %d at %d: %w", id, start, err)
	}
	pts, err := chunk.Decode(nil, data)
	if err != nil {
		return nil, fmt.Errorf("series %d block at %d: %w", id, start, err)
	}
	return pts, nil
}

// createSeries gives an id to every series of the group that has none yet.
func (s *Store) createSeries(ctx context.Context, group []*writeReq) error {
	var fresh []store.Series
	seen := map[store.Series]bool{}
	for _, req := range group {
		for _, r := range req.readings {
			k := store.Series{Site: req.site, SeriesKey: r.SeriesKey}
			if s.series[k] == nil && !seen[k] {
				seen[k] = true
				fresh = append(fresh, k)
			}
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create series: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO series(site, asset, quantity, phase) VALUES(?, ?, ?, ?) RETURNING id`)
	if err != nil {
		return fmt.Errorf("create series: %w", err)
	}
	states := make([]*seriesState, len(fresh))
	for i, k := range fresh {
		st := &seriesState{key: k, maxT: math.MinInt64, blockMaxT: math.MinInt64}
		if err := stmt.QueryRowContext(ctx, k.Site, k.Asset, k.Quantity, string(k.Phase)).Scan(&st.id); err != nil {
			return fmt.Errorf("create series %s/%s/%s: %w", k.Site, k.Asset, k.Quantity, err)
		}
		states[i] = st
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create series: %w", err)
	}
	s.mu.Lock()
	for _, st := range states {
		s.addSeries(st)
	}
	s.mu.Unlock()
	return nil
}

// logWAL makes one group durable.
func (s *Store) logWAL(ctx context.Context, rec []byte) error {
	res, err := s.walInsert.ExecContext(ctx, rec)
	if err != nil {
		return fmt.Errorf("commit readings: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("commit readings: %w", err)
	}
	s.mu.Lock()
	s.walMax = id
	s.mu.Unlock()
	return nil
}

// apply publishes committed changes to the heads.
func (s *Store) apply(touched []*groupSeries, changes [][]cim.Point) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, g := range touched {
		s.applyPoints(g.st, changes[i])
	}
}

// applyPoints merges ascending points into a head; mu must be held.
func (s *Store) applyPoints(st *seriesState, pts []cim.Point) {
	if len(pts) == 0 {
		return
	}
	before := len(st.head)
	switch {
	case len(st.head) == 0 || pts[0].Time > st.head[len(st.head)-1].Time:
		if st.headShared {
			// The array is full (clipped at freeze): append copies it.
			st.headShared = false
		}
		st.head = append(st.head, pts...)
	case len(pts) <= 16:
		// A few late points, usually near the end (concurrent senders):
		// insert in place instead of copying the whole head.
		if st.headShared {
			st.head = slices.Grow(slices.Clone(st.head), len(pts))
			st.headShared = false
		}
		for _, p := range pts {
			i, found := slices.BinarySearchFunc(st.head, p.Time, cmpTime)
			if found {
				st.head[i] = p
			} else {
				st.head = slices.Insert(st.head, i, p)
			}
		}
	default:
		st.head = mergePoints(st.head, pts)
		st.headShared = false
	}
	s.headSize += len(st.head) - before
	if newest := st.head[len(st.head)-1]; newest.Time >= st.maxT {
		st.maxT, st.last = newest.Time, newest
	}
}

// mergePoints merges two ascending lists; on equal times b wins.
func mergePoints(a, b []cim.Point) []cim.Point {
	out := make([]cim.Point, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i].Time < b[j].Time:
			out = append(out, a[i])
			i++
		case a[i].Time > b[j].Time:
			out = append(out, b[j])
			j++
		default:
			out = append(out, b[j])
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}
