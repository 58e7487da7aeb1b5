package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/gridlink/gridlink/store"
)

// RunLedger runs the conformance suite of store.Ledger. open must return a
// fresh, empty ledger and a function that opens another handle on the same
// data, as a second platform node would (a driver without such handles
// returns the first ledger again). The suite closes each handle that has a
// Close() error method when its subtest ends; open may register cleanups
// of its own, which run after. Subtests run in parallel, each on its own
// ledger.
//
// Hashes are real: the suite computes them with tlog.StoredHashes, reading
// earlier ones through LedgerTx.ReadHashes, and checks tree hashes and
// proofs against the store. Where the contract in package store leaves
// room, the suite reads it as follows:
//   - An Append that fails (a wrong index, a wrong number of hashes) makes
//     the whole UpdateLedger fail and commit nothing, even if fn goes on
//     and returns nil.
//   - Entries come back as appended; Data compares with bytes.Equal (nil
//     and empty are alike). An erased entry keeps Index, Kind, Site and
//     Time and has a nil Data, empty Asset, Quantity and Phase and a zero
//     Value. Batch entries (Asset "") are never erased.
//   - LedgerEntries returns what exists of [from, to); from < 0 or to <
//     from is an error. LedgerHashes of an index not stored is an error.
//   - UpdateLedger whose context ends while another caller holds the
//     ledger returns an error matching store.ErrLedgerLocked, without
//     calling fn.
//   - Checkpoint times are compared at millisecond precision and must
//     come back in UTC.
//   - EraseSubject of a subject that never had a key still leaves it
//     erased: SubjectKey then returns ErrNotFound without calling newKey.
//   - DeleteSigner of a signer held by another site is ErrNotFound.
//   - PutLedgerMarks replaces what was saved (one snapshot per ledger),
//     whatever its upto; empty data comes back empty (nil or not).
func RunLedger(t *testing.T, open func(t *testing.T) (l store.Ledger, other func(t *testing.T) store.Ledger)) {
	tests := []struct {
		name string
		fn   func(f *ledgerFixture)
	}{
		{"AppendRead", testLedgerAppendRead},
		{"OneByOne", testLedgerOneByOne},
		{"IndexMismatch", testLedgerIndexMismatch},
		{"HashCountMismatch", testLedgerHashCountMismatch},
		{"FnError", testLedgerFnError},
		{"ReadHashesOwnAppends", testLedgerReadOwn},
		{"Concurrent", testLedgerConcurrent},
		{"LockWait", testLedgerLockWait},
		{"LastEntry", testLedgerLastEntry},
		{"Checkpoints", testLedgerCheckpoints},
		{"SubjectKeys", testLedgerSubjectKeys},
		{"Erase", testLedgerErase},
		{"Signers", testLedgerSigners},
		{"OtherHandle", testLedgerOtherHandle},
		{"Marks", testLedgerMarks},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l, other := open(t)
			if l == nil {
				t.Fatal("open returned a nil ledger")
			}
			closeAtCleanup(t, l)
			tc.fn(&ledgerFixture{t: t, l: l, ctx: t.Context(), openOther: func() store.Ledger {
				o := other(t)
				closeAtCleanup(t, o)
				return o
			}})
		})
	}
}

func closeAtCleanup(t *testing.T, l store.Ledger) {
	if c, ok := l.(io.Closer); ok {
		t.Cleanup(func() {
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

type ledgerFixture struct {
	t         *testing.T
	l         store.Ledger
	ctx       context.Context
	openOther func() store.Ledger
}

// ledgerT0 is a reading time in whole milliseconds.
const ledgerT0 = int64(1_709_251_200_000)

// entryAt makes a varied entry at index i: every third is an energy
// entry, every seventh a batch, with values and phases of every kind.
func entryAt(i int64) store.LedgerEntry {
	e := store.LedgerEntry{Index: i, Kind: "reading", Site: "bristol", Asset: fmt.Sprintf("house-%02d/meter", i%5),
		Quantity: "active_power", Time: ledgerT0 + i*1000, Value: float64(i)*1.25 - 300}
	switch {
	case i%7 == 6:
		e = store.LedgerEntry{Index: i, Kind: "batch", Site: "bristol", Time: e.Time}
	case i%3 == 2:
		e.Kind, e.Quantity, e.Value = "energy", "energy_import", float64(i)*1e6+0.5
	case i%4 == 1:
		e.Phase = "L2"
	}
	// ~200 bytes, with zero bytes and text of every kind inside.
	e.Data = fmt.Appendf(nil, `{"i":%d,"kind":%q,"asset":"Ω\u00e4 %s","v":%g,"pad":"%0150d"}`, i, e.Kind, e.Asset, e.Value, i)
	e.Data = append(e.Data, 0, byte(i), 0xff)
	return e
}

func entriesAt(from int64, n int) []store.LedgerEntry {
	out := make([]store.LedgerEntry, n)
	for k := range out {
		out[k] = entryAt(from + int64(k))
	}
	return out
}

// txReader reads the hashes a transaction has stored, then those of
// entries it is about to append.
func txReader(ctx context.Context, tx store.LedgerTx, pending *[]tlog.Hash) tlog.HashReader {
	base := tlog.StoredHashCount(tx.Size())
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		var ask []int64
		var at []int
		for i, x := range indexes {
			if x >= base {
				out[i] = (*pending)[x-base]
				continue
			}
			ask, at = append(ask, x), append(at, i)
		}
		if len(ask) > 0 {
			hs, err := tx.ReadHashes(ctx, ask)
			if err != nil {
				return nil, err
			}
			if len(hs) != len(ask) {
				return nil, fmt.Errorf("ReadHashes of %d indexes returned %d hashes", len(ask), len(hs))
			}
			for j, h := range hs {
				out[at[j]] = h
			}
		}
		return out, nil
	})
}

// HashesFor computes the stored hashes that appending entries (whose
// indexes start at tx.Size()) adds, reading earlier ones through tx.
func HashesFor(ctx context.Context, tx store.LedgerTx, entries []store.LedgerEntry) ([][32]byte, error) {
	var pending []tlog.Hash
	r := txReader(ctx, tx, &pending)
	for _, e := range entries {
		hs, err := tlog.StoredHashes(e.Index, e.Data, r)
		if err != nil {
			return nil, fmt.Errorf("stored hashes of entry %d: %w", e.Index, err)
		}
		pending = append(pending, hs...)
	}
	out := make([][32]byte, len(pending))
	for i, h := range pending {
		out[i] = h
	}
	return out, nil
}

// appendTx appends entries and their hashes in tx.
func appendTx(ctx context.Context, tx store.LedgerTx, entries []store.LedgerEntry) error {
	hs, err := HashesFor(ctx, tx, entries)
	if err != nil {
		return err
	}
	return tx.Append(ctx, entries, hs)
}

// appendGroups appends each group in a transaction of its own, numbering
// entries from the ledger's size.
func (f *ledgerFixture) appendGroups(l store.Ledger, sizes ...int) {
	f.t.Helper()
	for _, n := range sizes {
		err := l.UpdateLedger(f.ctx, func(tx store.LedgerTx) error {
			return appendTx(f.ctx, tx, entriesAt(tx.Size(), n))
		})
		if err != nil {
			f.t.Fatalf("UpdateLedger appending %d entries: %v", n, err)
		}
	}
}

// modelHashes computes the stored hashes of a log of these records.
func modelHashes(t *testing.T, data [][]byte) []tlog.Hash {
	t.Helper()
	var hs []tlog.Hash
	r := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			out[i] = hs[x]
		}
		return out, nil
	})
	for i, d := range data {
		more, err := tlog.StoredHashes(int64(i), d, r)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, more...)
	}
	return hs
}

// storeReader reads committed hashes from a ledger.
func storeReader(ctx context.Context, l store.Ledger) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		hs, err := l.LedgerHashes(ctx, indexes)
		if err != nil {
			return nil, err
		}
		if len(hs) != len(indexes) {
			return nil, fmt.Errorf("LedgerHashes of %d indexes returned %d hashes", len(indexes), len(hs))
		}
		out := make([]tlog.Hash, len(hs))
		for i, h := range hs {
			out[i] = h
		}
		return out, nil
	})
}

// expectLog checks size, entries, every stored hash, the tree hash and
// proofs of a ledger against want.
func (f *ledgerFixture) expectLog(l store.Ledger, want []store.LedgerEntry) {
	f.t.Helper()
	n := int64(len(want))
	if got, err := l.LedgerSize(f.ctx); err != nil || got != n {
		f.t.Fatalf("LedgerSize: %d, %v; want %d", got, err, n)
	}
	f.expectEntries(l, 0, n+5, want)
	data := make([][]byte, n)
	for i, e := range want {
		data[i] = e.Data
	}
	model := modelHashes(f.t, data)
	// All stored hashes, in a shuffled order with repeats.
	idx := make([]int64, 0, len(model)+10)
	for i := range int64(len(model)) {
		idx = append(idx, i)
	}
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
	if len(model) > 0 {
		idx = append(idx, idx[:min(10, len(idx))]...)
	}
	got, err := l.LedgerHashes(f.ctx, idx)
	if err != nil {
		f.t.Fatalf("LedgerHashes of all %d stored hashes: %v", len(model), err)
	}
	if len(got) != len(idx) {
		f.t.Fatalf("LedgerHashes of %d indexes: %d hashes", len(idx), len(got))
	}
	bad := 0
	for i, x := range idx {
		if tlog.Hash(got[i]) != model[x] && bad < 5 {
			bad++
			f.t.Errorf("stored hash %d: got %x, want %x", x, got[i][:8], model[x][:8])
		}
	}
	if _, err := l.LedgerHashes(f.ctx, []int64{int64(len(model))}); err == nil {
		f.t.Errorf("LedgerHashes of index %d, past the %d stored: no error", len(model), len(model))
	}
	if _, err := l.LedgerHashes(f.ctx, []int64{-1}); err == nil {
		f.t.Errorf("LedgerHashes of index -1: no error")
	}
	if n == 0 {
		return
	}
	r := storeReader(f.ctx, l)
	th, err := tlog.TreeHash(n, r)
	if err != nil {
		f.t.Fatalf("TreeHash(%d): %v", n, err)
	}
	mr := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			out[i] = model[x]
		}
		return out, nil
	})
	if wantTH, _ := tlog.TreeHash(n, mr); th != wantTH {
		f.t.Fatalf("tree hash of %d entries: got %v, want %v", n, th, wantTH)
	}
	for _, i := range []int64{0, n / 3, n - 1} {
		p, err := tlog.ProveRecord(n, i, r)
		if err != nil {
			f.t.Fatalf("ProveRecord(%d, %d): %v", n, i, err)
		}
		if err := tlog.CheckRecord(p, n, th, i, tlog.RecordHash(data[i])); err != nil {
			f.t.Errorf("inclusion proof of entry %d in %d: %v", i, n, err)
		}
		if i == 0 {
			continue
		}
		oldTH, _ := tlog.TreeHash(i, mr)
		tp, err := tlog.ProveTree(n, i, r)
		if err != nil {
			f.t.Fatalf("ProveTree(%d, %d): %v", n, i, err)
		}
		if err := tlog.CheckTree(tp, n, th, i, oldTH); err != nil {
			f.t.Errorf("consistency proof of %d in %d: %v", i, n, err)
		}
	}
}

func (f *ledgerFixture) expectEntries(l store.Ledger, from, to int64, want []store.LedgerEntry) {
	f.t.Helper()
	got, err := l.LedgerEntries(f.ctx, from, to)
	if err != nil {
		f.t.Fatalf("LedgerEntries(%d, %d): %v", from, to, err)
	}
	if len(got) != len(want) {
		f.t.Fatalf("LedgerEntries(%d, %d): %d entries, want %d", from, to, len(got), len(want))
	}
	bad := 0
	for i := range got {
		if !equalEntry(got[i], want[i]) && bad < 5 {
			bad++
			f.t.Errorf("LedgerEntries(%d, %d)[%d]:\n got %s\nwant %s", from, to, i, fmtEntry(got[i]), fmtEntry(want[i]))
		}
	}
}

func equalEntry(a, b store.LedgerEntry) bool {
	return a.Index == b.Index && a.Kind == b.Kind && a.Site == b.Site && bytes.Equal(a.Data, b.Data) &&
		a.Asset == b.Asset && a.Quantity == b.Quantity && a.Phase == b.Phase && a.Time == b.Time && a.Value == b.Value
}

func fmtEntry(e store.LedgerEntry) string {
	d := e.Data
	e.Data = nil
	if len(d) > 40 {
		return fmt.Sprintf("%+v data %q… (%d bytes)", e, d[:40], len(d))
	}
	return fmt.Sprintf("%+v data %q", e, d)
}

func testLedgerAppendRead(f *ledgerFixture) {
	f.expectLog(f.l, nil)
	// Groups of odd sizes, and several Appends in one transaction, so that
	// appends start and end inside any grouping of stored hashes.
	err := f.l.UpdateLedger(f.ctx, func(tx store.LedgerTx) error {
		if err := appendTx(f.ctx, tx, entriesAt(0, 1)); err != nil {
			return err
		}
		return appendTx(f.ctx, tx, entriesAt(1, 6))
	})
	if err != nil {
		f.t.Fatalf("UpdateLedger: %v", err)
	}
	f.expectLog(f.l, entriesAt(0, 7))
	f.appendGroups(f.l, 300, 2, 129, 700)
	all := entriesAt(0, 1138)
	f.expectLog(f.l, all)
	f.expectEntries(f.l, 5, 10, all[5:10])
	f.expectEntries(f.l, 1000, 2000, all[1000:])
	f.expectEntries(f.l, 3, 3, nil)
	f.expectEntries(f.l, 2000, 3000, nil)
	for _, r := range [][2]int64{{-1, 2}, {5, 2}} {
		if _, err := f.l.LedgerEntries(f.ctx, r[0], r[1]); err == nil {
			f.t.Errorf("LedgerEntries(%d, %d): no error", r[0], r[1])
		}
	}
}

func testLedgerOneByOne(f *ledgerFixture) {
	sizes := make([]int, 150)
	for i := range sizes {
		sizes[i] = 1
	}
	f.appendGroups(f.l, sizes...)
	f.expectLog(f.l, entriesAt(0, 150))
}

// expectUnchanged checks that a failed UpdateLedger left the committed
// log of n entries as it was.
func (f *ledgerFixture) expectUnchanged(what string, n int64) {
	f.t.Helper()
	if got, err := f.l.LedgerSize(f.ctx); err != nil || got != n {
		f.t.Errorf("%s: LedgerSize %d, %v; want %d (nothing committed)", what, got, err, n)
	}
	if got, err := f.l.LedgerEntries(f.ctx, 0, n+100); err != nil || int64(len(got)) != n {
		f.t.Errorf("%s: LedgerEntries: %d entries, %v; want %d", what, len(got), err, n)
	}
	if _, err := f.l.LedgerHashes(f.ctx, []int64{tlog.StoredHashCount(n)}); err == nil {
		f.t.Errorf("%s: hash %d of an uncommitted entry is readable", what, tlog.StoredHashCount(n))
	}
}

func testLedgerIndexMismatch(f *ledgerFixture) {
	f.appendGroups(f.l, 3)
	cases := []struct {
		name    string
		indexes []int64
	}{
		{"a gap", []int64{3, 5}},
		{"an index already committed", []int64{2}},
		{"a repeated index", []int64{3, 4, 4}},
		{"a first index past the end", []int64{4}},
	}
	for _, c := range cases {
		for _, swallow := range []bool{false, true} {
			what := fmt.Sprintf("Append with %s (fn returns the error: %v)", c.name, !swallow)
			var appendErr error
			err := f.l.UpdateLedger(f.ctx, func(tx store.LedgerTx) error {
				es := make([]store.LedgerEntry, len(c.indexes))
				for i, x := range c.indexes {
					es[i] = entryAt(x)
				}
				es0 := entriesAt(tx.Size(), len(es))
				hs, err := HashesFor(f.ctx, tx, es0)
				if err != nil {
					return err
				}
				appendErr = tx.Append(f.ctx, es, hs)
				if swallow {
					return nil
				}
				return appendErr
			})
			if appendErr == nil {
				f.t.Errorf("%s: Append returned no error", what)
			}
			if err == nil {
				f.t.Errorf("%s: UpdateLedger returned no error", what)
			}
			f.expectUnchanged(what, 3)
		}
	}
	// A valid append, then a bad one in the same transaction: neither
	// is committed.
	err := f.l.UpdateLedger(f.ctx, func(tx store.LedgerTx) error {
		if err := appendTx(f.ctx, tx, entriesAt(3, 4)); err != nil {
			return err
		}
		es := entriesAt(7, 2)
		hs, err := HashesFor(f.ctx, tx, es)
		if err != nil {
			return err
		}
		es[1].Index = 9
		return tx.Append(f.ctx, es, hs)
	})
	if err == nil {
		f.t.Errorf("UpdateLedger with a good then a bad Append: no error")
	}
	f.expectUnchanged("a good then a bad Append", 3)
	f.appendGroups(f.l, 4)
	f.expectLog(f.l, entriesAt(0, 7))
}

func testLedgerHashCountMismatch(f *ledgerFixture) {
	f.appendGroups(f.l, 5)
	for _, delta := range []int{-1, 1} {
		err := f.l.UpdateLedger(f.ctx, func(tx store.LedgerTx) error {
			es := entriesAt(5, 10)
			hs, err := HashesFor(f.ctx, tx, es)
			if err != nil {
				return err
			}
			if delta < 0 {
				hs = hs[:len(hs)-1]
			} else {
				hs = append(hs, hs[0])
			}
			return tx.Append(f.ctx, es, hs)
		})
		if err == nil {
			f.t.Errorf("Append of 10 entries with %+d stored hashes: no error", delta)
		}
		f.expectUnchanged(fmt.Sprintf("Append with %+d hashes", delta), 5)
	}
	err := f.l.UpdateLedger(f.ctx, func(tx store.LedgerTx) error {
		return tx.Append(f.ctx, nil, [][32]byte{{1}})
	})
	if err == nil {
		f.t.Errorf("Append of no entries with a hash: no error")
	}
	f.expectUnchanged("Append of a hash alone", 5)
	// An empty Append is fine.
	if err := f.l.UpdateLedger(f.ctx, func(tx store.LedgerTx) error { return tx.Append(f.ctx, nil, nil) }); err != nil {
		f.t.Errorf("empty Append: %v", err)
	}
	f.expectLog(f.l, entriesAt(0, 5))
}

func testLedgerFnError(f *ledgerFixture) {
	boom := errors.New("boom")
	f.appendGroups(f.l, 2)
	called := false
	err := f.l.UpdateLedger(f.ctx, func(tx store.LedgerTx) error {
		called = true
		if err := appendTx(f.ctx, tx, entriesAt(2, 300)); err != nil {
			return err
		}
		return fmt.Errorf("after appending: %w", boom)
	})
	if !called {
		f.t.Fatal("UpdateLedger did not call fn")
	}
	if !errors.Is(err, boom) {
		f.t.Errorf("UpdateLedger whose fn failed: %v, want fn's error", err)
	}
	f.expectUnchanged("fn failed", 2)
	// The next append takes the same indexes, with other data.
	err = f.l.UpdateLedger(f.ctx, func(tx store.LedgerTx) error {
		if tx.Size() != 2 {
			return fmt.Errorf("Size after a failed update: %d, want 2", tx.Size())
		}
		return appendTx(f.ctx, tx, entriesAt(2, 3))
	})
	if err != nil {
		f.t.Fatal(err)
	}
	f.expectLog(f.l, entriesAt(0, 5))
}

func testLedgerReadOwn(f *ledgerFixture) {
	f.appendGroups(f.l, 10)
	var want [][32]byte
	err := f.l.UpdateLedger(f.ctx, func(tx store.LedgerTx) error {
		if tx.Size() != 10 {
			return fmt.Errorf("Size: %d, want 10", tx.Size())
		}
		for round, n := range []int{1, 40, 300} {
			es := entriesAt(tx.Size(), n)
			hs, err := HashesFor(f.ctx, tx, es)
			if err != nil {
				return err
			}
			before := tlog.StoredHashCount(tx.Size())
			if err := tx.Append(f.ctx, es, hs); err != nil {
				return err
			}
			if got, want := tx.Size(), es[n-1].Index+1; got != want {
				return fmt.Errorf("round %d: Size after Append: %d, want %d", round, got, want)
			}
			idx := []int64{0, before, before + int64(len(hs)) - 1, 5}
			got, err := tx.ReadHashes(f.ctx, idx)
			if err != nil {
				return fmt.Errorf("round %d: ReadHashes of own appends: %w", round, err)
			}
			if got[1] != hs[0] || got[2] != hs[len(hs)-1] {
				return fmt.Errorf("round %d: ReadHashes of own appends: got %x, %x; want %x, %x", round, got[1][:6], got[2][:6], hs[0][:6], hs[len(hs)-1][:6])
			}
			for _, bad := range []int64{tlog.StoredHashCount(tx.Size()), -1} {
				if _, err := tx.ReadHashes(f.ctx, []int64{bad}); err == nil {
					return fmt.Errorf("round %d: ReadHashes of index %d with %d stored: no error", round, bad, tlog.StoredHashCount(tx.Size()))
				}
			}
			want = append(want, hs...)
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	f.expectLog(f.l, entriesAt(0, 351))
	first := tlog.StoredHashCount(10)
	idx := make([]int64, len(want))
	for i := range idx {
		idx[i] = first + int64(i)
	}
	got, err := f.l.LedgerHashes(f.ctx, idx)
	if err != nil || !slices.Equal(got, want) {
		f.t.Errorf("LedgerHashes after commit differ from what ReadHashes read in the transaction (%v)", err)
	}
}

// testLedgerConcurrent runs writers through two handles at once: every
// group must land whole, in consecutive indexes, and the hashes must
// make one consistent tree.
func testLedgerConcurrent(f *ledgerFixture) {
	handles := []store.Ledger{f.l, f.openOther()}
	const writers, calls = 6, 8
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			l := handles[w%2]
			for c := range calls {
				n := 1 + (w*calls+c)%9*17
				err := l.UpdateLedger(f.ctx, func(tx store.LedgerTx) error {
					es := make([]store.LedgerEntry, n)
					for j := range es {
						es[j] = store.LedgerEntry{Index: tx.Size() + int64(j), Kind: "batch", Site: fmt.Sprintf("w%d", w),
							Time: int64(c), Data: fmt.Appendf(nil, "w%d/c%d/j%d/%d", w, c, j, n)}
					}
					return appendTx(f.ctx, tx, es)
				})
				if err != nil {
					f.t.Errorf("writer %d, call %d: %v", w, c, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if f.t.Failed() {
		return
	}
	size, err := f.l.LedgerSize(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	got, err := f.l.LedgerEntries(f.ctx, 0, size)
	if err != nil {
		f.t.Fatal(err)
	}
	total := 0
	for w := range writers {
		for c := range calls {
			total += 1 + (w*calls+c)%9*17
		}
	}
	if size != int64(total) || len(got) != total {
		f.t.Fatalf("after concurrent appends: size %d, %d entries; want %d", size, len(got), total)
	}
	seen := map[string]bool{}
	for i := 0; i < len(got); {
		var w, c, j, n int
		if _, err := fmt.Sscanf(string(got[i].Data), "w%d/c%d/j%d/%d", &w, &c, &j, &n); err != nil || j != 0 {
			f.t.Fatalf("entry %d (%q) does not start a group", i, got[i].Data)
		}
		g := fmt.Sprintf("w%d/c%d", w, c)
		if seen[g] {
			f.t.Fatalf("group %s appended twice", g)
		}
		seen[g] = true
		for j := range n {
			e := got[i+j]
			if want := fmt.Sprintf("%s/j%d/%d", g, j, n); e.Index != int64(i+j) || string(e.Data) != want {
				f.t.Fatalf("entry %d: index %d, data %q; want %q (groups interleaved)", i+j, e.Index, e.Data, want)
			}
		}
		i += n
	}
	f.expectLog(f.l, got)
	f.expectLog(handles[1], got)
}

func testLedgerLockWait(f *ledgerFixture) {
	other := f.openOther()
	inside, release, held := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		held <- f.l.UpdateLedger(f.ctx, func(tx store.LedgerTx) error {
			close(inside)
			<-release
			return appendTx(f.ctx, tx, entriesAt(0, 3))
		})
	}()
	<-inside
	canceled, cancel := context.WithCancel(f.ctx)
	cancel()
	err := f.l.UpdateLedger(canceled, func(store.LedgerTx) error {
		f.t.Errorf("UpdateLedger with a canceled context called fn while another caller holds the ledger")
		return nil
	})
	if !errors.Is(err, store.ErrLedgerLocked) {
		f.t.Errorf("UpdateLedger with a canceled context while another caller holds the ledger: %v, want store.ErrLedgerLocked", err)
	}
	// Through the other handle the wait really starts (and it ends with
	// the deadline; what is checked is only the error).
	short, cancel := context.WithTimeout(f.ctx, 200*time.Millisecond)
	defer cancel()
	err = other.UpdateLedger(short, func(store.LedgerTx) error {
		f.t.Errorf("UpdateLedger through another handle called fn while the ledger is held")
		return nil
	})
	if !errors.Is(err, store.ErrLedgerLocked) {
		f.t.Errorf("UpdateLedger through another handle whose context ends while the ledger is held: %v, want store.ErrLedgerLocked", err)
	}
	close(release)
	if err := <-held; err != nil {
		f.t.Fatalf("the holder's UpdateLedger: %v", err)
	}
	f.appendGroups(other, 2)
	f.expectLog(f.l, entriesAt(0, 5))
}

func testLedgerLastEntry(f *ledgerFixture) {
	k := store.LedgerKey{Site: "s", Asset: "a1", Quantity: "energy_import", Time: ledgerT0}
	mk := func(kind string, k store.LedgerKey, v float64) store.LedgerEntry {
		return store.LedgerEntry{Kind: kind, Site: k.Site, Asset: k.Asset, Quantity: k.Quantity, Phase: k.Phase,
			Time: k.Time, Value: v, Data: fmt.Appendf(nil, "%s %+v %g", kind, k, v)}
	}
	l1 := k
	l1.Phase = "L1"
	later := k
	later.Time += 900_000
	otherSite := k
	otherSite.Site = "t"
	es := []store.LedgerEntry{
		mk("reading", k, 1),
		mk("reading", k, 2), // a correction: the newest reading of k
		mk("energy", k, 3),
		{Kind: "batch", Site: "s", Time: ledgerT0, Data: []byte("batch")},
		mk("reading", l1, 4),
		mk("reading", later, 5),
		mk("reading", otherSite, 6),
		mk("energy", k, 7), // the newest energy entry of k
	}
	for i := range es {
		es[i].Index = int64(i)
	}
	err := f.l.UpdateLedger(f.ctx, func(tx store.LedgerTx) error {
		if err := appendTx(f.ctx, tx, es[:3]); err != nil {
			return err
		}
		// Own appends are visible before commit.
		if e, found, err := tx.LastEntry(f.ctx, "reading", k); err != nil || !found || e.Index != 1 {
			return fmt.Errorf("LastEntry of own appends: %+v, %v, %v; want index 1", e, found, err)
		}
		return appendTx(f.ctx, tx, es[3:])
	})
	if err != nil {
		f.t.Fatal(err)
	}
	err = f.l.UpdateLedger(f.ctx, func(tx store.LedgerTx) error {
		for _, c := range []struct {
			kind  string
			k     store.LedgerKey
			index int64 // -1: none
		}{
			{"reading", k, 1},
			{"energy", k, 7},
			{"reading", l1, 4},
			{"energy", l1, -1},
			{"reading", later, 5},
			{"reading", otherSite, 6},
			{"reading", store.LedgerKey{Site: "s", Asset: "a1", Quantity: "active_power", Time: ledgerT0}, -1},
			{"reading", store.LedgerKey{Site: "s", Asset: "a2", Quantity: "energy_import", Time: ledgerT0}, -1},
			{"reading", store.LedgerKey{Site: "s", Asset: "a1", Quantity: "energy_import", Time: ledgerT0 + 1}, -1},
		} {
			e, found, err := tx.LastEntry(f.ctx, c.kind, c.k)
			switch {
			case err != nil:
				return fmt.Errorf("LastEntry(%s, %+v): %w", c.kind, c.k, err)
			case c.index < 0 && found:
				f.t.Errorf("LastEntry(%s, %+v): found entry %d, want none", c.kind, c.k, e.Index)
			case c.index >= 0 && !found:
				f.t.Errorf("LastEntry(%s, %+v): none, want entry %d", c.kind, c.k, c.index)
			case c.index >= 0 && !equalEntry(e, es[c.index]):
				f.t.Errorf("LastEntry(%s, %+v):\n got %s\nwant %s", c.kind, c.k, fmtEntry(e), fmtEntry(es[c.index]))
			}
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.l.EraseSubject(f.ctx, "s", "a1"); err != nil {
		f.t.Fatal(err)
	}
	err = f.l.UpdateLedger(f.ctx, func(tx store.LedgerTx) error {
		if e, found, err := tx.LastEntry(f.ctx, "reading", k); err != nil || found {
			f.t.Errorf("LastEntry of an erased asset: found %v (%+v), %v; want none", found, e, err)
		}
		if _, found, err := tx.LastEntry(f.ctx, "reading", otherSite); err != nil || !found {
			f.t.Errorf("LastEntry of the same asset id in another site after erasing: found %v, %v; want it", found, err)
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

func testLedgerCheckpoints(f *ledgerFixture) {
	if _, err := f.l.LatestCheckpoint(f.ctx); !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("LatestCheckpoint of an empty ledger: %v, want ErrNotFound", err)
	}
	at := func(s int) time.Time { return time.Date(2024, 3, 1, 9, 30, s, 123e6, time.UTC) }
	cp := func(size int64, note string, s int) store.Checkpoint {
		return store.Checkpoint{Size: size, Note: []byte(note), At: at(s)}
	}
	for _, c := range []store.Checkpoint{cp(5, "five\n", 1), cp(3, "three\n", 2), cp(10, "ten\n\n— sig\n", 3)} {
		if err := f.l.PutCheckpoint(f.ctx, c); err != nil {
			f.t.Fatalf("PutCheckpoint(%d): %v", c.Size, err)
		}
	}
	expect := func(what string, got store.Checkpoint, err error, want store.Checkpoint) {
		f.t.Helper()
		if err != nil {
			f.t.Errorf("%s: %v", what, err)
			return
		}
		if got.Size != want.Size || !bytes.Equal(got.Note, want.Note) || !got.At.Equal(want.At) || got.At.Location() != time.UTC {
			f.t.Errorf("%s: got %d %q at %v, want %d %q at %v (UTC)", what, got.Size, got.Note, got.At, want.Size, want.Note, want.At)
		}
	}
	got, err := f.l.LatestCheckpoint(f.ctx)
	expect("LatestCheckpoint", got, err, cp(10, "ten\n\n— sig\n", 3))
	got, err = f.l.CheckpointAt(f.ctx, 3)
	expect("CheckpointAt(3)", got, err, cp(3, "three\n", 2))
	if _, err := f.l.CheckpointAt(f.ctx, 7); !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("CheckpointAt(7) that was never put: %v, want ErrNotFound", err)
	}
	// A cosigned note replaces the one of its size.
	if err := f.l.PutCheckpoint(f.ctx, cp(5, "five\n\n— cosigned\n", 4)); err != nil {
		f.t.Fatal(err)
	}
	got, err = f.l.CheckpointAt(f.ctx, 5)
	expect("CheckpointAt(5) after replacing", got, err, cp(5, "five\n\n— cosigned\n", 4))
	got, err = f.l.LatestCheckpoint(f.ctx)
	expect("LatestCheckpoint after replacing an older one", got, err, cp(10, "ten\n\n— sig\n", 3))
	if err := f.l.PutCheckpoint(f.ctx, cp(11, "eleven\n", 5)); err != nil {
		f.t.Fatal(err)
	}
	got, err = f.l.LatestCheckpoint(f.ctx)
	expect("LatestCheckpoint", got, err, cp(11, "eleven\n", 5))
}

func testLedgerSubjectKeys(f *ledgerFixture) {
	calls := 0
	newKey := func(k string) func() []byte {
		return func() []byte { calls++; return []byte(k) }
	}
	k1, err := f.l.SubjectKey(f.ctx, "s", "a1", newKey("key-one"))
	if err != nil || string(k1) != "key-one" || calls != 1 {
		f.t.Fatalf("first SubjectKey: %q, %v (newKey called %d times); want key-one", k1, err, calls)
	}
	k1, err = f.l.SubjectKey(f.ctx, "s", "a1", newKey("key-two"))
	if err != nil || string(k1) != "key-one" || calls != 1 {
		f.t.Errorf("second SubjectKey: %q, %v (newKey called %d times); want key-one, newKey not called", k1, err, calls)
	}
	for _, sa := range [][2]string{{"s", "a2"}, {"t", "a1"}} {
		k, err := f.l.SubjectKey(f.ctx, sa[0], sa[1], newKey("key-"+sa[0]+sa[1]))
		if err != nil || string(k) != "key-"+sa[0]+sa[1] {
			f.t.Errorf("SubjectKey(%q, %q): %q, %v; want its own key", sa[0], sa[1], k, err)
		}
	}
	// Callers racing for a new subject all get the one key created.
	other := f.openOther()
	keys := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			l := []store.Ledger{f.l, other}[i%2]
			k, err := l.SubjectKey(f.ctx, "s", "racy", func() []byte { return fmt.Appendf(nil, "racer-%d", i) })
			if err != nil {
				f.t.Errorf("racing SubjectKey %d: %v", i, err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for i, k := range keys {
		if !bytes.Equal(k, keys[0]) {
			f.t.Errorf("racing SubjectKey %d: %q, but caller 0 got %q", i, k, keys[0])
		}
	}
	n, err := f.l.EraseSubject(f.ctx, "s", "a1")
	if err != nil || n != 0 {
		f.t.Errorf("EraseSubject of a subject without entries: %d, %v; want 0, nil", n, err)
	}
	calls = 0
	if k, err := f.l.SubjectKey(f.ctx, "s", "a1", newKey("key-three")); !errors.Is(err, store.ErrNotFound) || calls != 0 {
		f.t.Errorf("SubjectKey after erasure: %q, %v (newKey called %d times); want ErrNotFound and no new key", k, err, calls)
	}
	if k, err := f.l.SubjectKey(f.ctx, "t", "a1", newKey("x")); err != nil || string(k) != "key-ta1" {
		f.t.Errorf("SubjectKey of the same asset id in another site after erasure: %q, %v", k, err)
	}
	// Erasing a subject that never had a key leaves a tombstone too.
	if _, err := f.l.EraseSubject(f.ctx, "s", "never"); err != nil {
		f.t.Fatal(err)
	}
	if k, err := f.l.SubjectKey(f.ctx, "s", "never", newKey("late")); !errors.Is(err, store.ErrNotFound) || calls != 0 {
		f.t.Errorf("SubjectKey of a subject erased before it had a key: %q, %v (newKey called %d times); want ErrNotFound", k, err, calls)
	}
	if k, err := other.SubjectKey(f.ctx, "s", "a1", newKey("y")); !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("SubjectKey after erasure through another handle: %q, %v; want ErrNotFound", k, err)
	}
}

func testLedgerErase(f *ledgerFixture) {
	var es []store.LedgerEntry
	add := func(kind, site, asset string, v float64) {
		es = append(es, store.LedgerEntry{Index: int64(len(es)), Kind: kind, Site: site, Asset: asset,
			Quantity: "energy_import", Phase: "L3", Time: ledgerT0 + int64(len(es))*900_000, Value: v,
			Data: fmt.Appendf(nil, "%s/%s/%s/%d", kind, site, asset, len(es))})
	}
	for i := range 40 {
		add("reading", "s", "a1", float64(i))
		add("energy", "s", "a1", float64(i))
		add("reading", "s", "a2", float64(i))
		add("reading", "t", "a1", float64(i))
		if i%10 == 0 {
			es = append(es, store.LedgerEntry{Index: int64(len(es)), Kind: "batch", Site: "s", Time: ledgerT0, Data: []byte("sig")})
		}
	}
	err := f.l.UpdateLedger(f.ctx, func(tx store.LedgerTx) error { return appendTx(f.ctx, tx, es) })
	if err != nil {
		f.t.Fatal(err)
	}
	size := int64(len(es))
	th, err := tlog.TreeHash(size, storeReader(f.ctx, f.l))
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.l.SubjectKey(f.ctx, "s", "a1", func() []byte { return []byte("k") }); err != nil {
		f.t.Fatal(err)
	}
	n, err := f.l.EraseSubject(f.ctx, "s", "a1")
	if err != nil || n != 80 {
		f.t.Fatalf("EraseSubject: %d, %v; want 80 entries", n, err)
	}
	want := slices.Clone(es)
	for i := range want {
		if e := &want[i]; e.Site == "s" && e.Asset == "a1" {
			e.Data, e.Asset, e.Quantity, e.Phase, e.Value = nil, "", "", "", 0
		}
	}
	f.expectEntries(f.l, 0, size, want)
	got, err := f.l.LedgerEntries(f.ctx, 0, size)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, e := range got {
		if e.Site == "s" && e.Kind != "batch" && e.Asset == "" && e.Data != nil {
			f.t.Errorf("erased entry %d: Data %q, want nil", e.Index, e.Data)
			break
		}
	}
	// The tree is untouched: the log keeps the hashes.
	if th2, err := tlog.TreeHash(size, storeReader(f.ctx, f.l)); err != nil || th2 != th {
		f.t.Errorf("tree hash after erasure: %v, %v; want %v", th2, err, th)
	}
	if _, err := f.l.SubjectKey(f.ctx, "s", "a1", func() []byte { return []byte("new") }); !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("SubjectKey after EraseSubject: %v, want ErrNotFound", err)
	}
	if n, err := f.l.EraseSubject(f.ctx, "s", "a1"); err != nil || n != 0 {
		f.t.Errorf("second EraseSubject: %d, %v; want 0", n, err)
	}
	// Appends go on after an erasure.
	f.appendGroups(f.l, 3)
	if got, err := f.l.LedgerSize(f.ctx); err != nil || got != size+3 {
		f.t.Errorf("LedgerSize after appending past an erasure: %d, %v; want %d", got, err, size+3)
	}
}

func testLedgerSigners(f *ledgerFixture) {
	expectSigner := func(id, wantSite string, wantKey []byte) {
		f.t.Helper()
		site, key, err := f.l.Signer(f.ctx, id)
		if err != nil || site != wantSite || !bytes.Equal(key, wantKey) {
			f.t.Errorf("Signer(%q): %q, %q, %v; want %q, %q", id, site, key, err, wantSite, wantKey)
		}
	}
	if _, _, err := f.l.Signer(f.ctx, "gw-1"); !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("Signer of an empty store: %v, want ErrNotFound", err)
	}
	if got, err := f.l.Signers(f.ctx, "s"); err != nil || got == nil || len(got) != 0 {
		f.t.Errorf("Signers of a site without any: %#v, %v; want an empty slice", got, err)
	}
	if err := f.l.PutSigner(f.ctx, "s", "gw-1", []byte("gw-1+abcd+key1")); err != nil {
		f.t.Fatal(err)
	}
	expectSigner("gw-1", "s", []byte("gw-1+abcd+key1"))
	if err := f.l.PutSigner(f.ctx, "s", "gw-1", []byte("gw-1+abcd+key2")); err != nil {
		f.t.Errorf("PutSigner replacing a key of the same site: %v", err)
	}
	expectSigner("gw-1", "s", []byte("gw-1+abcd+key2"))
	err := f.l.PutSigner(f.ctx, "t", "gw-1", []byte("stolen"))
	if !errors.Is(err, store.ErrConflict) {
		f.t.Errorf("PutSigner of an id another site holds: %v, want ErrConflict", err)
	}
	expectSigner("gw-1", "s", []byte("gw-1+abcd+key2"))
	for _, id := range orderedIDs {
		if err := f.l.PutSigner(f.ctx, "t", id, []byte("key of "+id)); err != nil {
			f.t.Fatal(err)
		}
	}
	list, err := f.l.Signers(f.ctx, "t")
	if err != nil {
		f.t.Fatal(err)
	}
	var ids []string
	for _, sg := range list {
		ids = append(ids, sg.ID)
		if string(sg.PublicKey) != "key of "+sg.ID {
			f.t.Errorf("Signers: %q has key %q", sg.ID, sg.PublicKey)
		}
	}
	if !slices.Equal(ids, sortedIDs) {
		f.t.Errorf("Signers(t): %q, want %q (byte-wise order)", ids, sortedIDs)
	}
	if err := f.l.DeleteSigner(f.ctx, "t", "gw-1"); !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("DeleteSigner of another site's signer: %v, want ErrNotFound", err)
	}
	expectSigner("gw-1", "s", []byte("gw-1+abcd+key2"))
	if err := f.l.DeleteSigner(f.ctx, "s", "gw-1"); err != nil {
		f.t.Errorf("DeleteSigner: %v", err)
	}
	if _, _, err := f.l.Signer(f.ctx, "gw-1"); !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("Signer after DeleteSigner: %v, want ErrNotFound", err)
	}
	if err := f.l.DeleteSigner(f.ctx, "s", "gw-1"); !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("second DeleteSigner: %v, want ErrNotFound", err)
	}
	// Once deleted, another site may take the id.
	if err := f.l.PutSigner(f.ctx, "t", "gw-1", []byte("new")); err != nil {
		f.t.Errorf("PutSigner of a deleted id by another site: %v", err)
	}
	if got, err := f.l.Signers(f.ctx, "s"); err != nil || len(got) != 0 {
		f.t.Errorf("Signers(s) after deleting its only signer: %+v, %v", got, err)
	}
}

// testLedgerOtherHandle checks that another handle (another node) sees
// everything committed through the first.
func testLedgerOtherHandle(f *ledgerFixture) {
	f.appendGroups(f.l, 20)
	if err := f.l.PutCheckpoint(f.ctx, store.Checkpoint{Size: 20, Note: []byte("n"), At: time.UnixMilli(ledgerT0).UTC()}); err != nil {
		f.t.Fatal(err)
	}
	if err := f.l.PutSigner(f.ctx, "s", "gw", []byte("pk")); err != nil {
		f.t.Fatal(err)
	}
	k, err := f.l.SubjectKey(f.ctx, "s", "a", func() []byte { return []byte("first") })
	if err != nil {
		f.t.Fatal(err)
	}
	o := f.openOther()
	f.expectLog(o, entriesAt(0, 20))
	if c, err := o.LatestCheckpoint(f.ctx); err != nil || c.Size != 20 {
		f.t.Errorf("LatestCheckpoint through another handle: %+v, %v", c, err)
	}
	if site, pk, err := o.Signer(f.ctx, "gw"); err != nil || site != "s" || string(pk) != "pk" {
		f.t.Errorf("Signer through another handle: %q, %q, %v", site, pk, err)
	}
	if k2, err := o.SubjectKey(f.ctx, "s", "a", func() []byte { return []byte("second") }); err != nil || !bytes.Equal(k, k2) {
		f.t.Errorf("SubjectKey through another handle: %q, %v; want %q", k2, err, k)
	}
	f.appendGroups(o, 5)
	f.expectLog(f.l, entriesAt(0, 25))
}

// testLedgerMarks round-trips the saved reading marks: none at first, the
// last put wins (a smaller upto too: the last Log to close), binary data
// byte for byte, a negative upto refused, another handle sees them.
func testLedgerMarks(f *ledgerFixture) {
	expect := func(l store.Ledger, what string, wantUpto int64, wantData []byte) {
		f.t.Helper()
		upto, data, found, err := l.LedgerMarks(f.ctx)
		if err != nil || !found || upto != wantUpto || !bytes.Equal(data, wantData) {
			f.t.Errorf("%s: LedgerMarks = %d, %d bytes, found %v, %v; want %d, %d bytes", what, upto, len(data), found, err, wantUpto, len(wantData))
		}
	}
	if upto, data, found, err := f.l.LedgerMarks(f.ctx); err != nil || found || upto != 0 || data != nil {
		f.t.Errorf("LedgerMarks of a fresh ledger = %d, %q, found %v, %v; want none", upto, data, found, err)
	}
	big := make([]byte, 300_000)
	rand.NewChaCha8([32]byte{1}).Read(big) //nolint:errcheck // never fails
	big[0], big[len(big)-1] = 0, 0
	for _, c := range []struct {
		upto int64
		data []byte
	}{{12, []byte("first")}, {1 << 40, big}, {3, []byte{0, 1, 0}}, {0, nil}} {
		if err := f.l.PutLedgerMarks(f.ctx, c.upto, c.data); err != nil {
			f.t.Fatalf("PutLedgerMarks(%d, %d bytes): %v", c.upto, len(c.data), err)
		}
		expect(f.l, fmt.Sprintf("after PutLedgerMarks(%d)", c.upto), c.upto, c.data)
	}
	if err := f.l.PutLedgerMarks(f.ctx, 9, big); err != nil {
		f.t.Fatal(err)
	}
	if err := f.l.PutLedgerMarks(f.ctx, -1, []byte("bad")); err == nil {
		f.t.Error("PutLedgerMarks with upto -1: no error")
	}
	expect(f.l, "after a refused PutLedgerMarks", 9, big)
	o := f.openOther()
	expect(o, "through another handle", 9, big)
	if err := o.PutLedgerMarks(f.ctx, 10, []byte("other")); err != nil {
		f.t.Fatal(err)
	}
	expect(f.l, "put through another handle", 10, []byte("other"))
}
