package postgres_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/bits"
	mrand "math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/internal/pgtest"
	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/storetest"
)

// TestLedgerConformance runs the ledger suite; the other handle is a
// second store opened on the same schema, as another platform node.
func TestLedgerConformance(t *testing.T) {
	url := pgtest.URL(t)
	storetest.RunLedger(t, func(t *testing.T) (store.Ledger, func(t *testing.T) store.Ledger) {
		schema := newSchema(t, url)
		return open(t, url, schema), func(t *testing.T) store.Ledger { return open(t, url, schema) }
	})
}

// TestMigrateLedger turns a schema back into what migrations 0001 and 0002
// made and checks that Open applies 0003, keeping the assets (not marked
// for the ledger).
func TestMigrateLedger(t *testing.T) {
	ctx := t.Context()
	url, schema, s := openWithSite(t)
	a := cim.Asset{Site: "s", ID: "m1", Type: cim.SmartMeter, Ledger: true}
	if err := s.PutAsset(ctx, a); err != nil {
		t.Fatal(err)
	}
	s.Close()
	rewind(t, url, undoLedger(schema))
	s = open(t, url, schema)
	defer s.Close()
	got, err := s.Asset(ctx, "s", "m1")
	if a.Ledger = false; err != nil || got != a {
		t.Errorf("asset after migrating: %+v, %v; want %+v", got, err, a)
	}
	if n, err := s.LedgerSize(ctx); err != nil || n != 0 {
		t.Errorf("LedgerSize after migrating: %d, %v", n, err)
	}
	if err := s.PutSigner(ctx, "s", "gw", []byte("pk")); err != nil {
		t.Errorf("PutSigner after migrating: %v", err)
	}
}

// undoLedger returns the statements that take a schema back to before
// migration 0003.
func undoLedger(schema string) []string {
	var qs []string
	for _, table := range []string{"ledger_entries", "ledger_hashes", "ledger_state", "ledger_checkpoints", "ledger_subjects", "ledger_signers"} {
		qs = append(qs, "DROP TABLE "+pgx.Identifier{schema, table}.Sanitize())
	}
	qs = append(qs,
		"ALTER TABLE "+pgx.Identifier{schema, "assets"}.Sanitize()+" DROP COLUMN ledger",
		"DELETE FROM "+pgx.Identifier{schema, "schema_version"}.Sanitize()+" WHERE version = 3")
	// Later migrations go too: Open applies those above the highest
	// version recorded.
	return append(qs, undoITC(schema)...)
}

// ledgerBench makes entries of about 200 bytes and their stored hashes,
// keeping the hashes in memory so that producing them costs no reads of
// the store under test.
type ledgerBench struct {
	tb     testing.TB
	n      int64
	hashes []tlog.Hash
}

func (b *ledgerBench) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		out[i] = b.hashes[x]
	}
	return out, nil
}

// next returns the next k entries (readings of 500 assets in turn) and
// their stored hashes.
func (b *ledgerBench) next(k int) ([]store.LedgerEntry, [][32]byte) {
	es := make([]store.LedgerEntry, k)
	first := len(b.hashes)
	for j := range es {
		i := b.n
		t := 1_709_251_200_000 + i/500*1000
		es[j] = store.LedgerEntry{Index: i, Kind: "reading", Site: "bristol", Asset: fmt.Sprintf("house-%03d/meter", i%500),
			Quantity: "energy_import", Time: t, Value: float64(i) / 3,
			Data: fmt.Appendf(nil, `{"asset":"p:%064x","quantity":"energy_import","signer":"gw-%03d","t":%d,"v":%g}`, i*7919, i%500, t, float64(i)/3)}
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
	s, _, _ := benchStore(b)
	const group = 1000
	lb := &ledgerBench{tb: b}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		es, hs := lb.next(group)
		b.StartTimer()
		if err := s.UpdateLedger(ctx, func(tx store.LedgerTx) error { return tx.Append(ctx, es, hs) }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*group)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkLedgerAppendSmall appends one entry per UpdateLedger: the cost
// of a transaction, its lock and the INSERT path.
func BenchmarkLedgerAppendSmall(b *testing.B) {
	ctx := context.Background()
	s, _, _ := benchStore(b)
	lb := &ledgerBench{tb: b}
	for range b.N {
		es, hs := lb.next(1)
		if err := s.UpdateLedger(ctx, func(tx store.LedgerTx) error { return tx.Append(ctx, es, hs) }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkLedgerProof reads the hashes of an inclusion proof of a random
// entry (about log2(n) hashes in one LedgerHashes call) from a log of
// GRIDLINK_BENCH_LEDGER_ENTRIES entries (default 1,000,000). The hash rows
// hold random bytes: the reads, not the proof's checks, are measured.
func BenchmarkLedgerProof(b *testing.B) {
	ctx := context.Background()
	n := int64(1_000_000)
	if v := os.Getenv("GRIDLINK_BENCH_LEDGER_ENTRIES"); v != "" {
		var err error
		if n, err = strconv.ParseInt(v, 10, 64); err != nil || n < 2 {
			b.Fatalf("GRIDLINK_BENCH_LEDGER_ENTRIES=%q: want a number of entries >= 2", v)
		}
	}
	s, url, schema := benchStore(b)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	const group = 32 // hashGroup of the driver
	count := tlog.StoredHashCount(n)
	_, err = conn.CopyFrom(ctx, pgx.Identifier{schema, "ledger_hashes"}, []string{"grp", "hashes"},
		pgx.CopyFromFunc(func() func() ([]any, error) {
			g := int64(0)
			return func() ([]any, error) {
				if g*group >= count {
					return nil, nil
				}
				row := make([]byte, min(group, count-g*group)*32)
				rand.Read(row)
				g++
				return []any{g - 1, row}, nil
			}
		}()))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE "+pgx.Identifier{schema, "ledger_hashes"}.Sanitize()); err != nil {
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
	url := pgtest.URL(t)
	schema := newSchema(t, url)
	s := open(t, url, schema)
	defer s.Close()
	b := &ledgerBench{tb: t}
	es, hs := b.next(100)
	if err := s.UpdateLedger(ctx, func(tx store.LedgerTx) error { return tx.Append(ctx, es, hs) }); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// Entry i has the asset house-(i%500), so house-007 has entry 7; give
	// it four more, at chunk edges.
	if _, err := conn.Exec(ctx, `UPDATE `+pgx.Identifier{schema, "ledger_entries"}.Sanitize()+
		` SET asset = 'house-007/meter' WHERE idx IN (0, 6, 50, 99)`); err != nil {
		t.Fatal(err)
	}
	n, err := s.EraseSubjectInChunks(ctx, "bristol", "house-007/meter", 7)
	if err != nil || n != 5 {
		t.Fatalf("EraseSubject in chunks of 7: %d, %v; want 5 entries", n, err)
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
	if _, err := s.SubjectKey(ctx, "bristol", "house-007/meter", func() []byte { return []byte("k") }); err == nil {
		t.Errorf("SubjectKey after erasure: no error")
	}
}
