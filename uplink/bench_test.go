package uplink

import (
	"context"
	"testing"
	"time"

	"github.com/gridlink/gridlink/queue"
)

// BenchmarkDeliver measures readings/s from a full queue into an in-process
// platform with an SQLite store, in batches of 5000.
func BenchmarkDeliver(b *testing.B) {
	e := newEnv(b, false)
	const perRound = 50_000
	q, err := queue.Open(b.TempDir(), queue.Options{Sync: queue.SyncNever, MaxBytes: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	u, err := New(fastConfig(e.ts.URL, e.key), q, nil)
	if err != nil {
		b.Fatal(err)
	}
	start := 0
	for b.Loop() {
		b.StopTimer()
		appendN(b, q, start, perRound, 5000)
		start += perRound
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		b.StartTimer()
		go func() { u.Run(ctx); close(done) }()
		for q.Len() > 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
		<-done
	}
	b.ReportMetric(float64(start)/b.Elapsed().Seconds(), "readings/s")
	if st := u.Status(); st.Sent != int64(start) {
		b.Fatalf("sent %d of %d", st.Sent, start)
	}
}
