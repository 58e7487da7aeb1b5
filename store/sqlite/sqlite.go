// Package sqlite is the embedded storage driver: one SQLite file (pure Go,
// WAL mode) in the data directory.
//
// Readings are kept per series in compressed blocks (package store/chunk), one
// block per series per two-hour window, plus 15-minute rollups. A write is
// acknowledged once it is committed to a write-ahead table (one row per group
// commit, so concurrent writers share one fsync); a background flush later
// merges what waits there into the blocks and rollups and empties the table.
// Until then the waiting points live in memory ("the head") and every read
// merges them with the blocks, the head winning on equal timestamps. On open
// the head is rebuilt from the write-ahead table.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/chunk"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"
)

// window is the time span of one block, in ms. Two hours of 1 s readings
// make blocks of a few kilobytes; the window is a multiple of the rollup step.
const window = int64(2 * time.Hour / time.Millisecond)

// rollupMS is store.RollupStep in ms.
const rollupMS = int64(store.RollupStep / time.Millisecond)

// FileName is the database file inside the data directory.
const FileName = "gridlink.db"

// Options tunes the driver. The zero value is the safe default.
type Options struct {
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
	// NoSync skips the fsync at commit (SQLite synchronous=NORMAL): an
	// acknowledged write then survives a crash of the process but not a
	// power cut. Zero: fsync on.
	NoSync bool
	// FlushInterval is the longest time readings wait in the write-ahead
	// table before they are merged into blocks. Zero means one minute.
	FlushInterval time.Duration
	// MaxHeadPoints flushes as soon as this many points wait. Zero means
	// 2,000,000 (about 50 MB of memory).
	MaxHeadPoints int
	// MaxGroupReadings caps how many readings one group commit gathers.
	// Zero means 1,000,000.
	MaxGroupReadings int
	// MetaOnly opens the store for sites, assets and keys only, as a command
	// line tool does while a server owns the readings: nothing about
	// readings is loaded and Write fails with ErrMetaOnly.
	MetaOnly bool
}

func (o *Options) fill() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = time.Minute
	}
	if o.MaxHeadPoints <= 0 {
		o.MaxHeadPoints = 2_000_000
	}
	if o.MaxGroupReadings <= 0 {
		o.MaxGroupReadings = 1_000_000
	}
}

// Store is the SQLite driver. It implements store.Store.
type Store struct {
	db   *sql.DB
	log  *slog.Logger
	opts Options
	path string

	walInsert *sql.Stmt // prepared once: it runs on every group commit

	reqs      chan *writeReq
	closing   chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	// mu guards the series index and every head. The committer goroutine is
	// the only writer; it takes mu only to publish changes.
	mu         sync.RWMutex
	series     map[store.Series]*seriesState
	bySite     map[string][]*seriesState
	headSize   int   // points waiting in heads
	walMax     int64 // highest write-ahead row applied to the heads
	walFlushed int64 // highest write-ahead row merged into blocks

	ledgerLock store.WriterLock // one ledger writer of this process at a time (ledger.go)
}

// seriesState is what the store keeps in memory about one series.
type seriesState struct {
	id   int64
	key  store.Series
	head []cim.Point // sorted, unique times; not yet in blocks
	// headShared says head's array is also a running flush's frozen copy:
	// it must be copied before a point is changed in place.
	headShared bool
	maxT       int64     // newest time stored anywhere; math.MinInt64 if none
	last       cim.Point // the newest point, valid when maxT > math.MinInt64
	// blockMaxT is the newest time in the blocks; math.MinInt64 if none.
	// A write newer than it need not look into the blocks.
	blockMaxT int64

	g *groupSeries // scratch of the group commit in progress (committer only)
}

// Open opens or creates the store in dir.
func Open(ctx context.Context, dir string, opts Options) (*Store, error) {
	opts.fill()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	sync := "FULL"
	if opts.NoSync {
		sync = "NORMAL"
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(" + sync + ")" +
		"&_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)&_pragma=cache_size(-65536)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// Readers run concurrently in WAL mode; keep their connections instead
	// of opening one per query under load.
	db.SetMaxIdleConns(16)
	s := &Store{
		db: db, log: opts.Logger, opts: opts, path: path,
		reqs:    make(chan *writeReq, 1024),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		series:  make(map[store.Series]*seriesState),
		bySite:  make(map[string][]*seriesState),
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if opts.MetaOnly {
		close(s.done)
		return s, nil
	}
	if err := s.load(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if s.walInsert, err = db.PrepareContext(ctx, `INSERT INTO wal(data) VALUES(?)`); err != nil {
		db.Close()
		return nil, fmt.Errorf("prepare: %w", err)
	}
	go s.commitLoop()
	return s, nil
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

const schema = `
CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sites(
	id TEXT PRIMARY KEY, name TEXT NOT NULL, country TEXT NOT NULL, timezone TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS assets(
	site TEXT NOT NULL REFERENCES sites(id), id TEXT NOT NULL, type TEXT NOT NULL,
	name TEXT NOT NULL, make TEXT NOT NULL, model TEXT NOT NULL, household TEXT NOT NULL,
	has_location INTEGER NOT NULL, lat REAL NOT NULL, lon REAL NOT NULL, address TEXT NOT NULL,
	PRIMARY KEY(site, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS keys(
	id TEXT PRIMARY KEY, hash BLOB NOT NULL UNIQUE, site TEXT NOT NULL, scope TEXT NOT NULL,
	name TEXT NOT NULL, created_at INTEGER NOT NULL, revoked_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS series(
	id INTEGER PRIMARY KEY, site TEXT NOT NULL, asset TEXT NOT NULL, quantity TEXT NOT NULL,
	phase TEXT NOT NULL, UNIQUE(site, asset, quantity, phase));
CREATE TABLE IF NOT EXISTS chunks(
	series_id INTEGER NOT NULL, start_t INTEGER NOT NULL, end_t INTEGER NOT NULL,
	n INTEGER NOT NULL, data BLOB NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS chunks_series_start ON chunks(series_id, start_t);
CREATE TABLE IF NOT EXISTS rollups(
	series_id INTEGER NOT NULL, bucket INTEGER NOT NULL, n INTEGER NOT NULL,
	sum REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL,
	first_t INTEGER NOT NULL, first_v REAL NOT NULL, last_t INTEGER NOT NULL, last_v REAL NOT NULL,
	PRIMARY KEY(series_id, bucket)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS wal(id INTEGER PRIMARY KEY, data BLOB NOT NULL);
`

// migrations[v] takes a database from schema version v to v+1. A new
// database gets schema (version 1) and then every migration, so old and new
// databases end up with the same tables.
var migrations = map[int]string{
	1: chargingSchema,
	2: ledgerSchema,
	3: itcSchema,
	4: rollupIncSchema,
	5: chargePointAssetSchema,
	6: itcSummarySchema,
	7: ledgerMarksSchema,
}

// migrationSteps[v] runs after migrations[v], in the same transaction, for
// what SQL alone cannot do.
var migrationSteps = map[int]func(context.Context, *sql.Tx) error{
	4: rebuildRollups,
}

// schemaVersion is the version this code writes: one more than the last
// migration.
const schemaVersion = 8

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	// One immediate transaction (see _txlock in Open), so that two
	// processes opening the same file do not both migrate.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	var v int
	err = tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		v = 1
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version(version) VALUES(1)`); err != nil {
			return fmt.Errorf("write schema version: %w", err)
		}
	case err != nil:
		return fmt.Errorf("read schema version: %w", err)
	case v > schemaVersion:
		return fmt.Errorf("database %s has schema version %d, this gridlink knows %d", s.path, v, schemaVersion)
	}
	if v == schemaVersion {
		return tx.Commit()
	}
	for ; v < schemaVersion; v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("migrate schema version %d to %d: %w", v, v+1, err)
		}
		if step := migrationSteps[v]; step != nil {
			if err := step(ctx, tx); err != nil {
				return fmt.Errorf("migrate schema version %d to %d: %w", v, v+1, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, v); err != nil {
		return fmt.Errorf("write schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	s.log.Info("migrated database", "path", s.path, "schema_version", v)
	return nil
}

// load rebuilds the in-memory index: series, their newest points, and the
// head from the write-ahead table.
func (s *Store) load(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT id, site, asset, quantity, phase FROM series`)
	if err != nil {
		return fmt.Errorf("load series: %w", err)
	}
	byID := map[int64]*seriesState{}
	for rows.Next() {
		st := &seriesState{maxT: math.MinInt64, blockMaxT: math.MinInt64}
		var phase string
		if err := rows.Scan(&st.id, &st.key.Site, &st.key.Asset, &st.key.Quantity, &phase); err != nil {
			rows.Close()
			return fmt.Errorf("load series: %w", err)
		}
		st.key.Phase = cim.Phase(phase)
		s.addSeries(st)
		byID[st.id] = st
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load series: %w", err)
	}
	rows, err = s.db.QueryContext(ctx, `SELECT c.series_id, c.data FROM chunks c
		JOIN (SELECT series_id, max(start_t) AS m FROM chunks GROUP BY series_id) x
		ON c.series_id = x.series_id AND c.start_t = x.m`)
	if err != nil {
		return fmt.Errorf("load newest blocks: %w", err)
	}
	var buf []cim.Point
	for rows.Next() {
		var id int64
		var data []byte
		if err := rows.Scan(&id, &data); err != nil {
			rows.Close()
			return fmt.Errorf("load newest blocks: %w", err)
		}
		if buf, err = chunk.Decode(buf[:0], data); err != nil {
			rows.Close()
			return fmt.Errorf("series %d: newest block: %w", id, err)
		}
		if st := byID[id]; st != nil && len(buf) > 0 {
			st.last = buf[len(buf)-1]
			st.maxT, st.blockMaxT = st.last.Time, st.last.Time
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load newest blocks: %w", err)
	}
	return s.replay(ctx, byID)
}

func (s *Store) addSeries(st *seriesState) {
	s.series[st.key] = st
	s.bySite[st.key.Site] = append(s.bySite[st.key.Site], st)
}

// Close stops the committer, flushes the head into blocks and closes the
// database.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		<-s.done
		if !s.opts.MetaOnly {
			s.closeErr = s.flush(context.Background())
			s.walInsert.Close()
		}
		if err := s.db.Close(); err != nil && s.closeErr == nil {
			s.closeErr = err
		}
	})
	return s.closeErr
}

var _ store.Store = (*Store)(nil)
