package sqlite

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/storetest"
)

func TestITCConformance(t *testing.T) {
	storetest.RunITC(t, func(t *testing.T) store.ITCRuns {
		return newTestStore(t, t.TempDir(), Options{NoSync: true})
	})
}

// TestITCMetaOnly: the command line tools open the store for metadata
// only beside a running server; runs are metadata, so they work there
// too, and both handles see the same runs.
func TestITCMetaOnly(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := newTestStore(t, dir, Options{NoSync: true})
	m := newTestStore(t, dir, Options{NoSync: true, MetaOnly: true})
	if err := m.PutITCRun(ctx, "r1", time.UnixMilli(1000), []byte(`{"cases":0}`), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetITCRun(ctx, "r1"); err != nil || string(got) != `{}` {
		t.Errorf("GetITCRun through the other handle = %q, %v", got, err)
	}
	if runs, err := s.ListITCRuns(ctx, 0); err != nil || len(runs) != 1 || string(runs[0].Summary) != `{"cases":0}` {
		t.Errorf("ListITCRuns through the other handle = %+v, %v", runs, err)
	}
}

// TestMigrateVersion3 turns a database back into schema version 3 (no
// ITC runs) and checks that Open adds the table, keeping what it held.
func TestMigrateVersion3(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := newTestStore(t, dir, Options{NoSync: true})
	if err := s.PutSite(ctx, cim.Site{ID: "bristol", Name: "Bristol"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rawExec(t, dir, append(undoRollupInc, `DROP TABLE itc_runs`, `UPDATE schema_version SET version = 3`)...)

	s = newTestStore(t, dir, Options{NoSync: true})
	if _, err := s.Site(ctx, "bristol"); err != nil {
		t.Errorf("site after migrating: %v", err)
	}
	if err := s.PutITCRun(ctx, "r1", time.UnixMilli(1000), []byte(`{"cases":0}`), []byte(`{}`)); err != nil {
		t.Errorf("PutITCRun after migrating: %v", err)
	}
	var v int
	if err := s.db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil || v != schemaVersion {
		t.Errorf("schema version after migrating: %d, %v; want %d", v, err, schemaVersion)
	}
}

// undoITCSummary takes a database back to before migration 6 → 7: the
// table as migration 3 → 4 made it. Migration 6 → 7 also runs on a table
// it made already, so tests that rewind further need not use this.
var undoITCSummary = undoAfterMarks(
	`DROP INDEX itc_runs_start`,
	`ALTER TABLE itc_runs DROP COLUMN summary`,
	`CREATE INDEX itc_runs_start ON itc_runs(start_t, id)`,
)

// TestMigrateITCSummary turns a database back into schema version 6, whose
// runs have no summary, and checks that Open keeps every run and its body
// with an empty summary (which the platform summarises from the body), and
// that runs put afterwards keep theirs. It then rewinds the version alone,
// as other migration tests do, and checks that the migration runs again.
func TestMigrateITCSummary(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := newTestStore(t, dir, Options{NoSync: true})
	big := bytes.Repeat([]byte("x"), 1<<20) // spills into overflow pages
	if err := s.PutITCRun(ctx, "old", time.UnixMilli(1000), []byte(`{"cases":1}`), big); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rawExec(t, dir, append(undoITCSummary, `UPDATE schema_version SET version = 6`)...)

	s = newTestStore(t, dir, Options{NoSync: true})
	storetest.CheckITCRunsUnsummarised(t, s, big)
	var v int
	if err := s.db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil || v != schemaVersion {
		t.Errorf("schema version after migrating: %d, %v; want %d", v, err, schemaVersion)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	rawExec(t, dir, `UPDATE schema_version SET version = 6`)
	s = newTestStore(t, dir, Options{NoSync: true})
	if got, err := s.GetITCRun(ctx, "old"); err != nil || !bytes.Equal(got, big) {
		t.Errorf("GetITCRun after migrating again: %d bytes, %v", len(got), err)
	}
	if runs, err := s.ListITCRuns(ctx, 0); err != nil || len(runs) != 2 {
		t.Errorf("ListITCRuns after migrating again = %d runs, %v; want 2", len(runs), err)
	}
}

// TestITCListReadsIndexOnly checks, with SQLite's own query plan, that a
// listing is answered from the index that carries the summaries, so that
// it touches no body.
func TestITCListReadsIndexOnly(t *testing.T) {
	ctx := t.Context()
	s := newTestStore(t, t.TempDir(), Options{NoSync: true})
	rows, err := s.db.QueryContext(ctx, `EXPLAIN QUERY PLAN `+itcListQuery, 20)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notUsed int
		var detail string
		if err := rows.Scan(&id, &parent, &notUsed, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if p := strings.Join(plan, "; "); !strings.Contains(p, "COVERING INDEX itc_runs_start") || strings.Contains(p, "TEMP B-TREE") {
		t.Errorf("plan of the listing: %s; want a scan of the covering index itc_runs_start, without sorting", p)
	}
}
