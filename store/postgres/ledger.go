package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/gridlink/gridlink/store"
)

// LedgerLockClass is the first half of the advisory lock that makes the
// ledger's writers take turns across every node sharing a schema:
// pg_advisory_xact_lock(LedgerLockClass, hashtext(<schema>)). It spells
// "gldg". Tools that must keep the ledger still (a backup) can take it too.
const LedgerLockClass int32 = 0x676c6467

// hashGroup is how many stored hashes one ledger_hashes row holds (see
// migrations/0003_ledger.sql).
const hashGroup = 32

// copyMin is the smallest append sent with COPY; smaller ones are one
// INSERT, which costs fewer round trips.
const copyMin = 64

// beginLedger takes the store's ledger lock, begins a transaction and
// takes the advisory lock in it. done rolls back (a no-op after commit)
// and releases the store's lock.
func (s *Store) beginLedger(ctx context.Context) (tx pgx.Tx, done func(), err error) {
	if err := s.ledgerLock.Lock(ctx); err != nil {
		return nil, nil, err
	}
	locked := func(err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %w", store.ErrLedgerLocked, context.Cause(ctx))
		}
		return err
	}
	tx, err = s.pool.Begin(ctx)
	if err != nil {
		s.ledgerLock.Unlock()
		return nil, nil, locked(fmt.Errorf("begin: %w", err))
	}
	done = func() {
		tx.Rollback(context.Background()) //nolint:errcheck // after Commit it is a no-op
		s.ledgerLock.Unlock()
	}
	// Its own statement: statements after it take their snapshot once
	// the previous writer has committed.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))`, LedgerLockClass); err != nil {
		done()
		return nil, nil, locked(fmt.Errorf("take the ledger lock: %w", err))
	}
	return tx, done, nil
}

// UpdateLedger implements store.Ledger. fn runs in one transaction that
// holds the advisory lock (LedgerLockClass) from its start.
func (s *Store) UpdateLedger(ctx context.Context, fn func(tx store.LedgerTx) error) error {
	tx, done, err := s.beginLedger(ctx)
	if err != nil {
		return fmt.Errorf("update ledger: %w", err)
	}
	defer done()
	var size int64
	if err := tx.QueryRow(ctx, `SELECT size FROM ledger_state`).Scan(&size); err != nil {
		return fmt.Errorf("update ledger: read size: %w", err)
	}
	ltx := &pgTx{tx: tx, size: size}
	if err := fn(ltx); err != nil {
		return err
	}
	if ltx.failed != nil {
		return fmt.Errorf("update ledger: an append failed: %w", ltx.failed)
	}
	if ltx.size == size {
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE ledger_state SET size = $1`, ltx.size); err != nil {
		return fmt.Errorf("update ledger: write size: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("update ledger: commit: %w", err)
	}
	return nil
}

// pgTx is the store.LedgerTx of one UpdateLedger.
type pgTx struct {
	tx   pgx.Tx
	size int64
	// tail is the content of the last, partly filled ledger_hashes row,
	// once read; it saves reading it back at every Append.
	tail       []byte
	tailLoaded bool
	failed     error // the first failed Append: the transaction cannot commit
}

func (t *pgTx) Size() int64 { return t.size }

func (t *pgTx) ReadHashes(ctx context.Context, indexes []int64) ([][32]byte, error) {
	return readHashes(ctx, t.tx, indexes, tlog.StoredHashCount(t.size))
}

func (t *pgTx) Append(ctx context.Context, entries []store.LedgerEntry, hashes [][32]byte) error {
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

func (t *pgTx) append(ctx context.Context, entries []store.LedgerEntry, hashes [][32]byte) error {
	if err := checkAppend(t.size, entries, hashes); err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	if err := t.loadTail(ctx); err != nil {
		return fmt.Errorf("append to the ledger: %w", err)
	}
	// The hash rows: the last one filled up, then new ones.
	next := tlog.StoredHashCount(t.size)
	grp := next / hashGroup
	var (
		grps []int64
		rows [][]byte
	)
	row := t.tail
	for len(hashes) > 0 {
		n := min(len(hashes), hashGroup-len(row)/32)
		for _, h := range hashes[:n] {
			row = append(row, h[:]...)
		}
		hashes = hashes[n:]
		grps, rows = append(grps, grp), append(rows, row)
		if len(row) == hashGroup*32 {
			grp, row = grp+1, nil
		}
	}
	t.tail = row

	b := &pgx.Batch{}
	if len(entries) < copyMin {
		c := entryColumnsOf(entries)
		b.Queue(`INSERT INTO ledger_entries (idx, kind, site, data, asset, quantity, phase, t, value)
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::float8[])`,
			c.idx, c.kind, c.site, c.data, c.asset, c.quantity, c.phase, c.t, c.value)
	} else {
		_, err := t.tx.CopyFrom(ctx, pgx.Identifier{"ledger_entries"},
			[]string{"idx", "kind", "site", "data", "asset", "quantity", "phase", "t", "value"},
			pgx.CopyFromSlice(len(entries), func(i int) ([]any, error) {
				e := &entries[i]
				return []any{e.Index, e.Kind, e.Site, e.Data, e.Asset, e.Quantity, e.Phase, e.Time, e.Value}, nil
			}))
		if err != nil {
			return fmt.Errorf("append to the ledger: copy entries from %d: %w", entries[0].Index, err)
		}
	}
	b.Queue(`INSERT INTO ledger_hashes (grp, hashes) SELECT * FROM unnest($1::bigint[], $2::bytea[])
		ON CONFLICT (grp) DO UPDATE SET hashes = EXCLUDED.hashes`, grps, rows)
	if err := t.tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("append to the ledger: entries from %d: %w", entries[0].Index, err)
	}
	return nil
}

// loadTail reads the last hash row if it is partly filled.
func (t *pgTx) loadTail(ctx context.Context) error {
	if t.tailLoaded {
		return nil
	}
	next := tlog.StoredHashCount(t.size)
	if next%hashGroup != 0 {
		grp := next / hashGroup
		if err := t.tx.QueryRow(ctx, `SELECT hashes FROM ledger_hashes WHERE grp = $1`, grp).Scan(&t.tail); err != nil {
			return fmt.Errorf("read hash row %d: %w", grp, err)
		}
	}
	if want := int(next%hashGroup) * 32; len(t.tail) != want {
		return fmt.Errorf("hash row %d holds %d bytes, want %d: the stored hashes are damaged", next/hashGroup, len(t.tail), want)
	}
	t.tailLoaded = true
	return nil
}

// entryColumns holds entries column by column, for unnest.
type entryColumns struct {
	idx, t                      []int64
	kind, site, asset, quantity []string
	phase                       []string
	data                        [][]byte
	value                       []float64
}

func entryColumnsOf(entries []store.LedgerEntry) entryColumns {
	var c entryColumns
	for _, e := range entries {
		c.idx, c.t = append(c.idx, e.Index), append(c.t, e.Time)
		c.kind, c.site = append(c.kind, e.Kind), append(c.site, e.Site)
		c.asset, c.quantity, c.phase = append(c.asset, e.Asset), append(c.quantity, e.Quantity), append(c.phase, e.Phase)
		c.data, c.value = append(c.data, e.Data), append(c.value, e.Value)
	}
	return c
}

func (t *pgTx) LastEntry(ctx context.Context, kind string, k store.LedgerKey) (store.LedgerEntry, bool, error) {
	e, err := scanEntry(t.tx.QueryRow(ctx, `SELECT `+entrySelect+` FROM ledger_entries
		WHERE site = $1 AND asset = $2 AND quantity = $3 AND phase = $4 AND t = $5 AND kind = $6
		ORDER BY idx DESC LIMIT 1`, k.Site, k.Asset, k.Quantity, k.Phase, k.Time, kind))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.LedgerEntry{}, false, nil
	}
	if err != nil {
		return store.LedgerEntry{}, false, fmt.Errorf("last ledger entry of %s %+v: %w", kind, k, err)
	}
	return e, true, nil
}

const entrySelect = `idx, kind, site, data, asset, quantity, phase, t, value`

func scanEntry(row pgx.Row) (store.LedgerEntry, error) {
	var (
		e                      store.LedgerEntry
		asset, quantity, phase *string
		value                  *float64
	)
	if err := row.Scan(&e.Index, &e.Kind, &e.Site, &e.Data, &asset, &quantity, &phase, &e.Time, &value); err != nil {
		return e, err
	}
	if asset != nil {
		e.Asset = *asset
	}
	if quantity != nil {
		e.Quantity = *quantity
	}
	if phase != nil {
		e.Phase = *phase
	}
	if value != nil {
		e.Value = *value
	}
	return e, nil
}

// querier is what both a pool and a transaction offer.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// readHashes reads stored hashes, each below limit, in one query.
func readHashes(ctx context.Context, q querier, indexes []int64, limit int64) ([][32]byte, error) {
	seen := make(map[int64][]byte, len(indexes))
	var grps []int64
	for _, x := range indexes {
		if x < 0 || x >= limit {
			return nil, fmt.Errorf("read ledger hashes: index %d outside the %d stored hashes", x, limit)
		}
		if g := x / hashGroup; seen[g] == nil {
			seen[g] = []byte{}
			grps = append(grps, g)
		}
	}
	if len(grps) > 0 {
		rows, err := q.Query(ctx, `SELECT grp, hashes FROM ledger_hashes WHERE grp = ANY($1)`, grps)
		if err != nil {
			return nil, fmt.Errorf("read ledger hashes: %w", err)
		}
		var (
			g int64
			b []byte
		)
		_, err = pgx.ForEachRow(rows, []any{&g, &b}, func() error {
			seen[g] = b
			b = nil // the next row scans into a new slice
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read ledger hashes: %w", err)
		}
	}
	out := make([][32]byte, len(indexes))
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
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT size FROM ledger_state`).Scan(&n); err != nil {
		return 0, fmt.Errorf("ledger size: %w", err)
	}
	return n, nil
}

// LedgerHashes implements store.Ledger.
func (s *Store) LedgerHashes(ctx context.Context, indexes []int64) ([][32]byte, error) {
	// No limit from the size: that would cost a query, and a hash not yet
	// stored is missing from its row anyway.
	return readHashes(ctx, s.pool, indexes, 1<<62)
}

// LedgerEntries implements store.Ledger.
func (s *Store) LedgerEntries(ctx context.Context, from, to int64) ([]store.LedgerEntry, error) {
	if from < 0 || to < from {
		return nil, fmt.Errorf("ledger entries [%d, %d): want 0 <= from <= to", from, to)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+entrySelect+` FROM ledger_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx`, from, to)
	if err != nil {
		return nil, fmt.Errorf("ledger entries [%d, %d): %w", from, to, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.LedgerEntry, error) { return scanEntry(row) })
	if err != nil {
		return nil, fmt.Errorf("ledger entries [%d, %d): %w", from, to, err)
	}
	return out, nil
}

// PutCheckpoint implements store.Ledger.
func (s *Store) PutCheckpoint(ctx context.Context, c store.Checkpoint) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO ledger_checkpoints (size, note, at) VALUES ($1, $2, $3)
		ON CONFLICT (size) DO UPDATE SET note = EXCLUDED.note, at = EXCLUDED.at`, c.Size, c.Note, c.At)
	if err != nil {
		return fmt.Errorf("put checkpoint of size %d: %w", c.Size, err)
	}
	return nil
}

func (s *Store) checkpoint(ctx context.Context, what, query string, args ...any) (store.Checkpoint, error) {
	var c store.Checkpoint
	err := s.pool.QueryRow(ctx, query, args...).Scan(&c.Size, &c.Note, &c.At)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("%s: %w", what, err)
	}
	c.At = c.At.UTC()
	return c, nil
}

// LatestCheckpoint implements store.Ledger.
func (s *Store) LatestCheckpoint(ctx context.Context) (store.Checkpoint, error) {
	return s.checkpoint(ctx, "latest checkpoint", `SELECT size, note, at FROM ledger_checkpoints ORDER BY size DESC LIMIT 1`)
}

// CheckpointAt implements store.Ledger.
func (s *Store) CheckpointAt(ctx context.Context, size int64) (store.Checkpoint, error) {
	return s.checkpoint(ctx, fmt.Sprintf("checkpoint of size %d", size), `SELECT size, note, at FROM ledger_checkpoints WHERE size = $1`, size)
}

// SubjectKey implements store.Ledger.
func (s *Store) SubjectKey(ctx context.Context, site, asset string, newKey func() []byte) ([]byte, error) {
	return store.SubjectKeyOnce(site, asset, newKey,
		func() (key []byte, found bool, err error) {
			err = s.pool.QueryRow(ctx, `SELECT key FROM ledger_subjects WHERE site = $1 AND asset = $2`, site, asset).Scan(&key)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil, false, nil
			}
			return key, err == nil, err
		},
		func(key []byte) error {
			_, err := s.pool.Exec(ctx, `INSERT INTO ledger_subjects (site, asset, key) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, site, asset, key)
			return err
		})
}

// eraseChunk is how many entries one transaction of EraseSubject scans,
// so that appends wait for the advisory lock no longer than a chunk takes.
const eraseChunk = 250_000

// EraseSubject implements store.Ledger. It marks the subject erased first,
// then scans the log a chunk at a time, each chunk in a transaction that
// holds the ledger's advisory lock, so an append in flight cannot bring
// back what it erases. If it fails part way, the subject stays erased and
// calling it again finishes the work. It must not be called from inside
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
		if _, err := tx.Exec(ctx, `INSERT INTO ledger_subjects (site, asset, key) VALUES ($1, $2, NULL)
			ON CONFLICT (site, asset) DO UPDATE SET key = NULL`, site, asset); err != nil {
			return 0, false, fmt.Errorf("delete the key: %w", err)
		}
	}
	tag, err := tx.Exec(ctx, `UPDATE ledger_entries SET data = NULL, asset = NULL, quantity = NULL, phase = NULL, value = NULL
		WHERE idx >= $1 AND idx < $2 AND site = $3 AND asset = $4 AND kind IN ('reading', 'energy')`, from, to, site, asset)
	if err != nil {
		return 0, false, fmt.Errorf("entries from %d: %w", from, err)
	}
	var size int64
	if err := tx.QueryRow(ctx, `SELECT size FROM ledger_state`).Scan(&size); err != nil {
		return 0, false, fmt.Errorf("read size: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, false, fmt.Errorf("commit: %w", err)
	}
	return tag.RowsAffected(), size > to, nil
}

// PutSigner implements store.Ledger.
func (s *Store) PutSigner(ctx context.Context, site, id string, publicKey []byte) error {
	what := fmt.Sprintf("put signer %q of site %q", id, site)
	// The update applies only when the id is the same site's, so a claim by
	// another site changes no row.
	tag, err := s.pool.Exec(ctx, `INSERT INTO ledger_signers (id, site, public_key) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET public_key = EXCLUDED.public_key WHERE ledger_signers.site = EXCLUDED.site`,
		id, site, publicKey)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if tag.RowsAffected() == 0 {
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
	err := s.pool.QueryRow(ctx, `SELECT site, public_key FROM ledger_signers WHERE id = $1`, id).Scan(&site, &key)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil, fmt.Errorf("signer %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return "", nil, fmt.Errorf("signer %q: %w", id, err)
	}
	return site, key, nil
}

// DeleteSigner implements store.Ledger.
func (s *Store) DeleteSigner(ctx context.Context, site, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM ledger_signers WHERE id = $1 AND site = $2`, id, site)
	if err != nil {
		return fmt.Errorf("delete signer %q of site %q: %w", id, site, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("signer %q of site %q: %w", id, site, store.ErrNotFound)
	}
	return nil
}

// Signers implements store.Ledger.
func (s *Store) Signers(ctx context.Context, site string) ([]store.LedgerSigner, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, public_key FROM ledger_signers WHERE site = $1 ORDER BY id COLLATE "C"`, site)
	if err != nil {
		return nil, fmt.Errorf("signers of site %q: %w", site, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.LedgerSigner, error) {
		var sg store.LedgerSigner
		err := row.Scan(&sg.ID, &sg.PublicKey)
		return sg, err
	})
	if err != nil {
		return nil, fmt.Errorf("signers of site %q: %w", site, err)
	}
	if out == nil {
		out = []store.LedgerSigner{}
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
	_, err := s.pool.Exec(ctx, `INSERT INTO ledger_marks (one, upto, data) VALUES (true, $1, $2)
		ON CONFLICT (one) DO UPDATE SET upto = EXCLUDED.upto, data = EXCLUDED.data`, upto, data)
	if err != nil {
		return fmt.Errorf("put ledger marks up to %d: %w", upto, err)
	}
	return nil
}

// LedgerMarks implements store.Ledger.
func (s *Store) LedgerMarks(ctx context.Context) (upto int64, data []byte, found bool, err error) {
	err = s.pool.QueryRow(ctx, `SELECT upto, data FROM ledger_marks`).Scan(&upto, &data)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, nil, false, nil
	case err != nil:
		return 0, nil, false, fmt.Errorf("ledger marks: %w", err)
	}
	return upto, data, true, nil
}

var _ store.Ledger = (*Store)(nil)
