package sqlite

import (
	"context"
	"fmt"
	"slices"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store/chunk"
	"github.com/gridlink/gridlink/store/rollup"
)

// flush merges every head into its blocks, recomputes the 15-minute rollups
// that the head touched, and empties the write-ahead table, in one
// transaction. Only the committer goroutine (or Close, after it stopped)
// calls it, so the heads do not change meanwhile.
func (s *Store) flush(ctx context.Context) error {
	s.mu.RLock()
	var pending []*seriesState
	for _, sts := range s.bySite {
		for _, st := range sts {
			if len(st.head) > 0 {
				pending = append(pending, st)
			}
		}
	}
	walMax := s.walMax
	s.mu.RUnlock()
	if len(pending) == 0 && walMax == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	defer tx.Rollback()
	putBlock, err := tx.PrepareContext(ctx, `INSERT INTO chunks(series_id, start_t, end_t, n, data) VALUES(?, ?, ?, ?, ?)
		ON CONFLICT(series_id, start_t) DO UPDATE SET end_t = excluded.end_t, n = excluded.n, data = excluded.data`)
	if err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	putRollup, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO rollups(series_id, bucket, n, sum, min, max, first_t, first_v, last_t, last_v)
		VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	var block []byte
	for _, st := range pending {
		head := st.head
		for len(head) > 0 {
			w := rollup.Floor(head[0].Time, window)
			n, _ := slices.BinarySearchFunc(head, w+window, cmpTime)
			part := head[:n]
			head = head[n:]
			old, err := s.readBlock(ctx, tx, st.id, w)
			if err != nil {
				return fmt.Errorf("flush: %w", err)
			}
			merged := part
			if len(old) > 0 {
				merged = mergePoints(old, part)
			}
			block = chunk.Append(block[:0], merged)
			if _, err := putBlock.ExecContext(ctx, st.id, w, merged[len(merged)-1].Time, len(merged), block); err != nil {
				return fmt.Errorf("flush series %d block at %d: %w", st.id, w, err)
			}
			for i := 0; i < len(part); {
				b := rollup.Floor(part[i].Time, rollupMS)
				r := bucketRollup(merged, b)
				if _, err := putRollup.ExecContext(ctx, st.id, b, r.N, r.Sum, r.Min, r.Max, r.FirstT, r.First, r.LastT, r.Last); err != nil {
					return fmt.Errorf("flush series %d rollup at %d: %w", st.id, b, err)
				}
				i, _ = slices.BinarySearchFunc(part, b+rollupMS, cmpTime)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM wal WHERE id <= ?`, walMax); err != nil {
		return fmt.Errorf("flush: empty write-ahead table: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	s.mu.Lock()
	for _, st := range pending {
		st.blockMaxT = max(st.blockMaxT, st.head[len(st.head)-1].Time)
		st.head = nil
	}
	s.headSize = 0
	s.mu.Unlock()
	return nil
}

// bucketRollup summarises the points of pts (ascending) in [b, b+15 min).
func bucketRollup(pts []cim.Point, b int64) rollup.Rollup {
	i, _ := slices.BinarySearchFunc(pts, b, cmpTime)
	j, _ := slices.BinarySearchFunc(pts, b+rollupMS, cmpTime)
	var r rollup.Rollup
	for _, p := range pts[i:j] {
		r.Add(p)
	}
	return r
}
