package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
)

const (
	// rollupMs is the rollup period in milliseconds.
	rollupMs = int64(store.RollupStep / time.Millisecond)
	// maxGroupRows caps the readings one group commit gathers; a single
	// larger request still commits alone.
	maxGroupRows = 100_000
	// copyThreshold is the number of new readings from which a commit
	// sends them with COPY rather than as array parameters.
	copyThreshold = 5_000
)

// errClosed is returned by Write after Close.
var errClosed = errors.New("store is closed")

// row is one reading as stored.
type row struct {
	id int32
	t  int64
	v  float64
}

// writeReq is one Write call waiting for the committer.
type writeReq struct {
	rows []row // in the caller's order
	done chan writeResp
}

type writeResp struct {
	res store.WriteResult
	err error
}

// Write implements store.Readings. The readings are queued for the
// committer, which commits them with whatever else is queued; Write returns
// when that transaction has committed. If ctx ends first, Write returns its
// error and the readings may or may not be stored.
func (s *Store) Write(ctx context.Context, site string, readings []cim.Reading) (store.WriteResult, error) {
	if err := ctx.Err(); err != nil {
		return store.WriteResult{}, err
	}
	if len(readings) == 0 {
		return store.WriteResult{}, nil
	}
	ids, err := s.seriesIDs(ctx, site, readings)
	if err != nil {
		return store.WriteResult{}, fmt.Errorf("write to site %q: %w", site, err)
	}
	req := &writeReq{rows: make([]row, len(readings)), done: make(chan writeResp, 1)}
	for i, r := range readings {
		req.rows[i] = row{id: ids[i], t: r.Time, v: r.Value}
	}
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return store.WriteResult{}, fmt.Errorf("write to site %q: %w", site, errClosed)
	}
	select {
	case s.queue <- req:
		s.closeMu.RUnlock()
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return store.WriteResult{}, ctx.Err()
	}
	select {
	case resp := <-req.done:
		if resp.err != nil {
			return resp.res, fmt.Errorf("write %d readings to site %q: %w", len(readings), site, resp.err)
		}
		return resp.res, nil
	case <-ctx.Done():
		return store.WriteResult{}, ctx.Err()
	}
}

// seriesIDs returns the id of each reading's series, creating the series
// that do not exist yet.
func (s *Store) seriesIDs(ctx context.Context, site string, readings []cim.Reading) ([]int32, error) {
	ids := make([]int32, len(readings))
	var missing []store.Series
	seen := make(map[store.Series]bool)
	s.seriesMu.Lock()
	for i, r := range readings {
		se := store.Series{Site: site, SeriesKey: r.SeriesKey}
		if id, ok := s.seriesID[se]; ok {
			ids[i] = id
		} else if !seen[se] {
			seen[se] = true
			missing = append(missing, se)
		}
	}
	s.seriesMu.Unlock()
	if len(missing) == 0 {
		return ids, nil
	}
	found, err := s.createSeries(ctx, missing)
	if err != nil {
		return nil, err
	}
	s.seriesMu.Lock()
	for se, id := range found {
		s.seriesID[se] = id
	}
	s.seriesMu.Unlock()
	for i, r := range readings {
		if ids[i] == 0 {
			id, ok := found[store.Series{Site: site, SeriesKey: r.SeriesKey}]
			if !ok {
				return nil, fmt.Errorf("series %s/%s/%s not created", r.Asset, r.Quantity, r.Phase)
			}
			ids[i] = id
		}
	}
	return ids, nil
}

// createSeries inserts the series that are not in the table yet (in a
// fixed order, so that concurrent creators cannot deadlock) and returns the
// ids of all of them. It commits on its own: a series without readings is
// harmless, and the ids can be cached at once.
func (s *Store) createSeries(ctx context.Context, ses []store.Series) (map[store.Series]int32, error) {
	slices.SortFunc(ses, func(a, b store.Series) int {
		return cmp.Or(cmp.Compare(a.Site, b.Site), cmp.Compare(a.Asset, b.Asset), cmp.Compare(a.Quantity, b.Quantity), cmp.Compare(a.Phase, b.Phase))
	})
	sites := make([]string, len(ses))
	assets := make([]string, len(ses))
	quantities := make([]string, len(ses))
	phases := make([]string, len(ses))
	for i, se := range ses {
		sites[i], assets[i], quantities[i], phases[i] = se.Site, se.Asset, se.Quantity, string(se.Phase)
	}
	if _, err := s.pool.Exec(ctx, `
		INSERT INTO series (site, asset, quantity, phase)
		SELECT site, asset, quantity, phase
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS k(site, asset, quantity, phase, i)
		ORDER BY i
		ON CONFLICT DO NOTHING`, sites, assets, quantities, phases); err != nil {
		return nil, fmt.Errorf("create series: %w", err)
	}
	rows, err := s.pool.Query(ctx, `
		SELECT s.id, s.site, s.asset, s.quantity, s.phase
		FROM series s JOIN unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS k(site, asset, quantity, phase)
			ON s.site = k.site AND s.asset = k.asset AND s.quantity = k.quantity AND s.phase = k.phase`,
		sites, assets, quantities, phases)
	if err != nil {
		return nil, fmt.Errorf("look up series: %w", err)
	}
	found := make(map[store.Series]int32, len(ses))
	var (
		id int32
		se store.Series
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &se.Site, &se.Asset, &se.Quantity, &se.Phase}, func() error {
		found[se] = id
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("look up series: %w", err)
	}
	return found, nil
}

// commitLoop is the committer: it takes the first request waiting, adds
// every other request already waiting (up to maxGroupRows readings), and
// commits them in one transaction. Requests pile up while a commit runs,
// so groups grow with the load and a lone writer waits for nothing but its
// own commit.
func (s *Store) commitLoop() {
	defer close(s.done)
	for req := range s.queue {
		group := []*writeReq{req}
		n := len(req.rows)
	gather:
		for n < maxGroupRows {
			select {
			case r, ok := <-s.queue:
				if !ok {
					break gather
				}
				group = append(group, r)
				n += len(r.rows)
			default:
				break gather
			}
		}
		s.commitGroup(group)
	}
}

// commitGroup commits a group and answers its requests. If the group
// fails, each request is tried alone, so that one bad request does not
// fail the others.
func (s *Store) commitGroup(group []*writeReq) {
	ctx := context.Background()
	start := time.Now()
	res, err := s.commit(ctx, group)
	if err == nil {
		s.log.Debug("committed write group", "writes", len(group), "duration", time.Since(start))
	}
	if err != nil && len(group) > 1 {
		s.log.Warn("group commit failed, retrying its writes one by one", "writes", len(group), "err", err)
		for _, r := range group {
			res, err := s.commit(ctx, []*writeReq{r})
			r.done <- writeResp{res: res[0], err: err}
		}
		return
	}
	for i, r := range group {
		r.done <- writeResp{res: res[i], err: err}
	}
}
