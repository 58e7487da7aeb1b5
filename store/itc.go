package store

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"
)

// ITCRunInfo is one stored run of the integration test cases (package
// itc) as ListITCRuns lists it: its id, start and the summary the platform
// computed when the run was posted. The run's body (megabytes for a demo
// run) is not read by a listing; GetITCRun returns it.
type ITCRunInfo struct {
	ID    string
	Start time.Time // UTC, millisecond precision
	// Summary is opaque to the store. It is empty for runs stored before
	// stores kept summaries (SQLite schema version 7, PostgreSQL migration
	// 0007); the platform then summarises the body itself.
	Summary []byte
}

// MaxITCRunID bounds the length of a run id, in bytes.
const MaxITCRunID = 200

// ITCRuns keeps the results of integration test runs. Drivers implement it
// beside Store; the platform finds it with a type assertion, as it does
// Ledger.
type ITCRuns interface {
	// PutITCRun stores a run's body and its summary (small JSON the
	// platform lists; the store neither reads nor checks either),
	// replacing start, summary and body of a run of the same id (a run
	// posted again, say after a retry). The id must pass CheckITCRunID.
	PutITCRun(ctx context.Context, id string, start time.Time, summary, body []byte) error
	// ListITCRuns returns up to limit runs with their summaries, newest
	// start first (equal starts: greater id first); limit <= 0 means every
	// run. It reads no body, so that its cost does not grow with the runs'
	// sizes.
	ListITCRuns(ctx context.Context, limit int) ([]ITCRunInfo, error)
	// GetITCRun returns a run's body, or ErrNotFound.
	GetITCRun(ctx context.Context, id string) ([]byte, error)
}

// CheckITCRunID refuses an id that is empty, longer than MaxITCRunID
// bytes, not UTF-8 or holding control characters, so that every driver
// keeps the same ids.
func CheckITCRunID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("itc run id: empty")
	case len(id) > MaxITCRunID:
		return fmt.Errorf("itc run id %.40q…: longer than %d bytes", id, MaxITCRunID)
	case !utf8.ValidString(id):
		return fmt.Errorf("itc run id %q: not valid UTF-8", id)
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("itc run id %q: holds a control character", id)
		}
	}
	return nil
}

// ITCRunRows is what both drivers' query results offer (database/sql's
// *Rows and pgx's Rows): rows of id, start (Unix ms) and summary.
type ITCRunRows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// CollectITCRuns reads the rows of a run listing, for the drivers'
// ListITCRuns.
func CollectITCRuns(rows ITCRunRows) ([]ITCRunInfo, error) {
	var out []ITCRunInfo
	for rows.Next() {
		var r ITCRunInfo
		var ms int64
		if err := rows.Scan(&r.ID, &ms, &r.Summary); err != nil {
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
