package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gridlink/gridlink/store"
)

// ms is a time as stored: UTC Unix milliseconds, nil (NULL) when zero.
func ms(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	v := t.UnixMilli()
	return &v
}

func fromMS(v *int64) time.Time {
	if v == nil {
		return time.Time{}
	}
	return time.UnixMilli(*v).UTC()
}

const sessionColumns = `site, charge_point, transaction_id, connector, id_tag, start_ms, stop_ms,
	meter_start_wh, meter_stop_wh, stop_reason, updated_ms`

func scanSession(row pgx.Row) (store.Session, error) {
	var (
		s           store.Session
		start, stop *int64
		updated     int64
	)
	if err := row.Scan(&s.Site, &s.ChargePoint, &s.TransactionID, &s.Connector, &s.IDTag, &start, &stop,
		&s.MeterStartWh, &s.MeterStopWh, &s.StopReason, &updated); err != nil {
		return store.Session{}, err
	}
	s.Start, s.Stop, s.Updated = fromMS(start), fromMS(stop), time.UnixMilli(updated).UTC()
	return s, nil
}

// PutSession implements store.Sessions. The stored row is locked (SELECT
// ... FOR UPDATE) while the put is merged into it, so concurrent puts of one
// session, from this node or another, merge one after the other. When the
// row does not exist yet, two puts may both try to insert it: the loser's
// INSERT ... ON CONFLICT DO NOTHING waits for the winner's commit, inserts
// nothing, and the loser merges into the winner's row instead.
func (s *Store) PutSession(ctx context.Context, sess store.Session) error {
	put, err := store.PrepareSession(sess, time.Now())
	if err != nil {
		return fmt.Errorf("put session: %w", err)
	}
	what := fmt.Sprintf("put session %d of charge point %q of site %q", put.TransactionID, put.ChargePoint, put.Site)
	// Two attempts suffice: rows are never deleted, so after losing the
	// insert the row is there to lock.
	for range 2 {
		done, err := s.putSession(ctx, put)
		if err != nil {
			if pgCode(err) == codeForeignKeyViolation {
				return fmt.Errorf("%s: site %q: %w", what, put.Site, store.ErrNotFound)
			}
			return fmt.Errorf("%s: %w", what, err)
		}
		if done {
			return nil
		}
	}
	return fmt.Errorf("%s: the session was inserted concurrently yet cannot be read", what)
}

// putSession runs one attempt of PutSession. It returns false when another
// transaction inserted the session first.
func (s *Store) putSession(ctx context.Context, put store.Session) (bool, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // after Commit it is a no-op
	stored, err := scanSession(tx.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE site = $1 AND charge_point = $2 AND transaction_id = $3 FOR UPDATE`,
		put.Site, put.ChargePoint, put.TransactionID))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		tag, err := tx.Exec(ctx, `INSERT INTO sessions (`+sessionColumns+`, order_ms)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			ON CONFLICT (site, charge_point, transaction_id) DO NOTHING`,
			put.Site, put.ChargePoint, put.TransactionID, put.Connector, put.IDTag, ms(put.Start), ms(put.Stop),
			put.MeterStartWh, put.MeterStopWh, put.StopReason, put.Updated.UnixMilli(), put.OrderTime().UnixMilli())
		if err != nil {
			return false, err
		}
		if tag.RowsAffected() == 0 {
			return false, nil
		}
	case err != nil:
		return false, fmt.Errorf("read: %w", err)
	default:
		m, err := store.MergeSession(stored, put)
		if err != nil {
			return false, err
		}
		if _, err := tx.Exec(ctx, `UPDATE sessions SET connector = $4, id_tag = $5, start_ms = $6, stop_ms = $7,
				meter_start_wh = $8, meter_stop_wh = $9, stop_reason = $10, updated_ms = $11, order_ms = $12
			WHERE site = $1 AND charge_point = $2 AND transaction_id = $3`,
			m.Site, m.ChargePoint, m.TransactionID, m.Connector, m.IDTag, ms(m.Start), ms(m.Stop),
			m.MeterStartWh, m.MeterStopWh, m.StopReason, m.Updated.UnixMilli(), m.OrderTime().UnixMilli()); err != nil {
			return false, fmt.Errorf("update: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("commit: %w", err)
	}
	return true, nil
}

// GetSession implements store.Sessions.
func (s *Store) GetSession(ctx context.Context, site, chargePoint string, tx int64) (store.Session, error) {
	sess, err := scanSession(s.pool.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE site = $1 AND charge_point = $2 AND transaction_id = $3`, site, chargePoint, tx))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Session{}, fmt.Errorf("session %d of charge point %q of site %q: %w", tx, chargePoint, site, store.ErrNotFound)
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("get session %d of charge point %q of site %q: %w", tx, chargePoint, site, err)
	}
	return sess, nil
}

// ListSessions implements store.Sessions: store.SessionFilter.Match in SQL,
// charge point ids ordered byte-wise (COLLATE "C").
func (s *Store) ListSessions(ctx context.Context, f store.SessionFilter) ([]store.Session, error) {
	f, err := f.Prepare()
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	var limit *int64 // NULL: no limit
	if f.Limit > 0 {
		l := int64(f.Limit)
		limit = &l
	}
	rows, err := s.pool.Query(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE site = $1 AND ($2 = '' OR charge_point = $2)
			AND ($3::bigint IS NULL OR order_ms < $3)
			AND ($4::bigint IS NULL OR order_ms >= $4 OR (stop_ms IS NULL AND start_ms IS NOT NULL) OR stop_ms > $4)
		ORDER BY order_ms, charge_point COLLATE "C", transaction_id LIMIT $5`,
		f.Site, f.ChargePoint, ms(f.To), ms(f.From), limit)
	if err != nil {
		return nil, fmt.Errorf("list sessions of site %q: %w", f.Site, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Session, error) { return scanSession(row) })
	if err != nil {
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
	// The update applies only when the id is the same site's, so a claim by
	// another site changes no row.
	tag, err := s.pool.Exec(ctx, `
		INSERT INTO charge_point_secrets (charge_point, site, asset, sha256) VALUES ($1, $2, $3, $4)
		ON CONFLICT (charge_point) DO UPDATE SET asset = EXCLUDED.asset, sha256 = EXCLUDED.sha256
		WHERE charge_point_secrets.site = EXCLUDED.site`,
		chargePoint, site, asset, hash[:])
	if pgCode(err) == codeForeignKeyViolation {
		return fmt.Errorf("%s: site %q: %w", what, site, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: the id belongs to another site: %w", what, store.ErrConflict)
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
	err := s.pool.QueryRow(ctx, `SELECT site, asset, sha256 FROM charge_point_secrets WHERE charge_point = $1`, chargePoint).Scan(&site, &asset, &h)
	if errors.Is(err, pgx.ErrNoRows) {
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
	tag, err := s.pool.Exec(ctx, `DELETE FROM charge_point_secrets WHERE charge_point = $1 AND site = $2`, chargePoint, site)
	if err != nil {
		return fmt.Errorf("delete secret of charge point %q of site %q: %w", chargePoint, site, err)
	}
	if tag.RowsAffected() == 0 {
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
	_, err = s.pool.Exec(ctx, `
		INSERT INTO id_tags (site, tag_key, tag, expires_ms) VALUES ($1, $2, $3, $4)
		ON CONFLICT (site, tag_key) DO UPDATE SET tag = EXCLUDED.tag, expires_ms = EXCLUDED.expires_ms`,
		site, key, tag, ms(expires))
	if pgCode(err) == codeForeignKeyViolation {
		return fmt.Errorf("put id tag %q: site %q: %w", tag, site, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("put id tag %q of site %q: %w", tag, site, err)
	}
	return nil
}

// DeleteIDTag implements store.IDTags.
func (s *Store) DeleteIDTag(ctx context.Context, site, tag string) error {
	key, err := store.IDTagKey(tag)
	if err != nil {
		return fmt.Errorf("delete id tag: %w", err)
	}
	ct, err := s.pool.Exec(ctx, `DELETE FROM id_tags WHERE site = $1 AND tag_key = $2`, site, key)
	if err != nil {
		return fmt.Errorf("delete id tag %q of site %q: %w", tag, site, err)
	}
	if ct.RowsAffected() == 0 {
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
	var expires *int64
	err = s.pool.QueryRow(ctx, `SELECT expires_ms FROM id_tags WHERE site = $1 AND tag_key = $2`, site, key).Scan(&expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("look up id tag %q of site %q: %w", tag, site, err)
	}
	return fromMS(expires), true, nil
}

// ListIDTags implements store.IDTags. Keys are ASCII, so COLLATE "C" orders
// them as Go does.
func (s *Store) ListIDTags(ctx context.Context, site string) ([]store.IDTagEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT tag, expires_ms FROM id_tags WHERE site = $1 ORDER BY tag_key COLLATE "C"`, site)
	if err != nil {
		return nil, fmt.Errorf("list id tags of site %q: %w", site, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.IDTagEntry, error) {
		var (
			e       store.IDTagEntry
			expires *int64
		)
		err := row.Scan(&e.Tag, &expires)
		e.Expires = fromMS(expires)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("list id tags of site %q: %w", site, err)
	}
	return out, nil
}
