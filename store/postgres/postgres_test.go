package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/internal/pgtest"
	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/postgres"
	"github.com/gridlink/gridlink/store/storetest"
)

// newSchema returns the name of a schema that no other test uses and drops
// it, with everything in it, when the test ends.
func newSchema(tb testing.TB, url string) string {
	tb.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	schema := "gridlink_test_" + hex.EncodeToString(b)
	pgtest.DropAtCleanup(tb, url, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	return schema
}

// openWithSite opens a store on a fresh schema holding site "s", for a
// migration test: it rewinds the schema and opens it again.
func openWithSite(t *testing.T) (url, schema string, s *postgres.Store) {
	t.Helper()
	url = pgtest.URL(t)
	schema = newSchema(t, url)
	s = open(t, url, schema)
	if err := s.PutSite(t.Context(), cim.Site{ID: "s", Name: "S"}); err != nil {
		t.Fatal(err)
	}
	return url, schema, s
}

// rewind runs statements that take a schema back to an older version,
// while no store has it open.
func rewind(t *testing.T, url string, qs []string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, q := range qs {
		if _, err := conn.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func open(tb testing.TB, url, schema string) *postgres.Store {
	tb.Helper()
	s, err := postgres.Open(context.Background(), url, postgres.Options{Schema: schema})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	return s
}

// benchStore opens a store on a schema of its own, with site "s", for a
// benchmark. The store is closed, and the schema dropped, when b ends.
func benchStore(b *testing.B) (s *postgres.Store, url, schema string) {
	b.Helper()
	url = pgtest.URL(b)
	schema = newSchema(b, url)
	s = open(b, url, schema)
	b.Cleanup(func() { s.Close() })
	if err := s.PutSite(context.Background(), cim.Site{ID: "s", Name: "S"}); err != nil {
		b.Fatal(err)
	}
	return s, url, schema
}

// TestConformance runs the conformance suite, and after each subtest
// checks that the rollups equal what the readings give.
func TestConformance(t *testing.T) {
	url := pgtest.URL(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		schema := newSchema(t, url)
		s := open(t, url, schema)
		t.Cleanup(func() { checkRollups(t, url, schema) }) // runs after the suite's Close
		return s
	})
}

// TestConformanceReopen checks that charging data survives closing the
// store and opening the same schema again, as another node would.
func TestConformanceReopen(t *testing.T) {
	url := pgtest.URL(t)
	storetest.RunReopen(t, func(t *testing.T) (store.Store, func(t *testing.T) store.Store) {
		schema := newSchema(t, url)
		return open(t, url, schema), func(t *testing.T) store.Store { return open(t, url, schema) }
	})
}

// checkRollups compares every row of rollups_15m with the same summary
// computed from the readings, and reports periods missing on either side.
func checkRollups(tb testing.TB, url, schema string) {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Errorf("check rollups: %v", err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SET search_path TO "+pgx.Identifier{schema}.Sanitize()); err != nil {
		tb.Errorf("check rollups: %v", err)
		return
	}
	rows, err := conn.Query(ctx, `
		WITH truth AS (
			SELECT series_id, t - ((t % 900000) + 900000) % 900000 AS bucket, count(*)::int4 AS n, sum(v) AS sum,
				min(v) AS min, max(v) AS max, min(t) AS first_t, max(t) AS last_t
			FROM readings GROUP BY 1, 2
		), want AS (
			SELECT g.*, f.v AS first_v, l.v AS last_v FROM truth g
			JOIN readings f ON f.series_id = g.series_id AND f.t = g.first_t
			JOIN readings l ON l.series_id = g.series_id AND l.t = g.last_t
		)
		SELECT series_id, bucket, coalesce(w.n, 0), coalesce(r.n, 0)
		FROM want w FULL JOIN rollups_15m r USING (series_id, bucket)
		WHERE w.n IS DISTINCT FROM r.n OR w.min IS DISTINCT FROM r.min OR w.max IS DISTINCT FROM r.max
			OR w.first_t IS DISTINCT FROM r.first_t OR w.first_v IS DISTINCT FROM r.first_v
			OR w.last_t IS DISTINCT FROM r.last_t OR w.last_v IS DISTINCT FROM r.last_v
			OR abs(w.sum - r.sum) > 1e-9 * greatest(abs(w.sum), abs(r.sum))
		ORDER BY 1, 2 LIMIT 10`)
	if err != nil {
		tb.Errorf("check rollups: %v", err)
		return
	}
	var (
		id         int32
		bucket     int64
		nWant, nIs int32
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &bucket, &nWant, &nIs}, func() error {
		tb.Errorf("rollup of series %d at %d (%s) differs from its readings (%d readings, rollup says %d)",
			id, bucket, cim.TimeOf(bucket).Format(time.RFC3339), nWant, nIs)
		return nil
	}); err != nil {
		tb.Errorf("check rollups: %v", err)
	}
}

func TestReopen(t *testing.T) {
	url := pgtest.URL(t)
	schema := newSchema(t, url)
	ctx := context.Background()
	s := open(t, url, schema)
	if err := s.PutSite(ctx, cim.Site{ID: "s", Name: "S"}); err != nil {
		t.Fatal(err)
	}
	rs := []cim.Reading{
		{SeriesKey: cim.SeriesKey{Asset: "m1", Quantity: "energy_import"}, Point: cim.Point{Time: 1_709_251_200_000, Value: 10}},
		{SeriesKey: cim.SeriesKey{Asset: "m1", Quantity: "energy_import"}, Point: cim.Point{Time: 1_709_251_260_000, Value: 12}},
	}
	if _, err := s.Write(ctx, "s", rs); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Write(ctx, "s", rs); err == nil {
		t.Errorf("Write after Close: no error")
	}

	s = open(t, url, schema)
	defer s.Close()
	if _, err := s.Site(ctx, "s"); err != nil {
		t.Errorf("Site after reopening: %v", err)
	}
	lp, err := s.Latest(ctx, "s")
	if err != nil || len(lp) != 1 || lp[0].Value != 12 {
		t.Errorf("Latest after reopening: %+v, %v; want 12", lp, err)
	}
	res, err := s.Write(ctx, "s", rs)
	if err != nil || res != (store.WriteResult{Duplicate: 2}) {
		t.Errorf("Write of the same readings after reopening: %+v, %v; want 2 duplicates", res, err)
	}
	var n int
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// One row per migration, each applied once.
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) < 4 {
		t.Fatalf("migrations: %v, %v", files, err)
	}
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema, "schema_version"}.Sanitize()).Scan(&n); err != nil || n != len(files) {
		t.Errorf("schema_version after reopening: %d rows, %v; want %d", n, err, len(files))
	}
}

// TestMigrateCharging turns a schema back into what migration 0001 alone
// made and checks that Open applies 0002 (the charging tables) and 0003
// to it, keeping what it held.
func TestMigrateCharging(t *testing.T) {
	ctx := t.Context()
	url, schema, s := openWithSite(t)
	s.Close()
	rewind(t, url, append(undoLedger(schema),
		"DROP TABLE "+pgx.Identifier{schema, "sessions"}.Sanitize(),
		"DROP TABLE "+pgx.Identifier{schema, "charge_point_secrets"}.Sanitize(),
		"DROP TABLE "+pgx.Identifier{schema, "id_tags"}.Sanitize(),
		"DELETE FROM "+pgx.Identifier{schema, "schema_version"}.Sanitize()+" WHERE version = 2",
	))
	s = open(t, url, schema)
	defer s.Close()
	if _, err := s.Site(ctx, "s"); err != nil {
		t.Errorf("Site after migrating: %v", err)
	}
	if err := s.PutIDTag(ctx, "s", "T1", time.Time{}); err != nil {
		t.Errorf("PutIDTag after migrating: %v", err)
	}
	if err := s.PutSession(ctx, store.Session{Site: "s", ChargePoint: "cp", TransactionID: 1, Start: time.Now()}); err != nil {
		t.Errorf("PutSession after migrating: %v", err)
	}
}

// TestTwoNodes writes the same series from two stores on one schema, as
// two platform nodes would: first overlapping new readings, then the same
// corrections from both. Every reading must be stored once with its last
// value, the counts must add up, and the rollups must stay exact.
func TestTwoNodes(t *testing.T) {
	url := pgtest.URL(t)
	schema := newSchema(t, url)
	ctx := context.Background()
	nodes := []*postgres.Store{open(t, url, schema), open(t, url, schema)}
	defer func() {
		for _, n := range nodes {
			n.Close()
		}
	}()
	if err := nodes[0].PutSite(ctx, cim.Site{ID: "s", Name: "S"}); err != nil {
		t.Fatal(err)
	}
	const base = int64(1_709_251_200_000)
	reading := func(k int, v float64) cim.Reading {
		return cim.Reading{
			SeriesKey: cim.SeriesKey{Asset: fmt.Sprintf("m%d", k%3), Quantity: "active_power"},
			Point:     cim.Point{Time: base + int64(k/3)*7000, Value: v},
		}
	}
	const writers, keys = 8, 3000
	run := func(value func(k int) float64, pick func(k int) bool) store.WriteResult {
		var (
			mu  sync.Mutex
			sum store.WriteResult
			wg  sync.WaitGroup
		)
		for w := range writers {
			wg.Go(func() {
				// Each writer sends every key it picks, in its own order and
				// batch sizes, through one node or the other.
				var batch []cim.Reading
				flush := func(node int) bool {
					res, err := nodes[node].Write(ctx, "s", batch)
					if err != nil {
						t.Errorf("writer %d: %v", w, err)
						return false
					}
					mu.Lock()
					sum = sum.Add(res)
					mu.Unlock()
					batch = batch[:0]
					return true
				}
				for i := range keys {
					k := (i*7919 + w*1543) % keys
					if !pick(k) {
						continue
					}
					batch = append(batch, reading(k, value(k)))
					if len(batch) == 50+w*30 && !flush((w+i)%2) {
						return
					}
				}
				if len(batch) > 0 {
					flush(w % 2)
				}
			})
		}
		wg.Wait()
		return sum
	}
	first := func(k int) float64 { return float64(k) }
	second := func(k int) float64 { return -float64(k) - 1 }
	corrected := func(k int) bool { return k%5 == 0 }
	if got := run(first, func(int) bool { return true }); got != (store.WriteResult{Accepted: keys, Duplicate: (writers - 1) * keys}) {
		t.Errorf("first round: %+v, want %d accepted and %d duplicates", got, keys, (writers-1)*keys)
	}
	if got := run(second, corrected); got != (store.WriteResult{Duplicate: (writers - 1) * keys / 5, Corrected: keys / 5}) {
		t.Errorf("second round: %+v, want %d corrected and %d duplicates", got, keys/5, (writers-1)*keys/5)
	}
	want := make(map[cim.SeriesKey]map[int64]float64)
	for k := range keys {
		v := first(k)
		if corrected(k) {
			v = second(k)
		}
		r := reading(k, v)
		if want[r.SeriesKey] == nil {
			want[r.SeriesKey] = make(map[int64]float64)
		}
		want[r.SeriesKey][r.Time] = v
	}
	n := 0
	err := nodes[1].Read(ctx, store.Selector{Site: "s"}, func(s store.Series, pts []cim.Point) error {
		for _, p := range pts {
			n++
			if w, ok := want[s.SeriesKey][p.Time]; !ok || w != p.Value {
				t.Errorf("%s at %d: got %v, want %v (stored: %v)", s.Asset, p.Time, p.Value, w, ok)
			}
		}
		return nil
	})
	if err != nil || n != keys {
		t.Errorf("Read: %d points, %v; want %d", n, err, keys)
	}
	checkRollups(t, url, schema)
}

// groupCounter is a slog.Handler that counts committed write groups.
type groupCounter struct {
	mu     sync.Mutex
	groups int
}

func (h *groupCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *groupCounter) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *groupCounter) WithGroup(string) slog.Handler            { return h }
func (h *groupCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "committed write group" {
		h.mu.Lock()
		h.groups++
		h.mu.Unlock()
	}
	return nil
}

// TestGroupCommit checks that concurrent writers share transactions.
func TestGroupCommit(t *testing.T) {
	url := pgtest.URL(t)
	h := &groupCounter{}
	s, err := postgres.Open(context.Background(), url, postgres.Options{Schema: newSchema(t, url), Logger: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.PutSite(ctx, cim.Site{ID: "s", Name: "S"}); err != nil {
		t.Fatal(err)
	}
	const writers, writes = 16, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range writes {
				r := cim.Reading{SeriesKey: cim.SeriesKey{Asset: "m1", Quantity: fmt.Sprintf("q%d", w)}, Point: cim.Point{Time: int64(i), Value: 1}}
				if _, err := s.Write(ctx, "s", []cim.Reading{r}); err != nil {
					t.Errorf("Write: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	t.Logf("%d writes in %d transactions", writers*writes, h.groups)
	if h.groups == 0 || h.groups >= writers*writes {
		t.Errorf("%d writes took %d transactions, want fewer", writers*writes, h.groups)
	}
}

// TestOpenConcurrently opens one new schema from several stores at once:
// the migration runs once, under its lock.
func TestOpenConcurrently(t *testing.T) {
	url := pgtest.URL(t)
	schema := newSchema(t, url)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			s, err := postgres.Open(context.Background(), url, postgres.Options{Schema: schema})
			if err != nil {
				t.Errorf("Open: %v", err)
				return
			}
			s.Close()
		})
	}
	wg.Wait()
}

// BenchmarkWrite100k writes batches of 100,000 new readings (100 series of
// 1,000 points at 1 s) and reports readings per second and the bytes that
// each stored reading takes in the readings table with its index.
func BenchmarkWrite100k(b *testing.B) {
	s, url, schema := benchStore(b)
	ctx := context.Background()
	const nSeries, nPoints = 100, 1000
	batch := make([]cim.Reading, 0, nSeries*nPoints)
	base := int64(1_709_251_200_000)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		batch = batch[:0]
		for p := range int64(nPoints) {
			for k := range nSeries {
				batch = append(batch, cim.Reading{
					SeriesKey: cim.SeriesKey{Asset: fmt.Sprintf("house-%02d/meter", k/4), Quantity: fmt.Sprintf("q%d", k%4)},
					Point:     cim.Point{Time: base + (int64(i)*nPoints+p)*1000, Value: float64(p*int64(k)) / 8},
				})
			}
		}
		b.StartTimer()
		res, err := s.Write(ctx, "s", batch)
		if err != nil {
			b.Fatal(err)
		}
		if res.Accepted != len(batch) {
			b.Fatalf("Write: %+v, want %d accepted", res, len(batch))
		}
	}
	b.ReportMetric(float64(b.N*nSeries*nPoints)/b.Elapsed().Seconds(), "readings/s")
	b.StopTimer()

	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	var size, rows, rollups float64
	table := pgx.Identifier{schema, "readings"}.Sanitize()
	if err := pool.QueryRow(ctx, fmt.Sprintf("SELECT pg_total_relation_size('%s'), (SELECT count(*) FROM %s), pg_total_relation_size('%s')",
		table, table, pgx.Identifier{schema, "rollups_15m"}.Sanitize())).Scan(&size, &rows, &rollups); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(size/rows, "B/reading")
	b.ReportMetric((size+rollups)/rows, "B/reading+rollups")
}

// BenchmarkRewrite100k writes the same batch of 100,000 readings again and
// again, as a gateway re-sending after a lost acknowledgement would: every
// reading is a duplicate, and one in ten is changed every other time.
func BenchmarkRewrite100k(b *testing.B) {
	s, _, _ := benchStore(b)
	ctx := context.Background()
	batch := make([]cim.Reading, 0, 100_000)
	for p := range int64(1000) {
		for k := range 100 {
			batch = append(batch, cim.Reading{
				SeriesKey: cim.SeriesKey{Asset: fmt.Sprintf("house-%02d/meter", k/4), Quantity: fmt.Sprintf("q%d", k%4)},
				Point:     cim.Point{Time: 1_709_251_200_000 + p*1000, Value: float64(p)},
			})
		}
	}
	if _, err := s.Write(ctx, "s", batch); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 1 {
			for k := 0; k < len(batch); k += 10 {
				batch[k].Value = -batch[k].Value - 1
			}
		}
		if _, err := s.Write(ctx, "s", batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "readings/s")
}

// BenchmarkWriteSmall writes calls of 10 readings one after another, the
// pattern of live ingestion from one gateway: each call waits for its commit.
func BenchmarkWriteSmall(b *testing.B) {
	s, _, _ := benchStore(b)
	ctx := context.Background()
	batch := make([]cim.Reading, 10)
	for i := range b.N {
		for k := range batch {
			batch[k] = cim.Reading{
				SeriesKey: cim.SeriesKey{Asset: "m1", Quantity: fmt.Sprintf("q%d", k)},
				Point:     cim.Point{Time: 1_709_251_200_000 + int64(i)*1000, Value: float64(i)},
			}
		}
		if _, err := s.Write(ctx, "s", batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "readings/s")
}
