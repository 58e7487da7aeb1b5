package sqlite

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
)

// TestWritesDuringBackgroundFlush writes new, late and corrected readings
// from several goroutines while flushes run beside the committer every few
// milliseconds, reads while it happens, and checks that the store then holds
// exactly the last value written at every time, before and after a reopen.
func TestWritesDuringBackgroundFlush(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir, Options{FlushInterval: 2 * time.Millisecond, MaxHeadPoints: 500, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	base := int64(1764237600000)
	const writers, rounds = 4, 150
	// Each writer owns its series, so the last value it wrote is the truth.
	want := make([]map[int64]float64, writers)
	var wg sync.WaitGroup
	for w := range writers {
		want[w] = map[int64]float64{}
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			key := series("m" + itoa(w))
			next := int64(0)
			for r := range rounds {
				var batch []cim.Reading
				for range 20 {
					var ti int64
					if next > 0 && rng.IntN(4) == 0 {
						ti = rng.Int64N(next) // late or a correction
					} else {
						ti = next
						next++
					}
					v := float64(r*1000 + rng.IntN(1000))
					batch = append(batch, cim.Reading{SeriesKey: key, Point: cim.Point{Time: base + ti*1000, Value: v}})
				}
				if _, err := s.Write(ctx, "bristol", batch); err != nil {
					t.Error(err)
					return
				}
				for _, rd := range batch {
					want[w][rd.Time] = rd.Value
				}
			}
		})
	}
	stopReads := make(chan struct{})
	readsDone := make(chan struct{})
	go func() {
		defer close(readsDone)
		for {
			select {
			case <-stopReads:
				return
			default:
			}
			got := readAll(t, s, "bristol")
			for k, pts := range got {
				for i := 1; i < len(pts); i++ {
					if pts[i].Time <= pts[i-1].Time {
						t.Errorf("%v: points out of order or repeated at %d", k, pts[i].Time)
						return
					}
				}
			}
		}
	}()
	wg.Wait()
	close(stopReads)
	<-readsDone
	check := func(label string, st *Store) {
		t.Helper()
		got := readAll(t, st, "bristol")
		for w := range writers {
			pts := got[series("m"+itoa(w))]
			if len(pts) != len(want[w]) {
				t.Fatalf("%s: series m%d holds %d points, want %d", label, w, len(pts), len(want[w]))
			}
			for _, p := range pts {
				if v, ok := want[w][p.Time]; !ok || v != p.Value {
					t.Fatalf("%s: series m%d at %d holds %v, want %v", label, w, p.Time, p.Value, v)
				}
			}
		}
	}
	s.mu.RLock()
	flushed := s.walFlushed
	s.mu.RUnlock()
	if flushed == 0 {
		t.Fatal("no flush ran while writing; the test proves nothing")
	}
	check("open", s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := newTestStore(t, dir, Options{})
	check("reopened", r)
}
