package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/gridlink/gridlink/store"
)

// ledgerSchema is migration 2 → 3: the energy ledger, and the ledger mark
// of assets.
//
// The Merkle tree's stored hashes (tlog storage indexes) are kept
// hashGroup to a row: row g holds the hashes g·hashGroup, g·hashGroup+1, …
// concatenated, the last row growing as the log does. A row per hash
// costs a B-tree insert per hash, which at two hashes an entry was most of
// the cost of an append; a group of 64 (2 KiB) still fits in one page, so
// a proof reads one page per hash.
//
// ledger_entries_key serves LastEntry (equality on every column). It leads
// with the time, not the site and asset, so that appends, which come
// roughly in time order, land at the right edge of the index: keyed by
// asset first, a group of 1,000 readings of 500 assets dirtied a page per
// asset, and commits took four times longer (BenchmarkLedgerAppend: 40,000
// → 100,000 entries/s). EraseSubject, rare, scans the table instead.
//
// Entries whose readable part was erased have NULL data, asset, quantity,
// phase and value. ledger_subjects keeps
// a row with a NULL key for an erased subject, so that no new key is ever
// made for it. Times: t is UTC Unix ms, at Unix ns.
const ledgerSchema = `
ALTER TABLE assets ADD COLUMN ledger INTEGER NOT NULL DEFAULT 0;
CREATE TABLE IF NOT EXISTS ledger_entries(
	idx INTEGER PRIMARY KEY, kind TEXT NOT NULL, site TEXT NOT NULL, data BLOB,
	asset TEXT, quantity TEXT, phase TEXT, t INTEGER NOT NULL, value REAL);
CREATE INDEX IF NOT EXISTS ledger_entries_key ON ledger_entries(t, site, asset, quantity, phase, idx);
CREATE TABLE IF NOT EXISTS ledger_hashes(grp INTEGER PRIMARY KEY, hashes BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_checkpoints(size INTEGER PRIMARY KEY, note BLOB NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_subjects(
	site TEXT NOT NULL, asset TEXT NOT NULL, key BLOB, PRIMARY KEY(site, asset)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_signers(
	id TEXT PRIMARY KEY, site TEXT NOT NULL, public_key BLOB NOT NULL) WITHOUT ROWID;
`

// ledgerMarksSchema is migration 7 → 8: the ledger.Log's reading marks,
// saved when it closes (store.Ledger.PutLedgerMarks), in a table of at
// most one row.
const ledgerMarksSchema = `
CREATE TABLE IF NOT EXISTS ledger_marks(
	one INTEGER PRIMARY KEY CHECK(one = 1), upto INTEGER NOT NULL CHECK(upto >= 0), data BLOB NOT NULL);
`

// hashGroup is how many stored hashes one ledger_hashes row holds.
const hashGroup = 64

// beginLedger takes the process's ledger lock, then SQLite's write lock
// (BEGIN IMMEDIATE, see _txlock in Open). done releases both.
func (s *Store) beginLedger(ctx context.Context) (tx *sql.Tx, done func(), err error) {
	if err := s.ledgerLock.Lock(ctx); err != nil {
		return nil, nil, err
	}
	tx, err = s.db.BeginTx(ctx, nil)
	if err != nil {
		s.ledgerLock.Unlock()
		if ctx.Err() != nil {
			// Another process held the database's write lock.
			return nil, nil, fmt.Errorf("%w: %w", store.ErrLedgerLocked, context.Cause(ctx))
		}
		return nil, nil, fmt.Errorf("begin: %w", err)
	}
	return tx, func() {
		tx.Rollback() //nolint:errcheck // after Commit it is a no-op
		s.ledgerLock.Unlock()
	}, nil
}

// UpdateLedger implements store.Ledger. fn runs in one write transaction.
func (s *Store) UpdateLedger(ctx context.Context, fn func(tx store.LedgerTx) error) error {
	tx, done, err := s.beginLedger(ctx)
	if err != nil {
		return fmt.Errorf("update ledger: %w", err)
	}
	defer done()
	size, err := ledgerSize(ctx, tx)
	if err != nil {
		return fmt.Errorf("update ledger: %w", err)
	}
	ltx := &sqliteTx{tx: tx, size: size}
	if err := fn(ltx); err != nil {
		return err
	}
	if ltx.failed != nil {
		return fmt.Errorf("update ledger: an append failed: %w", ltx.failed)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("update ledger: commit: %w", err)
	}
	return nil
}

type ledgerQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func ledgerSize(ctx context.Context, q ledgerQuerier) (int64, error) {
	var n int64
	if err := q.QueryRowContext(ctx, `SELECT coalesce(max(idx) + 1, 0) FROM ledger_entries`).Scan(&n); err != nil {
		return 0, fmt.Errorf("ledger size: %w", err)
	}
	return n, nil
}

// sqliteTx is the store.LedgerTx of one UpdateLedger.
type sqliteTx struct {
	tx   *sql.Tx
	size int64
	// tail is the content of the last, partly filled ledger_hashes row,
	// once read; it saves reading it back at every Append.
	tail       []byte
	tailLoaded bool
	failed     error // the first failed Append: the transaction cannot commit
}

func (t *sqliteTx) Size() int64 { return t.size }

func (t *sqliteTx) ReadHashes(ctx context.Context, indexes []int64) ([][32]byte, error) {
	return readHashes(ctx, t.tx, indexes, tlog.StoredHashCount(t.size))
}

func (t *sqliteTx) Append(ctx context.Context, entries []store.LedgerEntry, hashes [][32]byte) error {
	if t.failed != nil {
		return fmt.Errorf("append to the ledger: an earlier append failed: %w", t.failed)
	}
	if err := t.append(ctx, entries, hashes); err != nil {
		t.failed = err
		return err
	}
	t.size += int64(len(entries))
	return nil
}

func (t *sqliteTx) append(ctx context.Context, entries []store.LedgerEntry, hashes [][32]byte) error {
	if err := checkAppend(t.size, entries, hashes); err != nil {
		return err
	}
	if err := insertEntries(ctx, t.tx, entries); err != nil {
		return fmt.Errorf("append to the ledger: %w", err)
	}
	if err := t.appendHashes(ctx, hashes); err != nil {
		return fmt.Errorf("append to the ledger: %w", err)
	}
	return nil
}

// insertEntries writes entries entryRows to a statement: a row per
// statement cost half again as much (the statement overhead of
// database/sql and the driver).
func insertEntries(ctx context.Context, tx *sql.Tx, entries []store.LedgerEntry) error {
	var full *sql.Stmt
	defer func() {
		if full != nil {
			full.Close()
		}
	}()
	args := make([]any, 0, 9*entryRows)
	for len(entries) > 0 {
		n := min(len(entries), entryRows)
		args = args[:0]
		for _, e := range entries[:n] {
			args = append(args, e.Index, e.Kind, e.Site, e.Data, e.Asset, e.Quantity, e.Phase, e.Time, e.Value)
		}
		var err error
		if n == entryRows {
			if full == nil {
				if full, err = tx.PrepareContext(ctx, insertEntriesSQL(entryRows)); err != nil {
					return fmt.Errorf("insert entries: %w", err)
				}
			}
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, insertEntriesSQL(n), args...)
		}
		if err != nil {
			return fmt.Errorf("insert entries from %d: %w", entries[0].Index, err)
		}
		entries = entries[n:]
	}
	return nil
}

// entryRows is how many entries one INSERT writes, well within SQLite's
// limit of bound parameters and small enough that the statement journal
// stays in memory.
const entryRows = 100

func insertEntriesSQL(rows int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO ledger_entries(idx, kind, site, data, asset, quantity, phase, t, value) VALUES `)
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`(?,?,?,?,?,?,?,?,?)`)
	}
	return b.String()
}

// appendHashes stores hashes from storage index tlog.StoredHashCount(size):
// first filling the last row, then in new rows.
func (t *sqliteTx) appendHashes(ctx context.Context, hashes [][32]byte) error {
	if len(hashes) == 0 {
		return nil
	}
	next := tlog.StoredHashCount(t.size)
	grp := next / hashGroup
	if !t.tailLoaded {
		if next%hashGroup != 0 {
			err := t.tx.QueryRowContext(ctx, `SELECT hashes FROM ledger_hashes WHERE grp = ?`, grp).Scan(&t.tail)
			if err != nil {
				return fmt.Errorf("read hash row %d: %w", grp, err)
			}
		}
		t.tailLoaded = true
	}
	if want := int(next%hashGroup) * 32; len(t.tail) != want {
		return fmt.Errorf("hash row %d holds %d bytes, want %d: the stored hashes are damaged", grp, len(t.tail), want)
	}
	row := t.tail
	for len(hashes) > 0 {
		n := min(len(hashes), hashGroup-len(row)/32)
		for _, h := range hashes[:n] {
			row = append(row, h[:]...)
		}
		hashes = hashes[n:]
		if _, err := t.tx.ExecContext(ctx, `INSERT OR REPLACE INTO ledger_hashes(grp, hashes) VALUES(?, ?)`, grp, row); err != nil {
			return fmt.Errorf("write hash row %d: %w", grp, err)
		}
		if len(row) == hashGroup*32 {
			grp, row = grp+1, nil
		}
	}
	t.tail = row
	return nil
}

func (t *sqliteTx) LastEntry(ctx context.Context, kind string, k store.LedgerKey) (store.LedgerEntry, bool, error) {
	e, err := scanEntry(t.tx.QueryRowContext(ctx, `SELECT `+entryColumns+` FROM ledger_entries
		WHERE site = ? AND asset = ? AND quantity = ? AND phase = ? AND t = ? AND kind = ?
		ORDER BY idx DESC LIMIT 1`, k.Site, k.Asset, k.Quantity, k.Phase, k.Time, kind))
	if errors.Is(err, sql.ErrNoRows) {
		return store.LedgerEntry{}, false, nil
	}
	if err != nil {
		return store.LedgerEntry{}, false, fmt.Errorf("last ledger entry of %s %+v: %w", kind, k, err)
	}
	return e, true, nil
}

const entryColumns = `idx, kind, site, data, asset, quantity, phase, t, value`

func scanEntry(sc interface{ Scan(...any) error }) (store.LedgerEntry, error) {
	var (
		e                      store.LedgerEntry
		asset, quantity, phase sql.NullString
		value                  sql.NullFloat64
	)
	if err := sc.Scan(&e.Index, &e.Kind, &e.Site, &e.Data, &asset, &quantity, &phase, &e.Time, &value); err != nil {
		return e, err
	}
	e.Asset, e.Quantity, e.Phase, e.Value = asset.String, quantity.String, phase.String, value.Float64
	return e, nil
}

// readHashes reads stored hashes, each below limit, with one query per
// 500 rows.
func readHashes(ctx context.Context, q ledgerQuerier, indexes []int64, limit int64) ([][32]byte, error) {
	out := make([][32]byte, len(indexes))
	var grps []any
	seen := make(map[int64][]byte, len(indexes))
	for _, x := range indexes {
		if x < 0 || x >= limit {
			return nil, fmt.Errorf("read ledger hashes: index %d outside the %d stored hashes", x, limit)
		}
		if g := x / hashGroup; seen[g] == nil {
			seen[g] = []byte{}
			grps = append(grps, g)
		}
	}
	for len(grps) > 0 {
		n := min(len(grps), 500)
		rows, err := q.QueryContext(ctx, `SELECT grp, hashes FROM ledger_hashes WHERE grp IN (?`+strings.Repeat(",?", n-1)+`)`, grps[:n]...)
		if err != nil {
			return nil, fmt.Errorf("read ledger hashes: %w", err)
		}
		for rows.Next() {
			var g int64
			var b []byte
			if err := rows.Scan(&g, &b); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read ledger hashes: %w", err)
			}
			seen[g] = b
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read ledger hashes: %w", err)
		}
		grps = grps[n:]
	}
	for i, x := range indexes {
		b, off := seen[x/hashGroup], int(x%hashGroup)*32
		if off+32 > len(b) {
			return nil, fmt.Errorf("read ledger hashes: index %d is not stored", x)
		}
		out[i] = [32]byte(b[off : off+32])
	}
	return out, nil
}

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

// LedgerSize implements store.Ledger.
func (s *Store) LedgerSize(ctx context.Context) (int64, error) {
	return ledgerSize(ctx, s.db)
}

// LedgerHashes implements store.Ledger.
func (s *Store) LedgerHashes(ctx context.Context, indexes []int64) ([][32]byte, error) {
	// No limit from the size: that would cost a query, and a hash not yet
	// stored is missing from its row anyway.
	return readHashes(ctx, s.db, indexes, 1<<62)
}

// LedgerEntries implements store.Ledger.
func (s *Store) LedgerEntries(ctx context.Context, from, to int64) ([]store.LedgerEntry, error) {
	if from < 0 || to < from {
		return nil, fmt.Errorf("ledger entries [%d, %d): want 0 <= from <= to", from, to)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+entryColumns+` FROM ledger_entries WHERE idx >= ? AND idx < ? ORDER BY idx`, from, to)
	if err != nil {
		return nil, fmt.Errorf("ledger entries [%d, %d): %w", from, to, err)
	}
	defer rows.Close()
	var out []store.LedgerEntry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, fmt.Errorf("ledger entries [%d, %d): %w", from, to, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger entries [%d, %d): %w", from, to, err)
	}
	return out, nil
}

// PutCheckpoint implements store.Ledger.
func (s *Store) PutCheckpoint(ctx context.Context, c store.Checkpoint) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO ledger_checkpoints(size, note, at) VALUES(?, ?, ?)
		ON CONFLICT(size) DO UPDATE SET note = excluded.note, at = excluded.at`, c.Size, c.Note, unixNano(c.At))
	if err != nil {
		return fmt.Errorf("put checkpoint of size %d: %w", c.Size, err)
	}
	return nil
}

func (s *Store) checkpoint(ctx context.Context, what, query string, args ...any) (store.Checkpoint, error) {
	var (
		c  store.Checkpoint
		at int64
	)
	err := s.db.QueryRowContext(ctx, query, args...).Scan(&c.Size, &c.Note, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("%s: %w", what, err)
	}
	c.At = fromUnixNano(at)
	return c, nil
}

// LatestCheckpoint implements store.Ledger.
func (s *Store) LatestCheckpoint(ctx context.Context) (store.Checkpoint, error) {
	return s.checkpoint(ctx, "latest checkpoint", `SELECT size, note, at FROM ledger_checkpoints ORDER BY size DESC LIMIT 1`)
}

// CheckpointAt implements store.Ledger.
func (s *Store) CheckpointAt(ctx context.Context, size int64) (store.Checkpoint, error) {
	return s.checkpoint(ctx, fmt.Sprintf("checkpoint of size %d", size), `SELECT size, note, at FROM ledger_checkpoints WHERE size = ?`, size)
}

// SubjectKey implements store.Ledger.
func (s *Store) SubjectKey(ctx context.Context, site, asset string, newKey func() []byte) ([]byte, error) {
	return store.SubjectKeyOnce(site, asset, newKey,
		func() (key []byte, found bool, err error) {
			err = s.db.QueryRowContext(ctx, `SELECT key FROM ledger_subjects WHERE site = ? AND asset = ?`, site, asset).Scan(&key)
			if errors.Is(err, sql.ErrNoRows) {
				return nil, false, nil
			}
			return key, err == nil, err
		},
		func(key []byte) error {
			_, err := s.db.ExecContext(ctx, `INSERT INTO ledger_subjects(site, asset, key) VALUES(?, ?, ?) ON CONFLICT DO NOTHING`, site, asset, key)
			return err
		})
}

// eraseChunk is how many entries one transaction of EraseSubject scans:
// about 0.2 s with the write lock held, so appends and readings wait no
// longer than that.
const eraseChunk = 250_000

// EraseSubject implements store.Ledger. It marks the subject erased first,
// then scans the log a chunk at a time, each chunk in a transaction that
// holds the ledger, so an append in flight cannot bring back what it
// erases. If it fails part way, the subject stays erased and calling it
// again finishes the work. It must not be called from inside
// UpdateLedger's fn.
func (s *Store) EraseSubject(ctx context.Context, site, asset string) (int64, error) {
	return s.eraseSubject(ctx, site, asset, eraseChunk)
}

// eraseSubject is EraseSubject with chunks of a given size.
func (s *Store) eraseSubject(ctx context.Context, site, asset string, chunk int64) (int64, error) {
	return store.EraseInChunks(ctx, site, asset, chunk, func(ctx context.Context, from, to int64, first bool) (int64, bool, error) {
		return s.eraseChunk(ctx, site, asset, from, to, first)
	})
}

// eraseChunk erases the subject's entries in [from, to) and, with first,
// its key; more says whether the log goes on past the chunk.
func (s *Store) eraseChunk(ctx context.Context, site, asset string, from, to int64, first bool) (n int64, more bool, err error) {
	tx, done, err := s.beginLedger(ctx)
	if err != nil {
		return 0, false, err
	}
	defer done()
	if first {
		if _, err := tx.ExecContext(ctx, `INSERT INTO ledger_subjects(site, asset, key) VALUES(?, ?, NULL)
			ON CONFLICT(site, asset) DO UPDATE SET key = NULL`, site, asset); err != nil {
			return 0, false, fmt.Errorf("delete the key: %w", err)
		}
	}
	res, err := tx.ExecContext(ctx, `UPDATE ledger_entries SET data = NULL, asset = NULL, quantity = NULL, phase = NULL, value = NULL
		WHERE idx >= ? AND idx < ? AND site = ? AND asset = ? AND kind IN ('reading', 'energy')`, from, to, site, asset)
	if err != nil {
		return 0, false, fmt.Errorf("entries from %d: %w", from, err)
	}
	if n, err = res.RowsAffected(); err != nil {
		return 0, false, fmt.Errorf("entries from %d: %w", from, err)
	}
	size, err := ledgerSize(ctx, tx)
	if err != nil {
		return 0, false, err
	}
	if err := tx.Commit(); err != nil {
		return 0, false, fmt.Errorf("commit: %w", err)
	}
	return n, size > to, nil
}

// PutSigner implements store.Ledger.
func (s *Store) PutSigner(ctx context.Context, site, id string, publicKey []byte) error {
	what := fmt.Sprintf("put signer %q of site %q", id, site)
	// The update applies only when the id is the same site's, so a claim by
	// another site changes no row.
	res, err := s.db.ExecContext(ctx, `INSERT INTO ledger_signers(id, site, public_key) VALUES(?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET public_key = excluded.public_key WHERE site = excluded.site`, id, site, publicKey)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	} else if n == 0 {
		return fmt.Errorf("%s: the id belongs to another site: %w", what, store.ErrConflict)
	}
	return nil
}

// Signer implements store.Ledger.
func (s *Store) Signer(ctx context.Context, id string) (string, []byte, error) {
	var (
		site string
		key  []byte
	)
	err := s.db.QueryRowContext(ctx, `SELECT site, public_key FROM ledger_signers WHERE id = ?`, id).Scan(&site, &key)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, fmt.Errorf("signer %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return "", nil, fmt.Errorf("signer %q: %w", id, err)
	}
	return site, key, nil
}

// DeleteSigner implements store.Ledger.
func (s *Store) DeleteSigner(ctx context.Context, site, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM ledger_signers WHERE id = ? AND site = ?`, id, site)
	if err != nil {
		return fmt.Errorf("delete signer %q of site %q: %w", id, site, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete signer %q of site %q: %w", id, site, err)
	} else if n == 0 {
		return fmt.Errorf("signer %q of site %q: %w", id, site, store.ErrNotFound)
	}
	return nil
}

// Signers implements store.Ledger.
func (s *Store) Signers(ctx context.Context, site string) ([]store.LedgerSigner, error) {
	// SQLite's default BINARY collation orders ids byte-wise.
	rows, err := s.db.QueryContext(ctx, `SELECT id, public_key FROM ledger_signers WHERE site = ? ORDER BY id`, site)
	if err != nil {
		return nil, fmt.Errorf("signers of site %q: %w", site, err)
	}
	defer rows.Close()
	out := []store.LedgerSigner{}
	for rows.Next() {
		var sg store.LedgerSigner
		if err := rows.Scan(&sg.ID, &sg.PublicKey); err != nil {
			return nil, fmt.Errorf("signers of site %q: %w", site, err)
		}
		out = append(out, sg)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("signers of site %q: %w", site, err)
	}
	return out, nil
}

// PutLedgerMarks implements store.Ledger.
func (s *Store) PutLedgerMarks(ctx context.Context, upto int64, data []byte) error {
	if err := store.CheckLedgerMarks(upto); err != nil {
		return err
	}
	if data == nil {
		data = []byte{} // NOT NULL
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO ledger_marks(one, upto, data) VALUES(1, ?, ?)
		ON CONFLICT(one) DO UPDATE SET upto = excluded.upto, data = excluded.data`, upto, data)
	if err != nil {
		return fmt.Errorf("put ledger marks up to %d: %w", upto, err)
	}
	return nil
}

// LedgerMarks implements store.Ledger.
func (s *Store) LedgerMarks(ctx context.Context) (upto int64, data []byte, found bool, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT upto, data FROM ledger_marks WHERE one = 1`).Scan(&upto, &data)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil, false, nil
	case err != nil:
		return 0, nil, false, fmt.Errorf("ledger marks: %w", err)
	}
	return upto, data, true, nil
}

var _ store.Ledger = (*Store)(nil)
