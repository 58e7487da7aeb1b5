package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gridlink/gridlink/store"
)

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
	_, err := s.pool.Exec(ctx, `INSERT INTO itc_runs (id, start_t, summary, body) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET start_t = excluded.start_t, summary = excluded.summary, body = excluded.body`,
		id, start.UnixMilli(), summary, body)
	if err != nil {
		return fmt.Errorf("put itc run %q: %w", id, err)
	}
	return nil
}

// ListITCRuns implements store.ITCRuns.
func (s *Store) ListITCRuns(ctx context.Context, limit int) ([]store.ITCRunInfo, error) {
	var lim any // NULL: no limit
	if limit > 0 {
		lim = limit
	}
	rows, err := s.pool.Query(ctx, `SELECT id, start_t, summary FROM itc_runs ORDER BY start_t DESC, id DESC LIMIT $1`, lim)
	if err != nil {
		return nil, fmt.Errorf("list itc runs: %w", err)
	}
	defer rows.Close()
	return store.CollectITCRuns(rows)
}

// GetITCRun implements store.ITCRuns.
func (s *Store) GetITCRun(ctx context.Context, id string) ([]byte, error) {
	if store.CheckITCRunID(id) != nil {
		// No such id was ever stored, and PostgreSQL refuses some of them (NUL, bad UTF-8).
		return nil, fmt.Errorf("itc run %q: %w", strings.ToValidUTF8(id, "?"), store.ErrNotFound)
	}
	var body []byte
	err := s.pool.QueryRow(ctx, `SELECT body FROM itc_runs WHERE id = $1`, id).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("itc run %q: %w", strings.ToValidUTF8(id, "?"), store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get itc run %q: %w", id, err)
	}
	return body, nil
}
