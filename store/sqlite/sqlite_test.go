package sqlite

import (
	"context"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
)

func newTestStore(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), dir, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func series(asset string) cim.SeriesKey {
	return cim.SeriesKey{Asset: asset, Quantity: "active_power"}
}

func readAll(t *testing.T, s store.Store, site string) map[cim.SeriesKey][]cim.Point {
	t.Helper()
	out := map[cim.SeriesKey][]cim.Point{}
	err := s.Read(context.Background(), store.Selector{Site: site}, func(se store.Series, pts []cim.Point) error {
		out[se.SeriesKey] = append(out[se.SeriesKey], pts...)
		return nil
	})
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return out
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if os.IsNotExist(err) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	out.Close()
}

// TestCrashImage copies the database files while the store is open, as a
// crash would leave them, and checks that the copy holds every acknowledged
// reading, whether it was still in the write-ahead table or already in blocks.
func TestCrashImage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := newTestStore(t, dir, Options{FlushInterval: time.Hour})
	var want []cim.Reading
	base := int64(1764237600000)
	for i := range 5000 {
		want = append(want, cim.Reading{SeriesKey: series("m1"), Point: cim.Point{Time: base + int64(i)*1000, Value: float64(i % 97)}})
	}
	if _, err := s.Write(ctx, "bristol", want[:3000]); err != nil {
		t.Fatal(err)
	}
	if err := s.flush(ctx); err != nil { // part in blocks
		t.Fatal(err)
	}
	if _, err := s.Write(ctx, "bristol", want[3000:]); err != nil { // part in the write-ahead table
		t.Fatal(err)
	}
	// A correction of an already flushed point.
	if _, err := s.Write(ctx, "bristol", []cim.Reading{{SeriesKey: series("m1"), Point: cim.Point{Time: base, Value: -1}}}); err != nil {
		t.Fatal(err)
	}
	want[0].Value = -1
	crash := t.TempDir()
	for _, suffix := range []string{"", "-wal"} {
		copyFile(t, filepath.Join(dir, FileName+suffix), filepath.Join(crash, FileName+suffix))
	}
	r := newTestStore(t, crash, Options{})
	got := readAll(t, r, "bristol")[series("m1")]
	if len(got) != len(want) {
		t.Fatalf("after crash: %d points, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i].Point {
			t.Fatalf("after crash: point %d = %+v, want %+v", i, got[i], want[i].Point)
		}
	}
	latest, err := r.Latest(ctx, "bristol")
	if err != nil || len(latest) != 1 || latest[0].Point != want[len(want)-1].Point {
		t.Fatalf("latest after crash = %+v, %v", latest, err)
	}
}

func TestReopenAfterClose(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	rs := []cim.Reading{{SeriesKey: series("m1"), Point: cim.Point{Time: 1000, Value: 1.5}}}
	if _, err := s.Write(ctx, "x", rs); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(ctx, "x", rs); err != ErrClosed {
		t.Fatalf("write after close: %v, want ErrClosed", err)
	}
	r := newTestStore(t, dir, Options{})
	res, err := r.Write(ctx, "x", rs)
	if err != nil || res.Duplicate != 1 {
		t.Fatalf("rewrite after reopen: %+v, %v; want one duplicate", res, err)
	}
}

// realistic makes n seconds of 1 s readings for the given number of series:
// smooth load curves with noise at 1 W resolution and energy counters that
// only grow, at 1 Wh resolution.
func realistic(seriesN, seconds int, start int64) []cim.Reading {
	out := make([]cim.Reading, 0, seriesN*seconds)
	energy := make([]float64, seriesN)
	for sec := range seconds {
		for k := range seriesN {
			t := start + int64(sec)*1000
			asset := "house-" + itoa(k/2) + "/meter"
			phase := float64(k) * 0.37
			if k%2 == 0 {
				w := 1500 + 800*math.Sin(float64(sec)/3600+phase) + float64((sec*7919+k*104729)%41-20)
				out = append(out, cim.Reading{SeriesKey: cim.SeriesKey{Asset: asset, Quantity: "active_power"}, Point: cim.Point{Time: t, Value: math.Round(w)}})
			} else {
				energy[k] += float64((sec + k) % 2)
				out = append(out, cim.Reading{SeriesKey: cim.SeriesKey{Asset: asset, Quantity: "energy_active_import"}, Point: cim.Point{Time: t, Value: 1e6 + energy[k]}})
			}
		}
	}
	return out
}

func itoa(i int) string {
	return string(rune('0'+i/1000%10)) + string(rune('0'+i/100%10)) + string(rune('0'+i/10%10)) + string(rune('0'+i%10))
}

// BenchmarkWriteBatch measures readings/s of 100,000-reading batches (1,000
// series) and the bytes on disk per stored reading.
func BenchmarkWriteBatch(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	s, err := Open(ctx, dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	const seriesN, perBatch = 1000, 100
	start := int64(1764237600000)
	batches := make([][]cim.Reading, 0, 64)
	for i := range 64 {
		batches = append(batches, realistic(seriesN, perBatch, start+int64(i*perBatch)*1000))
	}
	b.ResetTimer()
	total := 0
	for i := 0; b.Loop(); i++ {
		batch := batches[i%len(batches)]
		if i >= len(batches) { // shift time so every batch is new data
			shift := int64(i/len(batches)*len(batches)*perBatch) * 1000
			batch = append([]cim.Reading(nil), batch...)
			for j := range batch {
				batch[j].Time += shift
			}
		}
		if _, err := s.Write(ctx, "bench", batch); err != nil {
			b.Fatal(err)
		}
		total += len(batch)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "readings/s")
	if fi, err := os.Stat(filepath.Join(dir, FileName)); err == nil && total > 0 {
		b.ReportMetric(float64(fi.Size())/float64(total), "bytes/reading")
	}
}

// BenchmarkWriteSingle measures single-reading writes from 64 concurrent
// writers, which group commit folds into shared transactions.
func BenchmarkWriteSingle(b *testing.B) {
	for _, noSync := range []bool{false, true} {
		name := "fsync"
		if noSync {
			name = "nofsync"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			s, err := Open(ctx, b.TempDir(), Options{NoSync: noSync})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var next atomic.Int64
			b.SetParallelism(32) // 64 writers on 2 CPUs
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				asset := "m" + itoa(int(next.Add(1)))
				for i := int64(0); pb.Next(); i++ {
					r := []cim.Reading{{SeriesKey: series(asset), Point: cim.Point{Time: 1764237600000 + i, Value: float64(i % 1000)}}}
					if _, err := s.Write(ctx, "bench", r); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
		})
	}
}
