// Package postgres implements the storage contract of package store on
// PostgreSQL, for installations that outgrow the embedded SQLite store or
// run several platform nodes against one database.
//
// Readings live in one table keyed by (series id, time), with a 15-minute
// rollup table kept exact in the same transaction as every write, so that
// aggregates over settlement periods and longer read one row per series and
// period. Concurrent Write calls share transactions (group commit): a single
// committer takes every request waiting when it is free and commits them
// together, so the number of commits, and fsyncs, does not grow with the
// number of writers. A write is acknowledged only after its transaction
// has committed, which with PostgreSQL's default synchronous_commit means it
// is on disk.
//
// The schema is created and migrated by Open from SQL files embedded in the
// binary; the applied versions are recorded in the table schema_version.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gridlink/gridlink/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options configures a Store. The zero value is usable.
type Options struct {
	// Logger receives the store's messages: migrations applied (info),
	// write groups that failed and were retried one request at a time
	// (warn), each group committed (debug). Nil discards them.
	Logger *slog.Logger
	// Schema is the PostgreSQL schema that holds the tables; Open creates
	// it if it does not exist. "" means public. Tests use it to isolate
	// stores in one database.
	Schema string
}

// Store is a store.Store on PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	log  *slog.Logger

	seriesMu sync.Mutex
	seriesID map[store.Series]int32 // cache of the series table

	// closeMu guards closed and sends on queue, so that Close can close
	// the queue once no Write is about to send.
	closeMu sync.RWMutex
	closed  bool
	queue   chan *writeReq
	done    chan struct{} // closed when the committer has finished

	ledgerLock store.WriterLock // one ledger writer of this store at a time (ledger.go)
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at url (a PostgreSQL URL or key=value
// string; pool settings such as pool_max_conns may be given in it), creates
// or migrates the schema and returns the store.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: parse url: %w", err)
	}
	schema := opts.Schema
	if schema == "" {
		schema = "public"
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "gridlink"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := migrate(ctx, pool, schema, log); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	s := &Store{
		pool:     pool,
		log:      log,
		seriesID: make(map[store.Series]int32),
		queue:    make(chan *writeReq, 256),
		done:     make(chan struct{}),
	}
	go s.commitLoop()
	return s, nil
}

// Close waits for the writes already queued to commit, then closes the
// connections. Writes after Close fail. Closing twice is harmless.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.queue)
	s.closeMu.Unlock()
	<-s.done
	s.pool.Close()
	return nil
}

// migrate creates the schema if needed and applies the migrations not yet
// recorded in schema_version, in one transaction under an advisory lock so
// that nodes starting together do not race.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string, log *slog.Logger) error {
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // after Commit it is a no-op
	ident := pgx.Identifier{schema}.Sanitize()
	for _, q := range []string{
		"SELECT pg_advisory_xact_lock(hashtext('gridlink schema ' || $1))",
		"CREATE SCHEMA IF NOT EXISTS " + ident,
		"SET LOCAL search_path TO " + ident,
		`CREATE TABLE IF NOT EXISTS schema_version (
			version    integer PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now())`,
	} {
		args := []any{}
		if strings.Contains(q, "$1") {
			args = append(args, schema)
		}
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return fmt.Errorf("migrate schema %q: %w", schema, err)
		}
	}
	var current int
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_version").Scan(&current); err != nil {
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	for _, f := range files {
		name := path.Base(f)
		v, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name does not start with a version number", name)
		}
		if v <= current {
			continue
		}
		sql, err := migrations.ReadFile(f)
		if err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
		if _, err := tx.Exec(ctx, string(sql)); err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_version (version) VALUES ($1)", v); err != nil {
			return fmt.Errorf("migration %s: record version: %w", name, err)
		}
		log.Info("applied migration", "schema", schema, "migration", name)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}

// pgCode returns the SQLSTATE of a PostgreSQL error, or "".
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
