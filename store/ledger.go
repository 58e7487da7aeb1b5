package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrLedgerLocked is returned by UpdateLedger when another writer (another
// platform node) holds the ledger and the context ends before it is free.
var ErrLedgerLocked = errors.New("ledger is being written by another writer")

// LedgerEntry is one entry of the energy ledger's append-only log. Data is
// the entry's canonical bytes: the leaf the Merkle tree commits to. Entries
// whose Kind is "reading" or "energy" also carry the readable record of the
// operational store (site, asset, …), which erasing a member deletes while
// the log keeps Data's hash.
type LedgerEntry struct {
	Index int64  // position in the log, from 0
	Kind  string // "reading", "batch", "energy" (see package ledger)
	Site  string
	Data  []byte // canonical record; nil once erased
	// The readable record of a reading or energy entry: the asset and the
	// series it belongs to (for energy: the register quantity it was
	// computed from), its time (a reading's time, an energy interval's
	// start; UTC Unix ms) and value (the reading's; the interval's Wh).
	// Asset is "" for a batch entry and once erased.
	Asset    string
	Quantity string // a reading's quantity; an energy entry's register; "" for batch entries
	Phase    string // cim.Phase as stored; "" = total
	Time     int64
	Value    float64
}

// LedgerKey is the key of a reading or energy entry: for a reading the
// stored reading's series and time (the ledger records each reading once,
// and a corrected value as a new entry); for an energy entry the register
// quantity it was computed from and its interval's start.
type LedgerKey struct {
	Site, Asset, Quantity, Phase string
	Time                         int64
}

// Checkpoint is a signed checkpoint of the log: the signed note text
// (C2SP tlog-checkpoint) of a tree of Size entries, with the witnesses'
// cosignatures added as they come.
type Checkpoint struct {
	Size int64
	Note []byte
	At   time.Time
}

// LedgerTx is what UpdateLedger's function may do while it holds the
// ledger. Everything it appends is committed together, or nothing is.
type LedgerTx interface {
	// Size is the number of entries in the log, as committed plus what
	// this transaction appended so far.
	Size() int64
	// ReadHashes returns the stored hashes at the given tlog storage
	// indexes (golang.org/x/mod/sumdb/tlog.StoredHashIndex), including
	// those this transaction appended. An index at or past
	// tlog.StoredHashCount(Size()) is an error.
	ReadHashes(ctx context.Context, indexes []int64) ([][32]byte, error)
	// Append adds entries at Index Size(), Size()+1, … (each entry's Index
	// must equal its position) and the stored hashes that
	// tlog.StoredHashes computed for them, which continue the stored hash
	// sequence at tlog.StoredHashCount(Size()).
	Append(ctx context.Context, entries []LedgerEntry, hashes [][32]byte) error
	// LastEntry returns the newest entry of a kind ("reading" or "energy")
	// with this key: found is false when the ledger has none.
	LastEntry(ctx context.Context, kind string, k LedgerKey) (e LedgerEntry, found bool, err error)
}

// Ledger keeps the energy ledger: its entries, the Merkle tree's stored
// hashes, signed checkpoints, the keys behind members' pseudonyms and the
// public keys of the parties that sign readings. One writer appends at a
// time across every platform node sharing the store.
type Ledger interface {
	// UpdateLedger runs fn holding the ledger against every other writer
	// (a PostgreSQL advisory lock; SQLite's single writer) and commits
	// what fn appended if fn returns nil.
	UpdateLedger(ctx context.Context, fn func(tx LedgerTx) error) error
	// LedgerSize is the number of committed entries.
	LedgerSize(ctx context.Context) (int64, error)
	// LedgerHashes returns committed stored hashes (see LedgerTx.ReadHashes).
	LedgerHashes(ctx context.Context, indexes []int64) ([][32]byte, error)
	// LedgerEntries returns the committed entries with from <= Index < to,
	// in order.
	LedgerEntries(ctx context.Context, from, to int64) ([]LedgerEntry, error)

	// PutCheckpoint stores a checkpoint; a second one of the same Size
	// replaces the note (it gained cosignatures).
	PutCheckpoint(ctx context.Context, c Checkpoint) error
	// LatestCheckpoint returns the checkpoint of the largest Size, or
	// ErrNotFound.
	LatestCheckpoint(ctx context.Context) (Checkpoint, error)
	// CheckpointAt returns the checkpoint of exactly this size, or
	// ErrNotFound.
	CheckpointAt(ctx context.Context, size int64) (Checkpoint, error)

	// SubjectKey returns the secret key behind the pseudonym of an asset
	// (a member's identifier on the log), creating it from newKey() on
	// first use. After EraseSubject it returns ErrNotFound instead.
	SubjectKey(ctx context.Context, site, asset string, newKey func() []byte) ([]byte, error)
	// EraseSubject deletes an asset's pseudonym key and the readable part
	// of its ledger entries (Data, Asset, Quantity, Phase, Value), so the
	// log keeps only unlinkable hashes. It returns how many entries it
	// erased.
	EraseSubject(ctx context.Context, site, asset string) (int64, error)

	// PutSigner registers (or replaces) the Ed25519 public key of a party
	// that signs a site's readings (a gateway, or the platform for its
	// charge points). Signer ids are unique across sites: ErrConflict if
	// another site has it.
	PutSigner(ctx context.Context, site, id string, publicKey []byte) error
	// Signer returns a signer's site and public key, or ErrNotFound.
	Signer(ctx context.Context, id string) (site string, publicKey []byte, err error)
	// DeleteSigner removes a signer of a site, or returns ErrNotFound.
	DeleteSigner(ctx context.Context, site, id string) error
	// Signers lists a site's signers, ordered by id (none: an empty
	// slice, not an error). GET /api/v1/sites/{site}/signers serves it,
	// and verifiers fetch the public keys from there.
	Signers(ctx context.Context, site string) ([]LedgerSigner, error)

	// PutLedgerMarks saves the ledger.Log's reading marks of the entries
	// [0, upto) (data is the Log's own encoding, opaque to the store),
	// replacing those saved before: one snapshot per ledger, so that a
	// restart scans only the entries after it. upto < 0 is an error.
	PutLedgerMarks(ctx context.Context, upto int64, data []byte) error
	// LedgerMarks returns the saved marks: found is false when none were
	// saved.
	LedgerMarks(ctx context.Context) (upto int64, data []byte, found bool, err error)
}

// CheckLedgerMarks checks PutLedgerMarks' arguments.
func CheckLedgerMarks(upto int64) error {
	if upto < 0 {
		return fmt.Errorf("put ledger marks: negative upto %d", upto)
	}
	return nil
}

// LedgerSigner is a registered signer: its id (the note key name) and the
// public key bytes as given to PutSigner (the platform stores the
// signed-note verifier key text "<name>+<hash>+<base64>").
type LedgerSigner struct {
	ID        string
	PublicKey []byte
}

// WriterLock admits one ledger writer of a process at a time, and gives up
// with ErrLedgerLocked when the caller's context ends first. Drivers take
// it before their own lock (SQLite's write lock, PostgreSQL's advisory
// lock), so writers of one process queue here instead of in the database.
// The zero value is ready to use.
type WriterLock struct {
	once sync.Once
	ch   chan struct{} // holds a token while a writer runs
}

// Lock waits for the lock. A context already ended fails even when the
// lock is free, so a cancelled caller never starts a write.
func (l *WriterLock) Lock(ctx context.Context) error {
	l.once.Do(func() { l.ch = make(chan struct{}, 1) })
	select {
	case l.ch <- struct{}{}:
		if err := ctx.Err(); err != nil {
			<-l.ch
			return err
		}
		return nil
	default:
	}
	select {
	case l.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrLedgerLocked, context.Cause(ctx))
	}
}

// Unlock releases the lock.
func (l *WriterLock) Unlock() { <-l.ch }

// EraseInChunks runs a driver's erasure of a subject a chunk of chunk
// entries at a time (each chunk its own transaction, so appends never wait
// for a whole-log scan) and adds up what the chunks erased. eraseChunk
// erases the subject's entries in [from, to) and, with first, its key; it
// says whether the log goes on past the chunk.
func EraseInChunks(ctx context.Context, site, asset string, chunk int64,
	eraseChunk func(ctx context.Context, from, to int64, first bool) (n int64, more bool, err error)) (int64, error) {
	what := fmt.Sprintf("erase asset %q of site %q from the ledger", asset, site)
	if asset == "" {
		return 0, fmt.Errorf("%s: the asset is empty", what)
	}
	var erased int64
	for from, first := int64(0), true; ; from, first = from+chunk, false {
		n, more, err := eraseChunk(ctx, from, from+chunk, first)
		if err != nil {
			return erased, fmt.Errorf("%s: %w", what, err)
		}
		erased += n
		if !more {
			return erased, nil
		}
	}
}

// SubjectKeyOnce is SubjectKey's get-or-create over a driver's table of
// keys. read returns the stored row: found is false when there is none,
// and a nil key on a found row is an erased subject's tombstone. insert
// stores a new key unless a row exists already: when callers race (or the
// subject is erased meanwhile) the first row wins, and is what is returned.
func SubjectKeyOnce(site, asset string, newKey func() []byte,
	read func() (key []byte, found bool, err error), insert func(key []byte) error) ([]byte, error) {
	what := fmt.Sprintf("subject key of asset %q of site %q", asset, site)
	get := func() ([]byte, bool, error) {
		k, found, err := read()
		switch {
		case err != nil:
			return nil, false, fmt.Errorf("%s: %w", what, err)
		case found && k == nil:
			return nil, true, fmt.Errorf("%s: erased: %w", what, ErrNotFound)
		}
		return k, found, nil
	}
	if k, found, err := get(); found || err != nil {
		return k, err
	}
	k := newKey()
	if len(k) == 0 {
		return nil, fmt.Errorf("%s: newKey returned an empty key", what)
	}
	if err := insert(k); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	k, found, err := get()
	if err == nil && !found {
		err = fmt.Errorf("%s: created but not found", what)
	}
	return k, err
}
