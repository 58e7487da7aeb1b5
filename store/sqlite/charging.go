package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gridlink/gridlink/store"
)

// chargingSchema is migration 1 → 2: charging sessions, charge point
// credentials and RFID tags. Times are UTC Unix milliseconds, NULL when
// unset.
const chargingSchema = `
CREATE TABLE IF NOT EXISTS sessions(
	site TEXT NOT NULL REFERENCES sites(id), charge_point TEXT NOT NULL, transaction_id INTEGER NOT NULL,
	connector INTEGER NOT NULL, id_tag TEXT NOT NULL, start_ms INTEGER, stop_ms INTEGER,
	meter_start_wh REAL NOT NULL, meter_stop_wh REAL NOT NULL, stop_reason TEXT NOT NULL,
	updated_ms INTEGER NOT NULL,
	order_ms INTEGER NOT NULL, -- start_ms, or stop_ms while the start is unknown
	PRIMARY KEY(site, charge_point, transaction_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_site_order ON sessions(site, order_ms);
CREATE TABLE IF NOT EXISTS charge_point_secrets(
	charge_point TEXT PRIMARY KEY, site TEXT NOT NULL REFERENCES sites(id),
	sha256 BLOB NOT NULL CHECK(length(sha256) = 32)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS id_tags(
	site TEXT NOT NULL REFERENCES sites(id),
	tag_key TEXT NOT NULL, -- store.IDTagKey(tag): tags compare case-insensitively
	tag TEXT NOT NULL, expires_ms INTEGER,
	PRIMARY KEY(site, tag_key)) WITHOUT ROWID;
`

// chargePointAssetSchema is migration 5 → 6: the asset a charge point's
// readings are filed under, beside its secret; rows of older databases get
// their charge point id, which was the asset until then. SQLite cannot add
// a NOT NULL column without a default, so the table is rebuilt. Unlike an
// ADD COLUMN, the rebuild also runs on a table that has the column already
// (tests rewind the schema version and migrate again).
const chargePointAssetSchema = `
CREATE TABLE charge_point_secrets_6(
	charge_point TEXT PRIMARY KEY, site TEXT NOT NULL REFERENCES sites(id),
	asset TEXT NOT NULL, -- an asset id of the site
	sha256 BLOB NOT NULL CHECK(length(sha256) = 32)) WITHOUT ROWID;
INSERT INTO charge_point_secrets_6(charge_point, site, asset, sha256)
	SELECT charge_point, site, charge_point, sha256 FROM charge_point_secrets;
DROP TABLE charge_point_secrets;
ALTER TABLE charge_point_secrets_6 RENAME TO charge_point_secrets;
`

func nullMS(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

func fromNullMS(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.UnixMilli(n.Int64).UTC()
}

// siteExists checks, inside a transaction, that the site exists, so that a
// missing site is ErrNotFound rather than a foreign key failure.
func siteExists(ctx context.Context, tx *sql.Tx, site string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM sites WHERE id = ?`, site).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("site %q: %w", site, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("look up site %q: %w", site, err)
	}
	return nil
}

const sessionColumns = `site, charge_point, transaction_id, connector, id_tag, start_ms, stop_ms,
	meter_start_wh, meter_stop_wh, stop_reason, updated_ms`

func scanSession(sc interface{ Scan(...any) error }) (store.Session, error) {
	var (
		s                    store.Session
		start, stop, updated sql.NullInt64
	)
	if err := sc.Scan(&s.Site, &s.ChargePoint, &s.TransactionID, &s.Connector, &s.IDTag, &start, &stop,
		&s.MeterStartWh, &s.MeterStopWh, &s.StopReason, &updated); err != nil {
		return s, err
	}
	s.Start, s.Stop, s.Updated = fromNullMS(start), fromNullMS(stop), fromNullMS(updated)
	return s, nil
}

// PutSession implements store.Sessions. The read, merge and write run in one
// immediate transaction, which holds SQLite's write lock throughout, so
// concurrent puts of one session merge one after the other.
func (s *Store) PutSession(ctx context.Context, sess store.Session) error {
	put, err := store.PrepareSession(sess, time.Now())
	if err != nil {
		return fmt.Errorf("put session: %w", err)
	}
	what := fmt.Sprintf("put session %d of charge point %q of site %q", put.TransactionID, put.ChargePoint, put.Site)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if err := siteExists(ctx, tx, put.Site); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	stored, err := scanSession(tx.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE site = ? AND charge_point = ? AND transaction_id = ?`, put.Site, put.ChargePoint, put.TransactionID))
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("%s: read: %w", what, err)
	default:
		if put, err = store.MergeSession(stored, put); err != nil {
			return fmt.Errorf("put session: %w", err)
		}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO sessions(`+sessionColumns+`, order_ms) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(site, charge_point, transaction_id) DO UPDATE SET connector = excluded.connector,
			id_tag = excluded.id_tag, start_ms = excluded.start_ms, stop_ms = excluded.stop_ms,
			meter_start_wh = excluded.meter_start_wh, meter_stop_wh = excluded.meter_stop_wh,
			stop_reason = excluded.stop_reason, updated_ms = excluded.updated_ms, order_ms = excluded.order_ms`,
		put.Site, put.ChargePoint, put.TransactionID, put.Connector, put.IDTag, nullMS(put.Start), nullMS(put.Stop),
		put.MeterStartWh, put.MeterStopWh, put.StopReason, put.Updated.UnixMilli(), put.OrderTime().UnixMilli())
	if err != nil {
		return fmt.Errorf("%s: write: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	return nil
}

// GetSession implements store.Sessions.
func (s *Store) GetSession(ctx context.Context, site, chargePoint string, tx int64) (store.Session, error) {
	sess, err := scanSession(s.db.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE site = ? AND charge_point = ? AND transaction_id = ?`, site, chargePoint, tx))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Session{}, fmt.Errorf("session %d of charge point %q of site %q: %w", tx, chargePoint, site, store.ErrNotFound)
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("get session %d of charge point %q of site %q: %w", tx, chargePoint, site, err)
	}
	return sess, nil
}

// ListSessions implements store.Sessions. The filter is store.SessionFilter.Match
// in SQL; text compares byte-wise (SQLite's BINARY collation).
func (s *Store) ListSessions(ctx context.Context, f store.SessionFilter) ([]store.Session, error) {
	f, err := f.Prepare()
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	limit := int64(-1) // no limit
	if f.Limit > 0 {
		limit = int64(f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE site = ?1 AND (?2 = '' OR charge_point = ?2)
			AND (?3 IS NULL OR order_ms < ?3)
			AND (?4 IS NULL OR order_ms >= ?4 OR (stop_ms IS NULL AND start_ms IS NOT NULL) OR stop_ms > ?4)
		ORDER BY order_ms, charge_point, transaction_id LIMIT ?5`,
		f.Site, f.ChargePoint, nullMS(f.To), nullMS(f.From), limit)
	if err != nil {
		return nil, fmt.Errorf("list sessions of site %q: %w", f.Site, err)
	}
	defer rows.Close()
	var out []store.Session
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("list sessions of site %q: %w", f.Site, err)
		}
		out = append(out, sess)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sessions of site %q: %w", f.Site, err)
	}
	return out, nil
}

// PutChargePointSecret implements store.ChargePoints.
func (s *Store) PutChargePointSecret(ctx context.Context, site, chargePoint, asset string, hash [32]byte) error {
	asset, err := store.PrepareChargePoint(chargePoint, asset)
	if err != nil {
		return fmt.Errorf("put charge point secret: %w", err)
	}
	what := fmt.Sprintf("put secret of charge point %q of site %q", chargePoint, site)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if err := siteExists(ctx, tx, site); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	// The update applies only when the id is the same site's, so a claim by
	// another site changes no row.
	res, err := tx.ExecContext(ctx, `INSERT INTO charge_point_secrets(charge_point, site, asset, sha256) VALUES(?, ?, ?, ?)
		ON CONFLICT(charge_point) DO UPDATE SET asset = excluded.asset, sha256 = excluded.sha256 WHERE site = excluded.site`,
		chargePoint, site, asset, hash[:])
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	} else if n == 0 {
		return fmt.Errorf("%s: the id belongs to another site: %w", what, store.ErrConflict)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	return nil
}

// ChargePointSecret implements store.ChargePoints.
func (s *Store) ChargePointSecret(ctx context.Context, chargePoint string) (string, string, [32]byte, error) {
	var (
		site, asset string
		h           []byte
		hash        [32]byte
	)
	err := s.db.QueryRowContext(ctx, `SELECT site, asset, sha256 FROM charge_point_secrets WHERE charge_point = ?`, chargePoint).Scan(&site, &asset, &h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", hash, fmt.Errorf("charge point %q: %w", chargePoint, store.ErrNotFound)
	}
	if err != nil {
		return "", "", hash, fmt.Errorf("look up charge point %q: %w", chargePoint, err)
	}
	if len(h) != len(hash) {
		return "", "", hash, fmt.Errorf("charge point %q: stored hash has %d bytes, want %d", chargePoint, len(h), len(hash))
	}
	copy(hash[:], h)
	return site, asset, hash, nil
}

// DeleteChargePointSecret implements store.ChargePoints.
func (s *Store) DeleteChargePointSecret(ctx context.Context, site, chargePoint string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM charge_point_secrets WHERE charge_point = ? AND site = ?`, chargePoint, site)
	if err != nil {
		return fmt.Errorf("delete secret of charge point %q of site %q: %w", chargePoint, site, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("charge point %q of site %q: %w", chargePoint, site, store.ErrNotFound)
	}
	return nil
}

// PutIDTag implements store.IDTags.
func (s *Store) PutIDTag(ctx context.Context, site, tag string, expires time.Time) error {
	key, err := store.IDTagKey(tag)
	if err != nil {
		return fmt.Errorf("put id tag: %w", err)
	}
	if expires, err = store.CheckTime("expires", expires); err != nil {
		return fmt.Errorf("put id tag %q: %w", tag, err)
	}
	what := fmt.Sprintf("put id tag %q of site %q", tag, site)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if err := siteExists(ctx, tx, site); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO id_tags(site, tag_key, tag, expires_ms) VALUES(?, ?, ?, ?)
		ON CONFLICT(site, tag_key) DO UPDATE SET tag = excluded.tag, expires_ms = excluded.expires_ms`,
		site, key, tag, nullMS(expires)); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	return nil
}

// DeleteIDTag implements store.IDTags.
func (s *Store) DeleteIDTag(ctx context.Context, site, tag string) error {
	key, err := store.IDTagKey(tag)
	if err != nil {
		return fmt.Errorf("delete id tag: %w", err)
	}
	res, err := s.db.ExecContext(ctx, `DELETE FROM id_tags WHERE site = ? AND tag_key = ?`, site, key)
	if err != nil {
		return fmt.Errorf("delete id tag %q of site %q: %w", tag, site, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("id tag %q of site %q: %w", tag, site, store.ErrNotFound)
	}
	return nil
}

// IDTag implements store.IDTags.
func (s *Store) IDTag(ctx context.Context, site, tag string) (time.Time, bool, error) {
	key, err := store.IDTagKey(tag)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("look up id tag: %w", err)
	}
	var expires sql.NullInt64
	err = s.db.QueryRowContext(ctx, `SELECT expires_ms FROM id_tags WHERE site = ? AND tag_key = ?`, site, key).Scan(&expires)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("look up id tag %q of site %q: %w", tag, site, err)
	}
	return fromNullMS(expires), true, nil
}

// ListIDTags implements store.IDTags.
func (s *Store) ListIDTags(ctx context.Context, site string) ([]store.IDTagEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT tag, expires_ms FROM id_tags WHERE site = ? ORDER BY tag_key`, site)
	if err != nil {
		return nil, fmt.Errorf("list id tags of site %q: %w", site, err)
	}
	defer rows.Close()
	out := []store.IDTagEntry{}
	for rows.Next() {
		var (
			e       store.IDTagEntry
			expires sql.NullInt64
		)
		if err := rows.Scan(&e.Tag, &expires); err != nil {
			return nil, fmt.Errorf("list id tags of site %q: %w", site, err)
		}
		e.Expires = fromNullMS(expires)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list id tags of site %q: %w", site, err)
	}
	return out, nil
}
