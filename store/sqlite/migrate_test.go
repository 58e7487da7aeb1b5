package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
)

// rawExec runs statements on the database file of dir while no store has
// it open.
func rawExec(t *testing.T, dir string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// TestMigrateVersion1 turns a database back into what the first release
// wrote (schema version 1, no charging tables) and checks that Open
// migrates it, keeping what it held.
func TestMigrateVersion1(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := newTestStore(t, dir, Options{NoSync: true})
	if err := s.PutSite(ctx, cim.Site{ID: "bristol", Name: "Bristol"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rawExec(t, dir, append(append(undoRollupInc, undoLedger...), `DROP TABLE sessions`, `DROP TABLE charge_point_secrets`, `DROP TABLE id_tags`,
		`UPDATE schema_version SET version = 1`)...)

	s = newTestStore(t, dir, Options{NoSync: true})
	if _, err := s.Site(ctx, "bristol"); err != nil {
		t.Fatalf("site after migrating: %v", err)
	}
	if err := s.PutIDTag(ctx, "bristol", "T1", time.Time{}); err != nil {
		t.Fatalf("PutIDTag after migrating: %v", err)
	}
	var v int
	if err := s.db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil || v != schemaVersion {
		t.Errorf("schema version after migrating: %d, %v; want %d", v, err, schemaVersion)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Opening again changes nothing.
	s = newTestStore(t, dir, Options{NoSync: true, MetaOnly: true})
	if _, found, err := s.IDTag(ctx, "bristol", "t1"); err != nil || !found {
		t.Errorf("IDTag after reopening: found %v, %v", found, err)
	}
}

// undoLedger takes a database back to before migration 2 → 3.
var undoLedger = []string{
	`DROP TABLE ledger_entries`, `DROP TABLE ledger_hashes`, `DROP TABLE ledger_checkpoints`,
	`DROP TABLE ledger_subjects`, `DROP TABLE ledger_signers`, `ALTER TABLE assets DROP COLUMN ledger`,
}

// TestMigrateVersion2 turns a database back into schema version 2 (no
// ledger) and checks that Open adds the ledger tables and the assets'
// ledger mark, keeping the assets (not marked).
func TestMigrateVersion2(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := newTestStore(t, dir, Options{NoSync: true})
	if err := s.PutSite(ctx, cim.Site{ID: "bristol", Name: "Bristol"}); err != nil {
		t.Fatal(err)
	}
	a := cim.Asset{Site: "bristol", ID: "m1", Type: cim.SmartMeter, Ledger: true}
	if err := s.PutAsset(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rawExec(t, dir, append(append(undoRollupInc, undoLedger...), `UPDATE schema_version SET version = 2`)...)

	s = newTestStore(t, dir, Options{NoSync: true})
	got, err := s.Asset(ctx, "bristol", "m1")
	if a.Ledger = false; err != nil || got != a {
		t.Errorf("asset after migrating: %+v, %v; want %+v", got, err, a)
	}
	a.Ledger = true
	if err := s.PutAsset(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Asset(ctx, "bristol", "m1"); err != nil || !got.Ledger {
		t.Errorf("asset marked for the ledger after migrating: %+v, %v", got, err)
	}
	if err := s.PutSigner(ctx, "bristol", "gw-1", []byte("pk")); err != nil {
		t.Errorf("PutSigner after migrating: %v", err)
	}
	if n, err := s.LedgerSize(ctx); err != nil || n != 0 {
		t.Errorf("LedgerSize after migrating: %d, %v", n, err)
	}
	var v int
	if err := s.db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil || v != schemaVersion {
		t.Errorf("schema version after migrating: %d, %v; want %d", v, err, schemaVersion)
	}
}

// TestMigrateNewer refuses a database written by a newer gridlink.
func TestMigrateNewer(t *testing.T) {
	dir := t.TempDir()
	s := newTestStore(t, dir, Options{NoSync: true})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rawExec(t, dir, `UPDATE schema_version SET version = 99`)
	s2, err := Open(context.Background(), dir, Options{NoSync: true})
	if err == nil {
		s2.Close()
		t.Fatal("Open of a database with schema version 99: no error")
	}
	if !strings.Contains(err.Error(), "schema version 99") {
		t.Errorf("Open of a database with schema version 99: %v, want the version named", err)
	}
}

// undoChargePointAsset takes a database back to before migration 5 → 6.
var undoChargePointAsset = undoAfterMarks(`ALTER TABLE charge_point_secrets DROP COLUMN asset`)

// TestMigrateChargePointAsset turns a database back into schema version 5,
// whose charge points have no asset of their own, and checks that Open
// gives each one its id as its asset (what the central system used until
// then), keeping its site and password.
func TestMigrateChargePointAsset(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := newTestStore(t, dir, Options{NoSync: true})
	if err := s.PutSite(ctx, cim.Site{ID: "bristol", Name: "Bristol"}); err != nil {
		t.Fatal(err)
	}
	hash := sha256.Sum256([]byte("0123456789abcdef"))
	if err := s.PutChargePointSecret(ctx, "bristol", "evse-01", "house-01/evse", hash); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rawExec(t, dir, append(undoChargePointAsset, `UPDATE schema_version SET version = 5`)...)

	s = newTestStore(t, dir, Options{NoSync: true, MetaOnly: true})
	site, asset, got, err := s.ChargePointSecret(ctx, "evse-01")
	if err != nil || site != "bristol" || asset != "evse-01" || got != hash {
		t.Errorf("charge point after migrating: site %q asset %q hash match %v, %v; want bristol, evse-01, true",
			site, asset, got == hash, err)
	}
	if err := s.PutChargePointSecret(ctx, "bristol", "evse-01", "house-01/evse", hash); err != nil {
		t.Fatalf("PutChargePointSecret after migrating: %v", err)
	}
	if _, asset, _, err := s.ChargePointSecret(ctx, "evse-01"); err != nil || asset != "house-01/evse" {
		t.Errorf("asset after re-registering: %q, %v", asset, err)
	}
	var v int
	if err := s.db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil || v != schemaVersion {
		t.Errorf("schema version after migrating: %d, %v; want %d", v, err, schemaVersion)
	}
}
