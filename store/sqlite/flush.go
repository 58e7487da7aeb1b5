package sqlite

import (
	"context"
	"fmt"
	"slices"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store/chunk"
	"github.com/gridlink/gridlink/store/rollup"
)

// flushBatchBlocks is how many blocks one flush transaction writes. SQLite
// has one writer at a time: small transactions let the group commits of new
// readings slip in between them instead of waiting for the whole flush.
const flushBatchBlocks = 256

// flushJob is one merge of the heads into blocks. The committer freezes the
// heads (freeze), a background goroutine compresses and writes them (write),
// and the committer then drops what was written from the heads (finish).
// Writes go on meanwhile: they land in the heads, which still hold the frozen
// points until finish, so a read never misses a point.
type flushJob struct {
	series []*seriesState
	frozen [][]cim.Point // the heads at freeze; never modified afterwards
	walMax int64         // write-ahead rows up to this one are in frozen
	points int
}

// freeze takes a flush job of every non-empty head, or nil if there is
// nothing to flush. Committer only.
func (s *Store) freeze() *flushJob {
	s.mu.Lock()
	defer s.mu.Unlock()
	job := &flushJob{walMax: s.walMax}
	for _, sts := range s.bySite {
		for _, st := range sts {
			if len(st.head) == 0 {
				continue
			}
			st.head = slices.Clip(st.head)
			st.headShared = true
			job.series = append(job.series, st)
			job.frozen = append(job.frozen, st.head)
			job.points += len(st.head)
		}
	}
	if len(job.series) == 0 && job.walMax == s.walFlushed {
		return nil
	}
	return job
}

// blockWrite is one compressed block and the rollups it changed.
type blockWrite struct {
	series, start, end int64
	n                  int
	data               []byte
	rollups            []bucketWrite
}

type bucketWrite struct {
	bucket int64
	r      rollup.Rollup
}

// write merges the frozen heads into their blocks, recomputes the 15-minute
// rollups they touched, and then empties the write-ahead table up to the
// job's row. Blocks are compressed outside any transaction and written a
// batch per transaction; a crash between batches is harmless because the
// write-ahead rows stay until the last one, and merging them again on start
// gives the same blocks. Only one write runs at a time.
func (s *Store) write(ctx context.Context, job *flushJob) error {
	var batch []blockWrite
	for i, st := range job.series {
		head := job.frozen[i]
		for len(head) > 0 {
			w := rollup.Floor(head[0].Time, window)
			n, _ := slices.BinarySearchFunc(head, w+window, cmpTime)
			part := head[:n]
			head = head[n:]
			old, err := s.readBlock(ctx, s.db, st.id, w)
			if err != nil {
				return fmt.Errorf("flush: %w", err)
			}
			merged := part
			if len(old) > 0 {
				merged = mergePoints(old, part)
			}
			bw := blockWrite{series: st.id, start: w, end: merged[len(merged)-1].Time, n: len(merged), data: chunk.Append(nil, merged)}
			for j := 0; j < len(part); {
				b := rollup.Floor(part[j].Time, rollupMS)
				bw.rollups = append(bw.rollups, bucketWrite{bucket: b, r: bucketRollup(merged, b)})
				j, _ = slices.BinarySearchFunc(part, b+rollupMS, cmpTime)
			}
			batch = append(batch, bw)
			if len(batch) == flushBatchBlocks {
				if err := s.putBlocks(ctx, batch, 0); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
	}
	return s.putBlocks(ctx, batch, job.walMax)
}

// putBlocks writes blocks and their rollups in one transaction, and with
// walMax > 0 deletes the write-ahead rows up to it in the same transaction.
func (s *Store) putBlocks(ctx context.Context, blocks []blockWrite, walMax int64) error {
	if len(blocks) == 0 && walMax == 0 {
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
	put, err := tx.PrepareContext(ctx, putRollupSQL)
	if err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	for _, b := range blocks {
		if _, err := putBlock.ExecContext(ctx, b.series, b.start, b.end, b.n, b.data); err != nil {
			return fmt.Errorf("flush series %d block at %d: %w", b.series, b.start, err)
		}
		for _, bu := range b.rollups {
			if err := putRollup(ctx, put, b.series, bu); err != nil {
				return fmt.Errorf("flush: %w", err)
			}
		}
	}
	if walMax > 0 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM wal WHERE id <= ?`, walMax); err != nil {
			return fmt.Errorf("flush: empty write-ahead table: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	return nil
}

// finish drops the written points from the heads: a point stays only if it
// was written after the freeze (new, or a correction of a frozen point).
// Committer only.
func (s *Store) finish(job *flushJob) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, st := range job.series {
		frozen := job.frozen[i]
		st.blockMaxT = max(st.blockMaxT, frozen[len(frozen)-1].Time)
		kept := make([]cim.Point, 0, max(len(st.head)-len(frozen), 0))
		f := 0
		for _, p := range st.head {
			for f < len(frozen) && frozen[f].Time < p.Time {
				f++
			}
			if f < len(frozen) && frozen[f] == p {
				continue
			}
			kept = append(kept, p)
		}
		s.headSize -= len(st.head) - len(kept)
		st.head = kept
		st.headShared = false
	}
	s.walFlushed = job.walMax
}

// flush merges every head into the blocks synchronously. Close (after the
// committer stopped) and tests call it.
func (s *Store) flush(ctx context.Context) error {
	job := s.freeze()
	if job == nil {
		return nil
	}
	if err := s.write(ctx, job); err != nil {
		s.mu.Lock()
		for _, st := range job.series {
			st.headShared = false
		}
		s.mu.Unlock()
		return err
	}
	s.finish(job)
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
