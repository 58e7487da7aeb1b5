package postgres_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/gridlink/gridlink/store/storetest"
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
	url, schema, s := openWithSite(t)
	storetest.PutLedgerBeforeMarks(t, s, "s")
	s.Close()
	rewind(t, url, undoLedgerMarks(schema))
	s = open(t, url, schema)
	defer s.Close()
	storetest.CheckLedgerMarksMigrated(t, s, "s")
}
