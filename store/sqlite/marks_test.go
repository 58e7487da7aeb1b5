package sqlite

import (
	"slices"
	"testing"

	"github.com/gridlink/gridlink/store/storetest"
)

// undoLedgerMarks takes a database back to before migration 7 → 8. It
// heads every other undo list (undoAfterMarks), so that each rewind to an
// older version drops the table as well.
var undoLedgerMarks = []string{`DROP TABLE ledger_marks`}

// undoAfterMarks is undoLedgerMarks followed by stmts, clipped so that
// appending to it never writes into another list.
func undoAfterMarks(stmts ...string) []string {
	return slices.Clip(slices.Concat(undoLedgerMarks, stmts))
}

// TestMigrateLedgerMarks turns a database back into schema version 7 (no
// saved reading marks) and checks that Open adds the table, keeping the
// ledger's signers, and that marks are then saved and read back.
func TestMigrateLedgerMarks(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := newTestStore(t, dir, Options{NoSync: true})
	storetest.PutLedgerBeforeMarks(t, s, "bristol")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rawExec(t, dir, append(undoLedgerMarks, `UPDATE schema_version SET version = 7`)...)

	s = newTestStore(t, dir, Options{NoSync: true})
	storetest.CheckLedgerMarksMigrated(t, s, "bristol")
	var v int
	if err := s.db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil || v != schemaVersion {
		t.Errorf("schema version after migrating: %d, %v; want %d", v, err, schemaVersion)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Rewinding the version alone: the migration runs again on the table
	// it made, keeping the marks.
	rawExec(t, dir, `UPDATE schema_version SET version = 7`)
	s = newTestStore(t, dir, Options{NoSync: true})
	if upto, data, found, err := s.LedgerMarks(ctx); err != nil || !found || upto != 7 || string(data) != "new" {
		t.Errorf("LedgerMarks after migrating again = %d, %q, %v, %v; want 7, new", upto, data, found, err)
	}
}
