package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store/rollup"
)

// part summarises the readings of one series in one interval: a row of
// rollups_15m, or the same computed from raw readings.
type part struct {
	bucket int64 // interval start, Unix ms
	rollup.Rollup
}

// increaseSQL is rollup.Increase from a to b. PostgreSQL raises an error
// where Go's b - a overflows to +Inf (from below -9e307 to above 9e307), so
// that case gives +Inf itself: a write must not fail on its rollup.
func increaseSQL(a, b string) string {
	return fmt.Sprintf(`CASE WHEN %[2]s < %[1]s THEN %[2]s
		WHEN %[1]s < 0 AND %[2]s - 1.7976931348623157e308 > %[1]s THEN 'Infinity'::float8
		ELSE %[2]s - %[1]s END`, a, b)
}

// incSQL sums rollup.Increase over neighbouring readings: v, and p the
// reading before it in the same interval (NULL for the first).
var incSQL = fmt.Sprintf("coalesce(sum(%s) FILTER (WHERE p IS NOT NULL), 0)", increaseSQL("p", "v"))

// mergeRollupSQL folds summaries of newly inserted readings into the
// rollups. It is exact only for readings that were not stored before. The
// increase can be joined only when the new readings all come after or all
// before the stored ones; otherwise inc becomes NULL, and the rollup is
// recomputed from the readings (updateRollups).
var mergeRollupSQL = `
	INSERT INTO rollups_15m AS r (series_id, bucket, n, sum, min, max, first_t, first_v, last_t, last_v, inc)
	SELECT * FROM unnest($1::int4[], $2::int8[], $3::int4[], $4::float8[], $5::float8[], $6::float8[],
		$7::int8[], $8::float8[], $9::int8[], $10::float8[], $11::float8[])
	ON CONFLICT (series_id, bucket) DO UPDATE SET
		n = r.n + EXCLUDED.n,
		sum = r.sum + EXCLUDED.sum,
		min = least(r.min, EXCLUDED.min),
		max = greatest(r.max, EXCLUDED.max),
		first_t = least(r.first_t, EXCLUDED.first_t),
		first_v = CASE WHEN EXCLUDED.first_t < r.first_t THEN EXCLUDED.first_v ELSE r.first_v END,
		last_t = greatest(r.last_t, EXCLUDED.last_t),
		last_v = CASE WHEN EXCLUDED.last_t > r.last_t THEN EXCLUDED.last_v ELSE r.last_v END,
		inc = CASE
			WHEN EXCLUDED.first_t > r.last_t THEN r.inc + ` + increaseSQL("r.last_v", "EXCLUDED.first_v") + ` + EXCLUDED.inc
			WHEN EXCLUDED.last_t < r.first_t THEN EXCLUDED.inc + ` + increaseSQL("EXCLUDED.last_v", "r.first_v") + ` + r.inc
			END
	RETURNING series_id, bucket, inc IS NULL`

// recomputeRollupSQL rebuilds the rollups of the given (series, bucket)s
// from the readings.
var recomputeRollupSQL = fmt.Sprintf(`
	INSERT INTO rollups_15m AS r (series_id, bucket, n, sum, min, max, first_t, first_v, last_t, last_v, inc)
	SELECT g.series_id, g.bucket, g.n, g.sum, g.min, g.max, g.first_t, f.v, g.last_t, l.v, g.inc
	FROM (
		SELECT series_id, bucket, count(*)::int4 AS n, sum(v) AS sum, min(v) AS min, max(v) AS max,
			min(t) AS first_t, max(t) AS last_t, %s AS inc
		FROM (
			SELECT k.series_id, k.bucket, x.t, x.v,
				lag(x.v) OVER (PARTITION BY k.series_id, k.bucket ORDER BY x.t) AS p
			FROM unnest($1::int4[], $2::int8[]) AS k(series_id, bucket)
			JOIN readings x ON x.series_id = k.series_id AND x.t >= k.bucket AND x.t < k.bucket + %d
		) y
		GROUP BY series_id, bucket
	) g
	JOIN readings f ON f.series_id = g.series_id AND f.t = g.first_t
	JOIN readings l ON l.series_id = g.series_id AND l.t = g.last_t
	ORDER BY g.series_id, g.bucket
	ON CONFLICT (series_id, bucket) DO UPDATE SET
		n = EXCLUDED.n, sum = EXCLUDED.sum, min = EXCLUDED.min, max = EXCLUDED.max,
		first_t = EXCLUDED.first_t, first_v = EXCLUDED.first_v, last_t = EXCLUDED.last_t, last_v = EXCLUDED.last_v,
		inc = EXCLUDED.inc`, incSQL, rollupMs)

// updateRollups brings the rollups of the buckets that the upsert touched
// up to date: a bucket that only gained readings gets their summary merged
// in; a bucket where a value changed is recomputed from the readings.
func updateRollups(ctx context.Context, tx pgx.Tx, finals []row, status []uint8) error {
	var (
		mIDs, mNs                            []int32
		mBuckets, mFirstTs, mLastTs          []int64
		mSums, mMins, mMaxs, mFirsts, mLasts []float64
		mIncs                                []float64
		rIDs                                 []int32
		rBuckets                             []int64
	)
	for i := 0; i < len(finals); {
		id, b := finals[i].id, rollup.Floor(finals[i].t, rollupMs)
		var p rollup.Rollup
		changed := false
		for ; i < len(finals) && finals[i].id == id && finals[i].t < b+rollupMs; i++ {
			switch status[i] {
			case inserted:
				p.Add(cim.Point{Time: finals[i].t, Value: finals[i].v})
			case updated:
				changed = true
			}
		}
		switch {
		case changed:
			rIDs, rBuckets = append(rIDs, id), append(rBuckets, b)
		case p.N > 0:
			mIDs, mBuckets, mNs = append(mIDs, id), append(mBuckets, b), append(mNs, int32(p.N))
			mSums, mMins, mMaxs = append(mSums, p.Sum), append(mMins, p.Min), append(mMaxs, p.Max)
			mFirstTs, mFirsts = append(mFirstTs, p.FirstT), append(mFirsts, p.First)
			mLastTs, mLasts = append(mLastTs, p.LastT), append(mLasts, p.Last)
			mIncs = append(mIncs, p.Inc)
		}
	}
	if len(mIDs) > 0 {
		rows, err := tx.Query(ctx, mergeRollupSQL, mIDs, mBuckets, mNs, mSums, mMins, mMaxs, mFirstTs, mFirsts, mLastTs, mLasts, mIncs)
		if err != nil {
			return fmt.Errorf("merge rollups: %w", err)
		}
		var (
			id          int32
			b           int64
			interleaved bool
		)
		if _, err := pgx.ForEachRow(rows, []any{&id, &b, &interleaved}, func() error {
			if interleaved {
				rIDs, rBuckets = append(rIDs, id), append(rBuckets, b)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("merge rollups: %w", err)
		}
	}
	if len(rIDs) > 0 {
		if _, err := tx.Exec(ctx, recomputeRollupSQL, rIDs, rBuckets); err != nil {
			return fmt.Errorf("recompute rollups: %w", err)
		}
	}
	return nil
}
