package queue

import (
	"testing"
)

// BenchmarkAppend appends batches of 100 readings, with an fsync per batch
// (the default) and without.
func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		name string
		sync SyncPolicy
	}{{"fsync", SyncAlways}, {"nosync", SyncNever}} {
		b.Run(bc.name, func(b *testing.B) {
			q, err := Open(b.TempDir(), Options{Sync: bc.sync, MaxBytes: 1 << 30})
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close()
			batch := readings(0, 100)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				for j := range batch {
					batch[j].Time += 100_000
				}
				if err := q.Append(batch); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			st := q.Stats()
			b.ReportMetric(float64(st.Readings)/b.Elapsed().Seconds(), "readings/s")
			b.ReportMetric(float64(st.Bytes)/float64(st.Readings), "bytes/reading")
		})
	}
}

// BenchmarkPeekAck reads back and acknowledges batches of 5000 readings.
func BenchmarkPeekAck(b *testing.B) {
	q, err := Open(b.TempDir(), Options{Sync: SyncNever, MaxBytes: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	n := 0
	for b.Loop() {
		if q.Len() < 5000 {
			b.StopTimer()
			for range 100 {
				q.Append(readings(n, 1000))
				n += 1000
			}
			b.StartTimer()
		}
		rs, c, err := q.Peek(5000)
		if err != nil || len(rs) != 5000 {
			b.Fatal(len(rs), err)
		}
		if err := q.Ack(c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*5000)/b.Elapsed().Seconds(), "readings/s")
}
