package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/internal/pgtest"
	"github.com/gridlink/gridlink/store"
)

// undoRollupInc takes a schema back to before migration 0006.
func undoRollupInc(schema string) []string {
	return []string{
		"ALTER TABLE " + pgx.Identifier{schema, "rollups_15m"}.Sanitize() + " DROP COLUMN inc",
		"DELETE FROM " + pgx.Identifier{schema, "schema_version"}.Sanitize() + " WHERE version = 6",
	}
}

// TestMigrateRollupInc turns a schema back into what it was before the
// rollups kept the counter's increase, and checks that Open computes it
// for the stored rollups: the delta over counter resets, answered from the
// rollups, is the reset-aware one.
func TestMigrateRollupInc(t *testing.T) {
	url := pgtest.URL(t)
	schema := newSchema(t, url)
	ctx := t.Context()
	s := open(t, url, schema)
	if err := s.PutSite(ctx, cim.Site{ID: "s", Name: "S"}); err != nil {
		t.Fatal(err)
	}
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
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, q := range undoRollupInc(schema) {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
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

// BenchmarkAggregateDay aggregates one day of a 1 s energy register (with a
// reset at noon): 15-minute and 1-minute steps, delta (the reset-aware
// increase) against avg.
func BenchmarkAggregateDay(b *testing.B) {
	s, _, _ := benchStore(b)
	ctx := b.Context()
	const t0, n = 1_709_251_200_000, 86_400
	key := cim.SeriesKey{Asset: "m1", Quantity: "energy_active_import"}
	rs := make([]cim.Reading, n)
	v := 1e6
	for i := range rs {
		v += float64(i%7) / 4
		if i == n/2 {
			v = 0
		}
		rs[i] = cim.Reading{SeriesKey: key, Point: cim.Point{Time: t0 + int64(i)*1000, Value: v}}
	}
	if _, err := s.Write(ctx, "s", rs); err != nil {
		b.Fatal(err)
	}
	sel := store.Selector{Site: "s", From: t0, To: t0 + n*1000}
	for _, c := range []struct {
		step time.Duration
		agg  store.Agg
	}{{15 * time.Minute, store.AggDelta}, {15 * time.Minute, store.AggAvg}, {time.Minute, store.AggDelta}, {time.Minute, store.AggAvg}} {
		b.Run(fmt.Sprintf("%v/%s", c.step, c.agg), func(b *testing.B) {
			for b.Loop() {
				pts := 0
				if err := s.Aggregate(ctx, sel, c.step, c.agg, func(_ store.Series, ps []cim.Point) error {
					pts += len(ps)
					return nil
				}); err != nil || pts != int(n*time.Second/c.step) {
					b.Fatalf("%d points, %v", pts, err)
				}
			}
		})
	}
}
