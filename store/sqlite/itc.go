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

// itcSummarySchema is migration 6 → 7: each run keeps the platform's
// summary beside its body, so that a listing reads no body. Runs stored
// before get an empty summary (the store cannot parse bodies; the platform
// summarises those from their bodies when it lists them).
//
// The table is rebuilt rather than given a column with ADD COLUMN, for two
// reasons. The summary goes before the body: a row's columns are stored in
// order, so reading one after a body of megabytes walks the body's overflow
// pages. And a rebuild also runs on a table that has the column already
// (tests rewind the schema version and migrate again; summaries are then
// dropped, which the platform's fallback covers). The listing's index
// carries the summary, so that a listing reads the index alone.
const itcSummarySchema = `
CREATE TABLE itc_runs_7(
	id TEXT PRIMARY KEY, start_t INTEGER NOT NULL,
	summary BLOB NOT NULL DEFAULT x'', -- empty: stored before version 7
	body BLOB NOT NULL) WITHOUT ROWID;
INSERT INTO itc_runs_7(id, start_t, body) SELECT id, start_t, body FROM itc_runs;
DROP TABLE itc_runs;
ALTER TABLE itc_runs_7 RENAME TO itc_runs;
CREATE INDEX itc_runs_start ON itc_runs(start_t, id, summary);
`

var _ store.ITCRuns = (*Store)(nil)

// PutITCRun implements store.ITCRuns.
func (s *Store) PutITCRun(ctx context.Context, id string, start time.Time, summary, body []byte) error {
	if err := store.CheckITCRunID(id); err != nil {
		return fmt.Errorf("put itc run: %w", err)
	}
	// The columns are NOT NULL.
	if summary == nil {
		summary = []byte{}
	}
	if body == nil {
		body = []byte{}
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO itc_runs(id, start_t, summary, body) VALUES(?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET start_t = excluded.start_t, summary = excluded.summary, body = excluded.body`,
		id, start.UnixMilli(), summary, body)
	if err != nil {
		return fmt.Errorf("put itc run %q: %w", id, err)
	}
	return nil
}

// itcListQuery lists runs, newest first: from the index itc_runs_start
// alone, which carries the summaries (TestITCListReadsIndexOnly).
const itcListQuery = `SELECT id, start_t, summary FROM itc_runs ORDER BY start_t DESC, id DESC LIMIT ?`

// ListITCRuns implements store.ITCRuns.
func (s *Store) ListITCRuns(ctx context.Context, limit int) ([]store.ITCRunInfo, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.db.QueryContext(ctx, itcListQuery, limit)
	if err != nil {
		return nil, fmt.Errorf("list itc runs: %w", err)
	}
	defer rows.Close()
	return store.CollectITCRuns(rows)
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
