package sqlite

import (
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/storetest"
)

// undoRollupInc takes a database back to before migration 4 → 5.
var undoRollupInc = []string{`ALTER TABLE rollups DROP COLUMN inc`}

// TestMigrateRollupInc turns a database back into schema version 4, whose
// rollups lack the counter's increase, and checks that Open rebuilds them:
// the delta over a counter reset, answered from the rollups, is the
// reset-aware one.
func TestMigrateRollupInc(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := newTestStore(t, dir, Options{NoSync: true})
	const t0 = 1_709_251_200_000 // 2024-03-01T00:00:00Z
	key := cim.SeriesKey{Asset: "m1", Quantity: "energy_active_import"}
	var rs []cim.Reading
	for i, v := range []float64{100, 110, 3, 8, 2, 12} { // resets to 3 and to 2
		rs = append(rs, cim.Reading{SeriesKey: key, Point: cim.Point{Time: t0 + int64(i)*5*60_000, Value: v}})
	}
	if _, err := s.Write(ctx, "s", rs); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // flushes the head into blocks and rollups
		t.Fatal(err)
	}
	rawExec(t, dir, append(undoRollupInc, `UPDATE schema_version SET version = 4`)...)

	s = newTestStore(t, dir, Options{NoSync: true})
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM rollups WHERE inc > 0`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("rollups with an increase after migrating: %d, %v; want 2", n, err)
	}
	// 100→110 (+10), →3 (reset, +3); →8 (+5), →2 (reset, +2), →12 (+10).
	want := []cim.Point{{Time: t0, Value: 13}, {Time: t0 + 15*60_000, Value: 17}}
	var got []cim.Point
	if err := s.Aggregate(ctx, store.Selector{Site: "s"}, 15*time.Minute, store.AggDelta, func(_ store.Series, ps []cim.Point) error {
		got = append(got, ps...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("delta after migrating: %v, want %v", got, want)
	}
}

// BenchmarkAggregateDay is storetest.BenchAggregateDay on SQLite, the day
// flushed into blocks and rollups.
func BenchmarkAggregateDay(b *testing.B) {
	s := newTestStore(b, b.TempDir(), Options{NoSync: true})
	storetest.BenchAggregateDay(b, s, func() error { return s.flush(b.Context()) })
}
