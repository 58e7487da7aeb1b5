package postgres_test

import (
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/storetest"
)

// undoRollupInc takes a schema back to before migration 0006 (and 0007).
func undoRollupInc(schema string) []string {
	return append(undoITCSummary(schema),
		"ALTER TABLE "+pgx.Identifier{schema, "rollups_15m"}.Sanitize()+" DROP COLUMN inc",
		"DELETE FROM "+pgx.Identifier{schema, "schema_version"}.Sanitize()+" WHERE version = 6",
	)
}

// TestMigrateRollupInc turns a schema back into what it was before the
// rollups kept the counter's increase, and checks that Open computes it
// for the stored rollups: the delta over counter resets, answered from the
// rollups, is the reset-aware one.
func TestMigrateRollupInc(t *testing.T) {
	ctx := t.Context()
	url, schema, s := openWithSite(t)
	const t0 = 1_709_251_200_000 // 2024-03-01T00:00:00Z
	key := cim.SeriesKey{Asset: "m1", Quantity: "energy_active_import"}
	var rs []cim.Reading
	for i, v := range []float64{100, 110, 3, 8, 2, 12} { // resets to 3 and to 2
		rs = append(rs, cim.Reading{SeriesKey: key, Point: cim.Point{Time: t0 + int64(i)*5*60_000, Value: v}})
	}
	if _, err := s.Write(ctx, "s", rs); err != nil {
		t.Fatal(err)
	}
	s.Close()
	rewind(t, url, undoRollupInc(schema))
	s = open(t, url, schema)
	defer s.Close()
	// 100→110 (+10), →3 (reset, +3); →8 (+5), →2 (reset, +2), →12 (+10).
	want := []cim.Point{{Time: t0, Value: 13}, {Time: t0 + 15*60_000, Value: 17}}
	var got []cim.Point
	if err := s.Aggregate(ctx, store.Selector{Site: "s"}, time.Hour/4, store.AggDelta, func(_ store.Series, ps []cim.Point) error {
		got = append(got, ps...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("delta after migrating: %v, want %v", got, want)
	}
}

// BenchmarkAggregateDay is storetest.BenchAggregateDay on PostgreSQL.
func BenchmarkAggregateDay(b *testing.B) {
	s, _, _ := benchStore(b)
	storetest.BenchAggregateDay(b, s, nil)
}
