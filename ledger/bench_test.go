package ledger

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/memstore"
	"github.com/gridlink/gridlink/store/sqlite"
)

type signedBatch struct {
	sig []byte
	rs  []Reading
}

// benchBatches signs n batches of size readings of 50 meters beforehand,
// each reading new.
func benchBatches(b *testing.B, gw signer, n, size int) []signedBatch {
	out := make([]signedBatch, n)
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	for i := range out {
		rs := make([]Reading, size)
		for j := range rs {
			k := i*size + j
			rs[j] = Reading{Site: "site-1", Asset: fmt.Sprintf("house-%02d/meter", k%50), Quantity: "energy_active_import",
				Time: t0 + int64(k/50)*1000, Value: 1000 + float64(k)/10}
		}
		out[i] = signedBatch{gw.sign(b, rs), rs}
	}
	return out
}

// BenchmarkAppendBatch measures what the platform does per signed batch of
// ledger readings: the digest, the signature check and the append into a
// real SQLite store (NoSync), from concurrent callers.
func BenchmarkAppendBatch(b *testing.B) {
	for _, par := range []int{1, 8} {
		b.Run(fmt.Sprintf("callers=%d", par), func(b *testing.B) {
			st, err := sqlite.Open(b.Context(), b.TempDir(), sqlite.Options{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			l, err := New(st, Config{Key: newSigner(b, "log").s})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			<-l.scanDone
			gw := newSigner(b, "gw-1")
			const size = 500
			batches := benchBatches(b, gw, b.N, size)
			var next atomic.Int64
			b.SetParallelism(par)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					sb := batches[next.Add(1)-1]
					d := NewBatchDigest()
					for _, r := range sb.rs {
						if err := d.Add(r); err != nil {
							b.Error(err)
							return
						}
					}
					if err := VerifyBatch(gw.v, "site-1", d.Count(), d.Sum(), sb.sig); err != nil {
						b.Error(err)
						return
					}
					res, err := l.AppendBatch(b.Context(), "gw-1", sb.sig, sb.rs)
					if err != nil || res.Appended != size {
						b.Errorf("AppendBatch = %+v, %v", res, err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*size)/time.Since(start).Seconds(), "readings/s")
		})
	}
}

// buildTree writes n entries into st in large transactions, without
// going through AppendBatch: entries without data (as erased ones are)
// whose leaves are the record hashes of the decimal index.
func buildTree(b *testing.B, st store.Ledger, n int64) {
	const chunk = 100_000
	for done := int64(0); done < n; {
		m := min(chunk, n-done)
		err := st.UpdateLedger(b.Context(), func(tx store.LedgerTx) error {
			bd := newBuilder(b.Context(), tx)
			for i := range m {
				leaf := tlog.RecordHash(strconv.AppendInt(nil, done+i, 10))
				if err := bd.add(store.LedgerEntry{Kind: KindBatch, Site: "s"}, leaf); err != nil {
					return err
				}
			}
			return tx.Append(b.Context(), bd.entries, bd.hashes)
		})
		if err != nil {
			b.Fatal(err)
		}
		done += m
	}
}

// BenchmarkInclusionProof measures Log.Inclusion at 10,000,000 entries
// in a real SQLite store (and in memstore, for the proof computation
// alone).
func BenchmarkInclusionProof(b *testing.B) {
	const n = 10_000_000
	for _, kind := range []string{"sqlite", "memstore"} {
		b.Run(kind, func(b *testing.B) {
			var st store.Ledger
			if kind == "sqlite" {
				s, err := sqlite.Open(b.Context(), b.TempDir(), sqlite.Options{NoSync: true})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				st = s
			} else {
				st = memstore.New()
			}
			built := time.Now()
			buildTree(b, st, n)
			b.Logf("%s: built %d entries in %v", kind, n, time.Since(built).Round(time.Millisecond))
			l, err := New(st, Config{Key: newSigner(b, "log").s})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			// The reading marks' scan at start (see watermarks) is a
			// one-time cost; proofs are measured after it.
			scan := time.Now()
			<-l.scanDone
			b.Logf("%s: reading marks scanned in %v", kind, time.Since(scan).Round(time.Millisecond))
			c, err := l.Checkpoint(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			_, root, _, err := OpenCheckpoint(c.Note, DefaultOrigin, l.self)
			if err != nil {
				b.Fatal(err)
			}
			i := int64(0)
			b.ResetTimer()
			for b.Loop() {
				i = (i*7919 + 104729) % n
				p, err := l.Inclusion(b.Context(), i, n)
				if err != nil {
					b.Fatal(err)
				}
				if len(p) == 0 || len(p) > 24 {
					b.Fatalf("proof of %d hashes", len(p))
				}
			}
			b.StopTimer()
			p, _ := l.Inclusion(b.Context(), 12345, n)
			if err := VerifyInclusion(p, 12345, n, root, []byte("12345")); err != nil {
				b.Fatal(err)
			}
		})
	}
}
