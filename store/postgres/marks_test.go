package postgres_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
)

// undoLedgerMarks takes a schema back to before migration 0008. It heads
// undoITCSummary, and so every rewind to an older version.
func undoLedgerMarks(schema string) []string {
	return []string{
		"DROP TABLE " + pgx.Identifier{schema, "ledger_marks"}.Sanitize(),
		"DELETE FROM " + pgx.Identifier{schema, "schema_version"}.Sanitize() + " WHERE version = 8",
	}
}

// TestMigrateLedgerMarks turns a schema back into what migrations 0001 to
// 0007 made and checks that Open applies 0008: the ledger's signers are
// kept, no marks are saved, and marks are then saved and read back.
func TestMigrateLedgerMarks(t *testing.T) {
	ctx := t.Context()
	url, schema, s := openWithSite(t)
	if err := s.PutSigner(ctx, "s", "gw-1", []byte("pk")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutLedgerMarks(ctx, 5, []byte("old")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	rewind(t, url, undoLedgerMarks(schema))
	s = open(t, url, schema)
	defer s.Close()
	if site, _, err := s.Signer(ctx, "gw-1"); err != nil || site != "s" {
		t.Errorf("signer after migrating: %q, %v", site, err)
	}
	if _, _, found, err := s.LedgerMarks(ctx); err != nil || found {
		t.Errorf("LedgerMarks after migrating: found %v, %v; want none", found, err)
	}
	if err := s.PutLedgerMarks(ctx, 7, []byte("new")); err != nil {
		t.Fatalf("PutLedgerMarks after migrating: %v", err)
	}
	if upto, data, found, err := s.LedgerMarks(ctx); err != nil || !found || upto != 7 || string(data) != "new" {
		t.Errorf("LedgerMarks = %d, %q, %v, %v; want 7, new", upto, data, found, err)
	}
}
