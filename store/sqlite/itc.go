package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gridlink/gridlink/store"
)

// itcSchema is migration 3 → 4: the results of integration test runs,
// one row per run with its JSON body. start_t is UTC Unix ms; the index
// serves the listing, newest first.
const itcSchema = `
CREATE TABLE IF NOT EXISTS itc_runs(id TEXT PRIMARY KEY, start_t INTEGER NOT NULL, body BLOB NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS itc_runs_start ON itc_runs(start_t, id);
`

var _ store.ITCRuns = (*Store)(nil)

// PutITCRun implements store.ITCRuns.
func (s *Store) PutITCRun(ctx context.Context, id string, start time.Time, body []byte) error {
	if err := store.CheckITCRunID(id); err != nil {
		return fmt.Errorf("put itc run: %w", err)
	}
	if body == nil {
		body = []byte{} // the column is NOT NULL
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO itc_runs(id, start_t, body) VALUES(?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET start_t = excluded.start_t, body = excluded.body`, id, start.UnixMilli(), body)
	if err != nil {
		return fmt.Errorf("put itc run %q: %w", id, err)
	}
	return nil
}

// ListITCRuns implements store.ITCRuns.
func (s *Store) ListITCRuns(ctx context.Context, limit int) ([]store.ITCRunInfo, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, start_t, body FROM itc_runs ORDER BY start_t DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("list itc runs: %w", err)
	}
	defer rows.Close()
	var out []store.ITCRunInfo
	for rows.Next() {
		var r store.ITCRunInfo
		var ms int64
		if err := rows.Scan(&r.ID, &ms, &r.Body); err != nil {
			return nil, fmt.Errorf("list itc runs: %w", err)
		}
		r.Start = time.UnixMilli(ms).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list itc runs: %w", err)
	}
	return out, nil
}

// GetITCRun implements store.ITCRuns.
func (s *Store) GetITCRun(ctx context.Context, id string) ([]byte, error) {
	var body []byte
	err := s.db.QueryRowContext(ctx, `SELECT body FROM itc_runs WHERE id = ?`, id).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("itc run %q: %w", strings.ToValidUTF8(id, "?"), store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get itc run %q: %w", id, err)
	}
	return body, nil
}
