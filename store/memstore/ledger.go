package memstore

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/gridlink/gridlink/store"
)

// ledger is the store's energy ledger. Its zero value is an empty ledger.
// It has its own mutex, apart from the store's, so that a long
// UpdateLedger does not hold up readings; writer admits one UpdateLedger
// at a time and lets a waiting caller give up when its context ends.
type ledger struct {
	writer store.WriterLock

	mu          sync.RWMutex
	entries     []store.LedgerEntry
	hashes      [][32]byte
	last        map[lastKey]int64 // newest index of each kind and key
	checkpoints map[int64]store.Checkpoint
	subjects    map[subjectKey][]byte // nil value: erased (a tombstone)
	signers     map[string]signer
	marks       *savedMarks // nil: none saved
}

// savedMarks is what PutLedgerMarks saved.
type savedMarks struct {
	upto int64
	data []byte
}

type lastKey struct {
	kind string
	key  store.LedgerKey
}

type subjectKey struct{ site, asset string }

type signer struct {
	site string
	key  []byte
}

func keyOf(e *store.LedgerEntry) lastKey {
	return lastKey{e.Kind, store.LedgerKey{Site: e.Site, Asset: e.Asset, Quantity: e.Quantity, Phase: e.Phase, Time: e.Time}}
}

// hasRecord says whether an entry carries a readable record that LastEntry
// finds and EraseSubject erases.
func hasRecord(e *store.LedgerEntry) bool {
	return (e.Kind == "reading" || e.Kind == "energy") && e.Asset != ""
}

func copyEntry(e store.LedgerEntry) store.LedgerEntry {
	e.Data = bytes.Clone(e.Data)
	return e
}

// UpdateLedger implements store.Ledger.
func (s *Store) UpdateLedger(ctx context.Context, fn func(tx store.LedgerTx) error) error {
	l := &s.ledger
	if err := l.writer.Lock(ctx); err != nil {
		return fmt.Errorf("update ledger: %w", err)
	}
	defer l.writer.Unlock()

	l.mu.RLock()
	tx := &memTx{l: l, base: int64(len(l.entries))}
	l.mu.RUnlock()
	if err := fn(tx); err != nil {
		return err
	}
	if tx.failed != nil {
		return fmt.Errorf("update ledger: an append failed: %w", tx.failed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("update ledger: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = make(map[lastKey]int64)
	}
	for i := range tx.entries {
		e := &tx.entries[i]
		if hasRecord(e) {
			l.last[keyOf(e)] = e.Index
		}
	}
	l.entries = append(l.entries, tx.entries...)
	l.hashes = append(l.hashes, tx.hashes...)
	return nil
}

// memTx is the transaction of one UpdateLedger: what it appends waits in
// entries and hashes until fn returns.
type memTx struct {
	l       *ledger
	base    int64 // committed entries when the transaction began
	entries []store.LedgerEntry
	hashes  [][32]byte
	failed  error // the first failed Append: the transaction cannot commit
}

func (tx *memTx) Size() int64 { return tx.base + int64(len(tx.entries)) }

func (tx *memTx) ReadHashes(ctx context.Context, indexes []int64) ([][32]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := tlog.StoredHashCount(tx.Size())
	tx.l.mu.RLock()
	defer tx.l.mu.RUnlock()
	committed := int64(len(tx.l.hashes))
	out := make([][32]byte, len(indexes))
	for i, x := range indexes {
		switch {
		case x < 0 || x >= n:
			return nil, fmt.Errorf("read ledger hashes: index %d outside the %d stored hashes", x, n)
		case x < committed:
			out[i] = tx.l.hashes[x]
		default:
			out[i] = tx.hashes[x-committed]
		}
	}
	return out, nil
}

func (tx *memTx) Append(ctx context.Context, entries []store.LedgerEntry, hashes [][32]byte) error {
	if err := ctx.Err(); err != nil {
		tx.failed = err
		return err
	}
	if err := checkAppend(tx.Size(), entries, hashes); err != nil {
		tx.failed = err
		return err
	}
	for _, e := range entries {
		tx.entries = append(tx.entries, copyEntry(e))
	}
	tx.hashes = append(tx.hashes, hashes...)
	return nil
}

func (tx *memTx) LastEntry(ctx context.Context, kind string, k store.LedgerKey) (store.LedgerEntry, bool, error) {
	if err := ctx.Err(); err != nil {
		return store.LedgerEntry{}, false, err
	}
	want := lastKey{kind, k}
	for i := len(tx.entries) - 1; i >= 0; i-- {
		if e := &tx.entries[i]; hasRecord(e) && keyOf(e) == want {
			return copyEntry(*e), true, nil
		}
	}
	tx.l.mu.RLock()
	defer tx.l.mu.RUnlock()
	if x, ok := tx.l.last[want]; ok {
		return copyEntry(tx.l.entries[x]), true, nil
	}
	return store.LedgerEntry{}, false, nil
}

// LedgerSize implements store.Ledger.
func (s *Store) LedgerSize(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.ledger.mu.RLock()
	defer s.ledger.mu.RUnlock()
	return int64(len(s.ledger.entries)), nil
}

// LedgerHashes implements store.Ledger.
func (s *Store) LedgerHashes(ctx context.Context, indexes []int64) ([][32]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l := &s.ledger
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([][32]byte, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(l.hashes)) {
			return nil, fmt.Errorf("read ledger hashes: index %d outside the %d stored hashes", x, len(l.hashes))
		}
		out[i] = l.hashes[x]
	}
	return out, nil
}

// LedgerEntries implements store.Ledger.
func (s *Store) LedgerEntries(ctx context.Context, from, to int64) ([]store.LedgerEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkRange(from, to); err != nil {
		return nil, err
	}
	l := &s.ledger
	l.mu.RLock()
	defer l.mu.RUnlock()
	to = min(to, int64(len(l.entries)))
	var out []store.LedgerEntry
	for x := from; x < to; x++ {
		out = append(out, copyEntry(l.entries[x]))
	}
	return out, nil
}

// PutCheckpoint implements store.Ledger.
func (s *Store) PutCheckpoint(ctx context.Context, c store.Checkpoint) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l := &s.ledger
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.checkpoints == nil {
		l.checkpoints = make(map[int64]store.Checkpoint)
	}
	c.Note = bytes.Clone(c.Note)
	c.At = c.At.UTC()
	l.checkpoints[c.Size] = c
	return nil
}

// LatestCheckpoint implements store.Ledger.
func (s *Store) LatestCheckpoint(ctx context.Context) (store.Checkpoint, error) {
	if err := ctx.Err(); err != nil {
		return store.Checkpoint{}, err
	}
	l := &s.ledger
	l.mu.RLock()
	defer l.mu.RUnlock()
	if len(l.checkpoints) == 0 {
		return store.Checkpoint{}, fmt.Errorf("latest checkpoint: %w", store.ErrNotFound)
	}
	c := l.checkpoints[slices.Max(slices.Collect(maps.Keys(l.checkpoints)))]
	c.Note = bytes.Clone(c.Note)
	return c, nil
}

// CheckpointAt implements store.Ledger.
func (s *Store) CheckpointAt(ctx context.Context, size int64) (store.Checkpoint, error) {
	if err := ctx.Err(); err != nil {
		return store.Checkpoint{}, err
	}
	l := &s.ledger
	l.mu.RLock()
	defer l.mu.RUnlock()
	c, ok := l.checkpoints[size]
	if !ok {
		return store.Checkpoint{}, fmt.Errorf("checkpoint of size %d: %w", size, store.ErrNotFound)
	}
	c.Note = bytes.Clone(c.Note)
	return c, nil
}

// SubjectKey implements store.Ledger.
func (s *Store) SubjectKey(ctx context.Context, site, asset string, newKey func() []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l := &s.ledger
	l.mu.Lock()
	defer l.mu.Unlock()
	k := subjectKey{site, asset}
	key, ok := l.subjects[k]
	switch {
	case ok && key == nil:
		return nil, fmt.Errorf("subject key of asset %q of site %q: erased: %w", asset, site, store.ErrNotFound)
	case ok:
		return bytes.Clone(key), nil
	}
	key = bytes.Clone(newKey())
	if len(key) == 0 {
		return nil, fmt.Errorf("subject key of asset %q of site %q: newKey returned an empty key", asset, site)
	}
	if l.subjects == nil {
		l.subjects = make(map[subjectKey][]byte)
	}
	l.subjects[k] = key
	return bytes.Clone(key), nil
}

// EraseSubject implements store.Ledger. It waits for a running
// UpdateLedger, so an append in flight cannot bring back what it erases.
func (s *Store) EraseSubject(ctx context.Context, site, asset string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	l := &s.ledger
	if err := l.writer.Lock(ctx); err != nil {
		return 0, fmt.Errorf("erase subject: %w", err)
	}
	defer l.writer.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for i := range l.entries {
		e := &l.entries[i]
		if hasRecord(e) && e.Site == site && e.Asset == asset {
			delete(l.last, keyOf(e))
			e.Data, e.Asset, e.Quantity, e.Phase, e.Value = nil, "", "", "", 0
			n++
		}
	}
	if l.subjects == nil {
		l.subjects = make(map[subjectKey][]byte)
	}
	l.subjects[subjectKey{site, asset}] = nil
	return n, nil
}

// PutSigner implements store.Ledger.
func (s *Store) PutSigner(ctx context.Context, site, id string, publicKey []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l := &s.ledger
	l.mu.Lock()
	defer l.mu.Unlock()
	if o, ok := l.signers[id]; ok && o.site != site {
		return fmt.Errorf("put signer %q of site %q: the id belongs to another site: %w", id, site, store.ErrConflict)
	}
	if l.signers == nil {
		l.signers = make(map[string]signer)
	}
	l.signers[id] = signer{site, bytes.Clone(publicKey)}
	return nil
}

// Signer implements store.Ledger.
func (s *Store) Signer(ctx context.Context, id string) (string, []byte, error) {
	if err := ctx.Err(); err != nil {
		return "", nil, err
	}
	l := &s.ledger
	l.mu.RLock()
	defer l.mu.RUnlock()
	o, ok := l.signers[id]
	if !ok {
		return "", nil, fmt.Errorf("signer %q: %w", id, store.ErrNotFound)
	}
	return o.site, bytes.Clone(o.key), nil
}

// DeleteSigner implements store.Ledger.
func (s *Store) DeleteSigner(ctx context.Context, site, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l := &s.ledger
	l.mu.Lock()
	defer l.mu.Unlock()
	if o, ok := l.signers[id]; !ok || o.site != site {
		return fmt.Errorf("signer %q of site %q: %w", id, site, store.ErrNotFound)
	}
	delete(l.signers, id)
	return nil
}

// Signers implements store.Ledger.
func (s *Store) Signers(ctx context.Context, site string) ([]store.LedgerSigner, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l := &s.ledger
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := []store.LedgerSigner{}
	for id, o := range l.signers {
		if o.site == site {
			out = append(out, store.LedgerSigner{ID: id, PublicKey: bytes.Clone(o.key)})
		}
	}
	slices.SortFunc(out, func(a, b store.LedgerSigner) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

var _ store.Ledger = (*Store)(nil)

// checkAppend checks that entries continue the log at size and hashes
// continue its stored hashes.
func checkAppend(size int64, entries []store.LedgerEntry, hashes [][32]byte) error {
	for i, e := range entries {
		if want := size + int64(i); e.Index != want {
			return fmt.Errorf("append to the ledger: entry %d of %d has index %d, want %d", i, len(entries), e.Index, want)
		}
	}
	if want := tlog.StoredHashCount(size+int64(len(entries))) - tlog.StoredHashCount(size); int64(len(hashes)) != want {
		return fmt.Errorf("append to the ledger: %d stored hashes for %d entries at index %d, want %d", len(hashes), len(entries), size, want)
	}
	return nil
}

// checkRange checks the bounds of LedgerEntries.
func checkRange(from, to int64) error {
	if from < 0 || to < from {
		return fmt.Errorf("ledger entries [%d, %d): want 0 <= from <= to", from, to)
	}
	return nil
}

// PutLedgerMarks implements store.Ledger.
func (s *Store) PutLedgerMarks(ctx context.Context, upto int64, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := store.CheckLedgerMarks(upto); err != nil {
		return err
	}
	l := &s.ledger
	l.mu.Lock()
	defer l.mu.Unlock()
	l.marks = &savedMarks{upto, bytes.Clone(data)}
	return nil
}

// LedgerMarks implements store.Ledger.
func (s *Store) LedgerMarks(ctx context.Context) (upto int64, data []byte, found bool, err error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, false, err
	}
	l := &s.ledger
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.marks == nil {
		return 0, nil, false, nil
	}
	return l.marks.upto, bytes.Clone(l.marks.data), true, nil
}
