package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/gridlink/gridlink/store/chunk"
	"github.com/gridlink/gridlink/store/rollup"
)

// rollupIncSchema gives each rollup the counter's reset-aware increase
// (rollup.Rollup.Inc). Rollups written before it lack the increase, so they
// are rebuilt from the blocks (rebuildRollups) in the same transaction.
const rollupIncSchema = `ALTER TABLE rollups ADD COLUMN inc REAL NOT NULL DEFAULT 0;`

// rebuildRollups recomputes every rollup from the stored blocks. A
// 15-minute bucket never spans two blocks, since blocks cover whole
// two-hour windows.
func rebuildRollups(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT series_id, start_t, data FROM chunks ORDER BY series_id, start_t`)
	if err != nil {
		return fmt.Errorf("rebuild rollups: %w", err)
	}
	type blockRollups struct {
		series int64
		rs     []bucketWrite
	}
	var all []blockRollups
	for rows.Next() {
		var id, start int64
		var data []byte
		if err := rows.Scan(&id, &start, &data); err != nil {
			rows.Close()
			return fmt.Errorf("rebuild rollups: %w", err)
		}
		pts, err := chunk.Decode(nil, data)
		if err != nil {
			rows.Close()
			return fmt.Errorf("rebuild rollups: series %d block at %d: %w", id, start, err)
		}
		br := blockRollups{series: id}
		for i := 0; i < len(pts); {
			b := rollup.Floor(pts[i].Time, rollupMS)
			var r rollup.Rollup
			for ; i < len(pts) && pts[i].Time < b+rollupMS; i++ {
				r.Add(pts[i])
			}
			br.rs = append(br.rs, bucketWrite{bucket: b, r: r})
		}
		all = append(all, br)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("rebuild rollups: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM rollups`); err != nil {
		return fmt.Errorf("rebuild rollups: %w", err)
	}
	put, err := tx.PrepareContext(ctx, putRollupSQL)
	if err != nil {
		return fmt.Errorf("rebuild rollups: %w", err)
	}
	defer put.Close()
	for _, br := range all {
		for _, bw := range br.rs {
			if err := putRollup(ctx, put, br.series, bw); err != nil {
				return fmt.Errorf("rebuild rollups: %w", err)
			}
		}
	}
	return nil
}

// putRollupSQL writes one rollup, replacing the bucket's old one.
const putRollupSQL = `INSERT OR REPLACE INTO rollups(series_id, bucket, n, sum, min, max, first_t, first_v, last_t, last_v, inc)
	VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

func putRollup(ctx context.Context, put *sql.Stmt, series int64, bw bucketWrite) error {
	r := bw.r
	if _, err := put.ExecContext(ctx, series, bw.bucket, r.N, r.Sum, r.Min, r.Max, r.FirstT, r.First, r.LastT, r.Last, r.Inc); err != nil {
		return fmt.Errorf("series %d rollup at %d: %w", series, bw.bucket, err)
	}
	return nil
}

// rollupColumns are the columns a rollup is read from, in the order
// scanRollup takes them.
const rollupColumns = `bucket, n, sum, min, max, first_t, first_v, last_t, last_v, inc`

func scanRollup(rows *sql.Rows) (int64, rollup.Rollup, error) {
	var b int64
	var r rollup.Rollup
	err := rows.Scan(&b, &r.N, &r.Sum, &r.Min, &r.Max, &r.FirstT, &r.First, &r.LastT, &r.Last, &r.Inc)
	return b, r, err
}
