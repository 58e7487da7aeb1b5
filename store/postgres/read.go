package postgres

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/rollup"
)

// readBlock is the most points Read and Aggregate fetch and pass to fn at
// once.
const readBlock = 4096

// selected is a series that a selector picks.
type selected struct {
	id int32
	se store.Series
}

// readTx runs fn in a read-only transaction that sees one snapshot, so
// that a Read or Aggregate over many series is consistent.
func (s *Store) readTx(ctx context.Context, what string, fn func(tx pgx.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return dbErr(ctx, what, err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // read only: nothing to keep
	return fn(tx)
}

// dbErr wraps a database error, or the context's error when the context
// has ended (the database error then only says the query was canceled).
func dbErr(ctx context.Context, what string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s: %w", what, cerr)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// upper turns the selector's To into an exclusive bound.
func upper(to int64) int64 {
	if to == 0 {
		return math.MaxInt64
	}
	return to
}

// selectSeries lists the series the selector picks, in contract order
// (byte-wise, whatever the database's collation).
func selectSeries(ctx context.Context, tx pgx.Tx, sel store.Selector) ([]selected, error) {
	var phase *string
	if sel.Phase != nil {
		p := string(*sel.Phase)
		phase = &p
	}
	rows, err := tx.Query(ctx, `
		SELECT id, asset, quantity, phase FROM series
		WHERE site = $1 AND ($2 = '' OR asset = $2) AND ($3 = '' OR quantity = $3) AND ($4::text IS NULL OR phase = $4)`,
		sel.Site, sel.Asset, sel.Quantity, phase)
	if err != nil {
		return nil, dbErr(ctx, "select series", err)
	}
	var (
		out []selected
		c   selected
	)
	c.se.Site = sel.Site
	if _, err := pgx.ForEachRow(rows, []any{&c.id, &c.se.Asset, &c.se.Quantity, &c.se.Phase}, func() error {
		out = append(out, c)
		return nil
	}); err != nil {
		return nil, dbErr(ctx, "select series", err)
	}
	slices.SortFunc(out, func(a, b selected) int { return compareSeries(a.se, b.se) })
	return out, nil
}

func compareSeries(a, b store.Series) int {
	return cmp.Or(cmp.Compare(a.Asset, b.Asset), cmp.Compare(a.Quantity, b.Quantity), cmp.Compare(a.Phase, b.Phase))
}

// emit passes a block to fn unless the context has ended.
func emit(ctx context.Context, se store.Series, pts []cim.Point, fn store.SeriesFunc) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return fn(se, pts)
}

// Read implements store.Readings. Each series is fetched in pages of
// readBlock points (keyset pagination on the primary key), one page per
// call of fn.
func (s *Store) Read(ctx context.Context, sel store.Selector, fn store.SeriesFunc) error {
	to := upper(sel.To)
	return s.readTx(ctx, "read", func(tx pgx.Tx) error {
		list, err := selectSeries(ctx, tx, sel)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		block := make([]cim.Point, 0, readBlock)
		for _, c := range list {
			from := sel.From
			for {
				block, err = readPage(ctx, tx, c.id, from, to, block[:0])
				if err != nil {
					return err
				}
				if len(block) == 0 {
					break
				}
				if err := emit(ctx, c.se, block, fn); err != nil {
					return err
				}
				if len(block) < readBlock {
					break
				}
				from = block[len(block)-1].Time + 1
			}
		}
		return nil
	})
}

// readPage appends up to readBlock points of [from, to) to buf.
func readPage(ctx context.Context, tx pgx.Tx, id int32, from, to int64, buf []cim.Point) ([]cim.Point, error) {
	rows, err := tx.Query(ctx, `SELECT t, v FROM readings WHERE series_id = $1 AND t >= $2 AND t < $3 ORDER BY t LIMIT $4`,
		id, from, to, readBlock)
	if err != nil {
		return nil, dbErr(ctx, "read", err)
	}
	var p cim.Point
	if _, err := pgx.ForEachRow(rows, []any{&p.Time, &p.Value}, func() error {
		buf = append(buf, p)
		return nil
	}); err != nil {
		return nil, dbErr(ctx, "read", err)
	}
	return buf, nil
}

// Aggregate implements store.Readings. A step that is a multiple of
// store.RollupStep is answered from the rollups, with raw readings only for
// the partial rollup periods at the edges of [From, To); any other step is
// computed from the raw readings.
func (s *Store) Aggregate(ctx context.Context, sel store.Selector, step time.Duration, agg store.Agg, fn store.SeriesFunc) error {
	if _, err := store.ParseAgg(string(agg)); err != nil {
		return fmt.Errorf("aggregate: %w", err)
	}
	if step < time.Millisecond || step%time.Millisecond != 0 {
		return fmt.Errorf("aggregate: step %v is not a positive whole number of milliseconds", step)
	}
	stepMs := step.Milliseconds()
	to := upper(sel.To)
	return s.readTx(ctx, "aggregate", func(tx pgx.Tx) error {
		list, err := selectSeries(ctx, tx, sel)
		if err != nil {
			return fmt.Errorf("aggregate: %w", err)
		}
		for _, c := range list {
			parts, err := partsOf(ctx, tx, c.id, sel.From, to, stepMs, agg == store.AggDelta)
			if err != nil {
				return err
			}
			if len(parts) == 0 {
				continue
			}
			var prev *float64
			if agg == store.AggDelta {
				if prev, err = lastBefore(ctx, tx, c.id, sel.From); err != nil {
					return err
				}
			}
			out := combine(parts, stepMs, agg, prev)
			for len(out) > 0 {
				n := min(len(out), readBlock)
				if err := emit(ctx, c.se, out[:n], fn); err != nil {
					return err
				}
				out = out[n:]
			}
		}
		return nil
	})
}

// partsOf summarises a series' readings in [from, to) by rollup period
// when step is a multiple of it, else by step, in time order; with inc
// the counter's increase too.
func partsOf(ctx context.Context, tx pgx.Tx, id int32, from, to, step int64, inc bool) ([]part, error) {
	if step%rollupMs != 0 {
		return rawParts(ctx, tx, id, from, to, step, inc)
	}
	lo, hi, ok := rollup.Whole(from, to, rollupMs)
	if !ok {
		return rawParts(ctx, tx, id, from, to, rollupMs, inc)
	}
	var out []part
	if from < lo {
		p, err := rawParts(ctx, tx, id, from, lo, rollupMs, inc)
		if err != nil {
			return nil, err
		}
		out = append(out, p...)
	}
	p, err := rollupParts(ctx, tx, id, lo, hi)
	if err != nil {
		return nil, err
	}
	out = append(out, p...)
	if hi < to {
		p, err := rawParts(ctx, tx, id, hi, to, rollupMs, inc)
		if err != nil {
			return nil, err
		}
		out = append(out, p...)
	}
	return out, nil
}

// rawParts summarises the readings of [from, to) by interval of length
// step, from the readings table. The counter's increase (a window
// function over the readings) is computed only with inc; else it is 0.
func rawParts(ctx context.Context, tx pgx.Tx, id int32, from, to, step int64, inc bool) ([]part, error) {
	q := rawPartsSQL
	if inc {
		q = rawPartsIncSQL
	}
	rows, err := tx.Query(ctx, q, id, from, to, step)
	if err != nil {
		return nil, dbErr(ctx, "aggregate readings", err)
	}
	return scanParts(ctx, rows, "aggregate readings")
}

// rawPartsSQL and rawPartsIncSQL summarise readings $2 <= t < $3 of
// series $1 by interval of length $4; the second also sums the
// counter's increase.
var (
	rawPartsSQL = `
		SELECT g.b, g.n, g.sum, g.min, g.max, g.first_t, f.v, g.last_t, l.v, 0::float8
		FROM (
			SELECT t - ((t % $4) + $4) % $4 AS b, count(*) AS n, sum(v) AS sum, min(v) AS min, max(v) AS max,
				min(t) AS first_t, max(t) AS last_t
			FROM readings WHERE series_id = $1 AND t >= $2 AND t < $3
			GROUP BY 1
		) g
		JOIN readings f ON f.series_id = $1 AND f.t = g.first_t
		JOIN readings l ON l.series_id = $1 AND l.t = g.last_t
		ORDER BY g.b`
	rawPartsIncSQL = `
		SELECT g.b, g.n, g.sum, g.min, g.max, g.first_t, f.v, g.last_t, l.v, g.inc
		FROM (
			SELECT b, count(*) AS n, sum(v) AS sum, min(v) AS min, max(v) AS max,
				min(t) AS first_t, max(t) AS last_t, ` + incSQL + ` AS inc
			FROM (
				SELECT t - ((t % $4) + $4) % $4 AS b, t, v,
					lag(v) OVER (PARTITION BY t - ((t % $4) + $4) % $4 ORDER BY t) AS p
				FROM readings WHERE series_id = $1 AND t >= $2 AND t < $3
			) y
			GROUP BY b
		) g
		JOIN readings f ON f.series_id = $1 AND f.t = g.first_t
		JOIN readings l ON l.series_id = $1 AND l.t = g.last_t
		ORDER BY g.b`
)

// rollupParts returns the stored rollups of the periods starting in
// [from, to).
func rollupParts(ctx context.Context, tx pgx.Tx, id int32, from, to int64) ([]part, error) {
	rows, err := tx.Query(ctx, `
		SELECT bucket, n, sum, min, max, first_t, first_v, last_t, last_v, inc FROM rollups_15m
		WHERE series_id = $1 AND bucket >= $2 AND bucket < $3 ORDER BY bucket`, id, from, to)
	if err != nil {
		return nil, dbErr(ctx, "read rollups", err)
	}
	return scanParts(ctx, rows, "read rollups")
}

func scanParts(ctx context.Context, rows pgx.Rows, what string) ([]part, error) {
	var (
		out []part
		p   part
	)
	if _, err := pgx.ForEachRow(rows, []any{&p.bucket, &p.N, &p.Sum, &p.Min, &p.Max, &p.FirstT, &p.First, &p.LastT, &p.Last, &p.Inc}, func() error {
		out = append(out, p)
		return nil
	}); err != nil {
		return nil, dbErr(ctx, what, err)
	}
	return out, nil
}

// lastBefore returns the series' last value before t, or nil.
func lastBefore(ctx context.Context, tx pgx.Tx, id int32, t int64) (*float64, error) {
	rows, err := tx.Query(ctx, `SELECT v FROM readings WHERE series_id = $1 AND t < $2 ORDER BY t DESC LIMIT 1`, id, t)
	if err != nil {
		return nil, dbErr(ctx, "aggregate: value before the range", err)
	}
	v, err := pgx.CollectRows(rows, pgx.RowTo[float64])
	if err != nil {
		return nil, dbErr(ctx, "aggregate: value before the range", err)
	}
	if len(v) == 0 {
		return nil, nil
	}
	return &v[0], nil
}

// combine merges parts (in time order) into intervals of length step and
// computes agg for each. prev is the last value before the first part, if
// any.
func combine(parts []part, step int64, agg store.Agg, prev *float64) []cim.Point {
	var (
		out     []cim.Point
		last    float64
		hasPrev bool
	)
	if prev != nil {
		last, hasPrev = *prev, true
	}
	for i := 0; i < len(parts); {
		start := rollup.Floor(parts[i].bucket, step)
		var acc rollup.Rollup
		for ; i < len(parts) && rollup.Floor(parts[i].bucket, step) == start; i++ {
			acc.Merge(parts[i].Rollup)
		}
		out = append(out, cim.Point{Time: start, Value: acc.Value(agg, last, hasPrev)})
		last, hasPrev = acc.Last, true
	}
	return out
}

// Latest implements store.Readings.
func (s *Store) Latest(ctx context.Context, site string) ([]store.LatestPoint, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT s.asset, s.quantity, s.phase, l.t, l.v FROM series s
		CROSS JOIN LATERAL (SELECT t, v FROM readings r WHERE r.series_id = s.id ORDER BY t DESC LIMIT 1) l
		WHERE s.site = $1`, site)
	if err != nil {
		return nil, dbErr(ctx, "latest", err)
	}
	var (
		out []store.LatestPoint
		lp  store.LatestPoint
	)
	lp.Site = site
	if _, err := pgx.ForEachRow(rows, []any{&lp.Asset, &lp.Quantity, &lp.Phase, &lp.Time, &lp.Value}, func() error {
		out = append(out, lp)
		return nil
	}); err != nil {
		return nil, dbErr(ctx, "latest", err)
	}
	slices.SortFunc(out, func(a, b store.LatestPoint) int { return compareSeries(a.Series, b.Series) })
	return out, nil
}
