package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
)

// PutSite implements store.Sites.
func (s *Store) PutSite(ctx context.Context, site cim.Site) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO sites(id, name, country, timezone) VALUES(?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET name = excluded.name, country = excluded.country, timezone = excluded.timezone`,
		site.ID, site.Name, site.Country, site.Timezone)
	if err != nil {
		return fmt.Errorf("put site %q: %w", site.ID, err)
	}
	return nil
}

// Site implements store.Sites.
func (s *Store) Site(ctx context.Context, id string) (cim.Site, error) {
	site := cim.Site{ID: id}
	err := s.db.QueryRowContext(ctx, `SELECT name, country, timezone FROM sites WHERE id = ?`, id).
		Scan(&site.Name, &site.Country, &site.Timezone)
	if errors.Is(err, sql.ErrNoRows) {
		return cim.Site{}, fmt.Errorf("site %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return cim.Site{}, fmt.Errorf("get site %q: %w", id, err)
	}
	return site, nil
}

// ListSites implements store.Sites.
func (s *Store) ListSites(ctx context.Context) ([]cim.Site, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, country, timezone FROM sites ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	defer rows.Close()
	var out []cim.Site
	for rows.Next() {
		var site cim.Site
		if err := rows.Scan(&site.ID, &site.Name, &site.Country, &site.Timezone); err != nil {
			return nil, fmt.Errorf("list sites: %w", err)
		}
		out = append(out, site)
	}
	return out, rows.Err()
}

// PutAsset implements store.Assets.
func (s *Store) PutAsset(ctx context.Context, a cim.Asset) error {
	var loc cim.Location
	has := a.Location != nil
	if has {
		loc = *a.Location
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO assets(site, id, type, name, make, model, household, has_location, lat, lon, address, ledger)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM sites WHERE id = ?)
		ON CONFLICT(site, id) DO UPDATE SET type = excluded.type, name = excluded.name, make = excluded.make,
			model = excluded.model, household = excluded.household, has_location = excluded.has_location,
			lat = excluded.lat, lon = excluded.lon, address = excluded.address, ledger = excluded.ledger`,
		a.Site, a.ID, string(a.Type), a.Name, a.Make, a.Model, a.Household, has, loc.Latitude, loc.Longitude, loc.Address, a.Ledger, a.Site)
	if err != nil {
		return fmt.Errorf("put asset %q of site %q: %w", a.ID, a.Site, err)
	}
	if _, err := s.Site(ctx, a.Site); err != nil {
		return fmt.Errorf("put asset %q: %w", a.ID, err)
	}
	return nil
}

const assetColumns = `site, id, type, name, make, model, household, has_location, lat, lon, address, ledger`

func scanAsset(sc interface{ Scan(...any) error }) (cim.Asset, error) {
	var a cim.Asset
	var typ string
	var has bool
	var loc cim.Location
	if err := sc.Scan(&a.Site, &a.ID, &typ, &a.Name, &a.Make, &a.Model, &a.Household, &has, &loc.Latitude, &loc.Longitude, &loc.Address, &a.Ledger); err != nil {
		return a, err
	}
	a.Type = cim.AssetType(typ)
	if has {
		a.Location = &loc
	}
	return a, nil
}

// Asset implements store.Assets.
func (s *Store) Asset(ctx context.Context, site, id string) (cim.Asset, error) {
	a, err := scanAsset(s.db.QueryRowContext(ctx, `SELECT `+assetColumns+` FROM assets WHERE site = ? AND id = ?`, site, id))
	if errors.Is(err, sql.ErrNoRows) {
		return cim.Asset{}, fmt.Errorf("asset %q of site %q: %w", id, site, store.ErrNotFound)
	}
	if err != nil {
		return cim.Asset{}, fmt.Errorf("get asset %q of site %q: %w", id, site, err)
	}
	return a, nil
}

// ListAssets implements store.Assets.
func (s *Store) ListAssets(ctx context.Context, site string) ([]cim.Asset, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+assetColumns+` FROM assets WHERE site = ? ORDER BY id`, site)
	if err != nil {
		return nil, fmt.Errorf("list assets of site %q: %w", site, err)
	}
	defer rows.Close()
	var out []cim.Asset
	for rows.Next() {
		a, err := scanAsset(rows)
		if err != nil {
			return nil, fmt.Errorf("list assets of site %q: %w", site, err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// CreateKey implements store.Keys.
func (s *Store) CreateKey(ctx context.Context, k store.Key) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO keys(id, hash, site, scope, name, created_at, revoked_at) VALUES(?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.Hash, k.Site, k.Scope, k.Name, unixNano(k.CreatedAt), unixNano(k.RevokedAt))
	if err != nil {
		return fmt.Errorf("create key %q: %w", k.ID, err)
	}
	return nil
}

const keyColumns = `id, hash, site, scope, name, created_at, revoked_at`

func scanKey(sc interface{ Scan(...any) error }) (store.Key, error) {
	var k store.Key
	var created, revoked int64
	if err := sc.Scan(&k.ID, &k.Hash, &k.Site, &k.Scope, &k.Name, &created, &revoked); err != nil {
		return k, err
	}
	k.CreatedAt, k.RevokedAt = fromUnixNano(created), fromUnixNano(revoked)
	return k, nil
}

// KeyByHash implements store.Keys.
func (s *Store) KeyByHash(ctx context.Context, hash []byte) (store.Key, error) {
	k, err := scanKey(s.db.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM keys WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Key{}, fmt.Errorf("key: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Key{}, fmt.Errorf("find key: %w", err)
	}
	return k, nil
}

// ListKeys implements store.Keys.
func (s *Store) ListKeys(ctx context.Context) ([]store.Key, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+keyColumns+` FROM keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	var out []store.Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list keys: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeKey implements store.Keys.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE keys SET revoked_at = CASE WHEN revoked_at = 0 THEN ? ELSE revoked_at END WHERE id = ?`,
		unixNano(at), id)
	if err != nil {
		return fmt.Errorf("revoke key %q: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("key %q: %w", id, store.ErrNotFound)
	}
	return nil
}
