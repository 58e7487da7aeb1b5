package sqlite

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store/chunk"
)

const walVersion = 1

// encodeWAL writes one group's changes as a record: a version byte, then
// per series its id, the block's length and the block (package chunk).
// It returns nil when nothing changed.
func encodeWAL(touched []*groupSeries, changes [][]cim.Point) []byte {
	var rec []byte
	var block []byte
	for i, g := range touched {
		if len(changes[i]) == 0 {
			continue
		}
		if rec == nil {
			rec = append(rec, walVersion)
		}
		block = chunk.Append(block[:0], changes[i])
		rec = binary.AppendUvarint(rec, uint64(g.st.id))
		rec = binary.AppendUvarint(rec, uint64(len(block)))
		rec = append(rec, block...)
	}
	return rec
}

// decodeWAL calls fn for each series' points in a record.
func decodeWAL(rec []byte, fn func(id int64, pts []cim.Point)) error {
	if len(rec) == 0 || rec[0] != walVersion {
		return fmt.Errorf("%w: write-ahead record has unknown version", chunk.ErrCorrupt)
	}
	var pts []cim.Point
	for off := 1; off < len(rec); {
		id, k := binary.Uvarint(rec[off:])
		if k <= 0 {
			return fmt.Errorf("%w: write-ahead record: bad series id at byte %d", chunk.ErrCorrupt, off)
		}
		off += k
		n, k := binary.Uvarint(rec[off:])
		if k <= 0 || n > uint64(len(rec)-off-k) {
			return fmt.Errorf("%w: write-ahead record: bad block length at byte %d", chunk.ErrCorrupt, off)
		}
		off += k
		var err error
		if pts, err = chunk.Decode(pts[:0], rec[off:off+int(n)]); err != nil {
			return fmt.Errorf("write-ahead record, series %d: %w", id, err)
		}
		off += int(n)
		fn(int64(id), pts)
	}
	return nil
}

// replay rebuilds the heads from the write-ahead table, oldest record first.
func (s *Store) replay(ctx context.Context, byID map[int64]*seriesState) error {
	rows, err := s.db.QueryContext(ctx, `SELECT id, data FROM wal ORDER BY id`)
	if err != nil {
		return fmt.Errorf("replay write-ahead table: %w", err)
	}
	defer rows.Close()
	records := 0
	for rows.Next() {
		var id int64
		var data []byte
		if err := rows.Scan(&id, &data); err != nil {
			return fmt.Errorf("replay write-ahead table: %w", err)
		}
		err := decodeWAL(data, func(sid int64, pts []cim.Point) {
			if st := byID[sid]; st != nil {
				s.applyPoints(st, append([]cim.Point(nil), pts...))
			}
		})
		if err != nil {
			return fmt.Errorf("replay write-ahead row %d: %w", id, err)
		}
		s.walMax = id
		records++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("replay write-ahead table: %w", err)
	}
	if records > 0 {
		s.log.Info("replayed write-ahead table", "records", records, "points", s.headSize)
	}
	return nil
}
