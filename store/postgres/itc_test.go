package postgres_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/internal/pgtest"
	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/storetest"
)

func TestITCConformance(t *testing.T) {
	url := pgtest.URL(t)
	storetest.RunITC(t, func(t *testing.T) store.ITCRuns { return open(t, url, newSchema(t, url)) })
}

// TestMigrateITC turns a schema back into what migrations 0001 to 0003
// made and checks that Open applies 0004, keeping the sites.
func TestMigrateITC(t *testing.T) {
	url := pgtest.URL(t)
	schema := newSchema(t, url)
	ctx := t.Context()
	s := open(t, url, schema)
	if err := s.PutSite(ctx, cim.Site{ID: "s", Name: "S"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, q := range undoITC(schema) {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s = open(t, url, schema)
	defer s.Close()
	if _, err := s.Site(ctx, "s"); err != nil {
		t.Errorf("site after migrating: %v", err)
	}
	if err := s.PutITCRun(ctx, "r1", time.UnixMilli(1000), []byte(`{"cases":0}`), []byte(`{}`)); err != nil {
		t.Errorf("PutITCRun after migrating: %v", err)
	}
}

// undoITCSummary takes a schema back to before migration 0007 (and 0008).
// It heads undoRollupInc, so that every rewind to before 0006 removes it
// too: Open applies only the migrations above the highest version
// recorded.
func undoITCSummary(schema string) []string {
	return append(undoLedgerMarks(schema),
		"ALTER TABLE "+pgx.Identifier{schema, "itc_runs"}.Sanitize()+" DROP COLUMN summary",
		"DELETE FROM "+pgx.Identifier{schema, "schema_version"}.Sanitize()+" WHERE version = 7",
	)
}

// TestMigrateITCSummary turns a schema back into what migrations 0001 to
// 0006 made, whose runs have no summary, and checks that Open applies
// 0007: every run and its body are kept, with an empty summary (which the
// platform summarises from the body), and runs put afterwards keep theirs.
func TestMigrateITCSummary(t *testing.T) {
	ctx := t.Context()
	url, schema, s := openWithSite(t)
	big := bytes.Repeat([]byte("x"), 1<<20) // TOASTed out of line
	if err := s.PutITCRun(ctx, "old", time.UnixMilli(1000), []byte(`{"cases":1}`), big); err != nil {
		t.Fatal(err)
	}
	s.Close()
	rewind(t, url, undoITCSummary(schema))
	s = open(t, url, schema)
	defer s.Close()
	storetest.CheckITCRunsUnsummarised(t, s, big)
	// Replacing the old run gives it a summary.
	if err := s.PutITCRun(ctx, "old", time.UnixMilli(1000), []byte(`{"cases":1}`), big); err != nil {
		t.Fatal(err)
	}
	if runs, err := s.ListITCRuns(ctx, 0); err != nil || len(runs) != 2 || string(runs[1].Summary) != `{"cases":1}` {
		t.Errorf("ListITCRuns after replacing the old run = %+v, %v", runs, err)
	}
}

// undoITC takes a schema back to before migration 0004.
func undoITC(schema string) []string {
	return append(append(undoRollupInc(schema), undoChargePointAsset(schema)...),
		"DROP TABLE "+pgx.Identifier{schema, "itc_runs"}.Sanitize(),
		"DELETE FROM "+pgx.Identifier{schema, "schema_version"}.Sanitize()+" WHERE version = 4",
	)
}
