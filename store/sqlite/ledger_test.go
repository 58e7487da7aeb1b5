package sqlite

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/bits"
	mrand "math/rand/v2"
	"os"
	"strconv"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/gridlink/gridlink/store"
)

// TestLedgerDamagedHashRow checks that a hash row cut short is an error,
// for reads and for the next append, and no panic.
func TestLedgerDamagedHashRow(t *testing.T) {
	ctx := t.Context()
	s := newTestStore(t, t.TempDir(), Options{NoSync: true, MetaOnly: true})
	b := newLedgerBench(t, 10)
	es, hs := b.next(10)
	if err := s.UpdateLedger(ctx, func(tx store.LedgerTx) error { return tx.Append(ctx, es, hs) }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE ledger_hashes SET hashes = substr(hashes, 1, 40) WHERE grp = 0`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LedgerHashes(ctx, []int64{5}); err == nil {
		t.Errorf("LedgerHashes of a hash cut off its row: no error")
	}
	if hs, err := s.LedgerHashes(ctx, []int64{0}); err != nil || hs[0] != b.hashes[0] {
		t.Errorf("LedgerHashes of the hash left whole: %v", err)
	}
	es, hs = b.next(1)
	err := s.UpdateLedger(ctx, func(tx store.LedgerTx) error { return tx.Append(ctx, es, hs) })
	if err == nil {
		t.Errorf("Append after a hash row was cut short: no error")
	}
}

// ledgerBench makes entries of about 200 bytes and their stored hashes,
// keeping the hashes in memory so that producing them costs no reads of
// the store under test.
type ledgerBench struct {
	tb     testing.TB
	n      int64
	hashes []tlog.Hash
}

func newLedgerBench(tb testing.TB, capacity int) *ledgerBench {
	return &ledgerBench{tb: tb, hashes: make([]tlog.Hash, 0, 2*capacity)}
}

func (b *ledgerBench) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		out[i] = b.hashes[x]
	}
	return out, nil
}

// next returns the next k entries and their stored hashes.
func (b *ledgerBench) next(k int) ([]store.LedgerEntry, [][32]byte) {
	es := make([]store.LedgerEntry, k)
	first := len(b.hashes)
	for j := range es {
		i := b.n
		es[j] = store.LedgerEntry{Index: i, Kind: "reading", Site: "bristol", Asset: fmt.Sprintf("house-%03d/meter", i%500),
			Quantity: "energy_import", Time: 1_709_251_200_000 + i/500*1000, Value: float64(i) / 3,
			Data: fmt.Appendf(nil, `{"asset":"p:%064x","quantity":"energy_import","signer":"gw-%03d","t":%d,"v":%g}`, i*7919, i%500, 1_709_251_200_000+i/500*1000, float64(i)/3)}
		hs, err := tlog.StoredHashes(i, es[j].Data, b)
		if err != nil {
			b.tb.Fatal(err)
		}
		b.hashes = append(b.hashes, hs...)
		b.n++
	}
	out := make([][32]byte, len(b.hashes)-first)
	for j, h := range b.hashes[first:] {
		out[j] = h
	}
	return es, out
}

// BenchmarkLedgerAppend appends groups of 1,000 entries (about 200 bytes
// each) with their stored hashes, one UpdateLedger per group.
func BenchmarkLedgerAppend(b *testing.B) {
	ctx := context.Background()
	s := newTestStore(b, b.TempDir(), Options{NoSync: true, MetaOnly: true})
	const group = 1000
	lb := newLedgerBench(b, b.N*group)
	bytes := 0
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		es, hs := lb.next(group)
		for _, e := range es {
			bytes += len(e.Data)
		}
		b.StartTimer()
		if err := s.UpdateLedger(ctx, func(tx store.LedgerTx) error { return tx.Append(ctx, es, hs) }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*group)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric(float64(bytes)/float64(b.N*group), "B/entry")
	b.StopTimer()
	var pages, pageSize int64
	if err := s.db.QueryRowContext(ctx, `SELECT page_count, page_size FROM pragma_page_count(), pragma_page_size()`).Scan(&pages, &pageSize); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(pages*pageSize)/float64(b.N*group), "file-B/entry")
}

// benchEntries is the log size of BenchmarkLedgerProof:
// GRIDLINK_BENCH_LEDGER_ENTRIES, or 1,000,000.
func benchEntries(tb testing.TB) int64 {
	n := int64(1_000_000)
	if v := os.Getenv("GRIDLINK_BENCH_LEDGER_ENTRIES"); v != "" {
		var err error
		if n, err = strconv.ParseInt(v, 10, 64); err != nil || n < 2 {
			tb.Fatalf("GRIDLINK_BENCH_LEDGER_ENTRIES=%q: want a number of entries >= 2", v)
		}
	}
	return n
}

// BenchmarkLedgerProof reads the hashes of an inclusion proof of a random
// entry (about log2(n) hashes in one LedgerHashes call) from a log of
// benchEntries entries. The hash rows are filled with random bytes: the
// reads, not the proof's checks, are measured.
func BenchmarkLedgerProof(b *testing.B) {
	ctx := context.Background()
	n := benchEntries(b)
	s := newTestStore(b, b.TempDir(), Options{NoSync: true, MetaOnly: true})
	count := tlog.StoredHashCount(n)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	row := make([]byte, hashGroup*32)
	for g := int64(0); g*hashGroup < count; g++ {
		rand.Read(row)
		k := min(hashGroup, count-g*hashGroup)
		if _, err := tx.ExecContext(ctx, `INSERT INTO ledger_hashes(grp, hashes) VALUES(?, ?)`, g, row[:k*32]); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	r := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		hs, err := s.LedgerHashes(ctx, indexes)
		out := make([]tlog.Hash, len(hs))
		for i, h := range hs {
			out[i] = h
		}
		return out, err
	})
	rng := mrand.New(mrand.NewPCG(1, 2))
	b.ResetTimer()
	for range b.N {
		if _, err := tlog.ProveRecord(n, rng.Int64N(n), r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n), "entries")
	b.ReportMetric(float64(bits.Len64(uint64(n))), "~hashes/proof")
}

// TestLedgerEraseChunks erases in chunks of 7 entries, while the log is
// 100 entries long: every chunk's entries are erased, and only those.
func TestLedgerEraseChunks(t *testing.T) {
	ctx := t.Context()
	s := newTestStore(t, t.TempDir(), Options{NoSync: true, MetaOnly: true})
	b := newLedgerBench(t, 100)
	es, hs := b.next(100)
	if err := s.UpdateLedger(ctx, func(tx store.LedgerTx) error { return tx.Append(ctx, es, hs) }); err != nil {
		t.Fatal(err)
	}
	// Entry i has the asset house-(i%500), so house-007 has entry 7; give
	// it four more, at chunk edges.
	if _, err := s.db.ExecContext(ctx, `UPDATE ledger_entries SET asset = 'house-007/meter' WHERE idx IN (0, 6, 50, 99)`); err != nil {
		t.Fatal(err)
	}
	n, err := s.eraseSubject(ctx, "bristol", "house-007/meter", 7)
	if err != nil || n != 5 {
		t.Fatalf("eraseSubject in chunks of 7: %d, %v; want 5 entries", n, err)
	}
	got, err := s.LedgerEntries(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range got {
		if erased := e.Data == nil; erased != (e.Index == 0 || e.Index == 6 || e.Index == 7 || e.Index == 50 || e.Index == 99) {
			t.Errorf("entry %d: erased %v", e.Index, erased)
		}
	}
}
