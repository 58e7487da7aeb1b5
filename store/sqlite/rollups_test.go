package sqlite

import (
	"testing"

	"github.com/gridlink/gridlink/store/storetest"
)

// undoRollupInc takes a database back to before migration 4 → 5.
var undoRollupInc = undoAfterMarks(`ALTER TABLE rollups DROP COLUMN inc`)

// TestMigrateRollupInc turns a database back into schema version 4, whose
// rollups lack the counter's increase, and checks that Open rebuilds them:
// the delta over a counter reset, answered from the rollups, is the
// reset-aware one.
func TestMigrateRollupInc(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := newTestStore(t, dir, Options{NoSync: true})
	storetest.WriteCounterResets(t, s)
	if err := s.Close(); err != nil { // flushes the head into blocks and rollups
		t.Fatal(err)
	}
	rawExec(t, dir, append(undoRollupInc, `UPDATE schema_version SET version = 4`)...)

	s = newTestStore(t, dir, Options{NoSync: true})
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM rollups WHERE inc > 0`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("rollups with an increase after migrating: %d, %v; want 2", n, err)
	}
	storetest.CheckCounterResets(t, s)
}

// BenchmarkAggregateDay is storetest.BenchAggregateDay on SQLite, the day
// flushed into blocks and rollups.
func BenchmarkAggregateDay(b *testing.B) {
	s := newTestStore(b, b.TempDir(), Options{NoSync: true})
	storetest.BenchAggregateDay(b, s, func() error { return s.flush(b.Context()) })
}
