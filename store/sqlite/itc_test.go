package sqlite

import (
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
	if err := m.PutITCRun(ctx, "r1", time.UnixMilli(1000), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetITCRun(ctx, "r1"); err != nil || string(got) != `{}` {
		t.Errorf("GetITCRun through the other handle = %q, %v", got, err)
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
	if err := s.PutITCRun(ctx, "r1", time.UnixMilli(1000), []byte(`{}`)); err != nil {
		t.Errorf("PutITCRun after migrating: %v", err)
	}
	var v int
	if err := s.db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil || v != schemaVersion {
		t.Errorf("schema version after migrating: %d, %v; want %d", v, err, schemaVersion)
	}
}
