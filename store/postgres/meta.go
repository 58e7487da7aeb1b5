package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
)

// SQLSTATE codes the store maps.
const (
	codeForeignKeyViolation = "23503"
)

// PutSite implements store.Sites.
func (s *Store) PutSite(ctx context.Context, site cim.Site) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO sites (id, name, country, timezone) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, country = EXCLUDED.country, timezone = EXCLUDED.timezone`,
		site.ID, site.Name, site.Country, site.Timezone)
	if err != nil {
		return fmt.Errorf("put site %q: %w", site.ID, err)
	}
	return nil
}

// Site implements store.Sites.
func (s *Store) Site(ctx context.Context, id string) (cim.Site, error) {
	var site cim.Site
	err := s.pool.QueryRow(ctx, `SELECT id, name, country, timezone FROM sites WHERE id = $1`, id).
		Scan(&site.ID, &site.Name, &site.Country, &site.Timezone)
	if errors.Is(err, pgx.ErrNoRows) {
		return cim.Site{}, fmt.Errorf("site %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return cim.Site{}, fmt.Errorf("site %q: %w", id, err)
	}
	return site, nil
}

// ListSites implements store.Sites.
func (s *Store) ListSites(ctx context.Context) ([]cim.Site, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, name, country, timezone FROM sites ORDER BY id COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (cim.Site, error) {
		var site cim.Site
		err := row.Scan(&site.ID, &site.Name, &site.Country, &site.Timezone)
		return site, err
	})
	if err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	return out, nil
}

// PutAsset implements store.Assets.
func (s *Store) PutAsset(ctx context.Context, a cim.Asset) error {
	var loc cim.Location
	if a.Location != nil {
		loc = *a.Location
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO assets (site, id, type, name, make, model, household, has_location, latitude, longitude, address, ledger)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		ON CONFLICT (site, id) DO UPDATE SET
			type = EXCLUDED.type, name = EXCLUDED.name, make = EXCLUDED.make, model = EXCLUDED.model,
			household = EXCLUDED.household, has_location = EXCLUDED.has_location,
			latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude, address = EXCLUDED.address,
			ledger = EXCLUDED.ledger`,
		a.Site, a.ID, string(a.Type), a.Name, a.Make, a.Model, a.Household,
		a.Location != nil, loc.Latitude, loc.Longitude, loc.Address, a.Ledger)
	if pgCode(err) == codeForeignKeyViolation {
		return fmt.Errorf("put asset %q: site %q: %w", a.ID, a.Site, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("put asset %q of site %q: %w", a.ID, a.Site, err)
	}
	return nil
}

const assetColumns = `site, id, type, name, make, model, household, has_location, latitude, longitude, address, ledger`

func scanAsset(row pgx.Row) (cim.Asset, error) {
	var (
		a     cim.Asset
		typ   string
		hasLo bool
		loc   cim.Location
	)
	if err := row.Scan(&a.Site, &a.ID, &typ, &a.Name, &a.Make, &a.Model, &a.Household,
		&hasLo, &loc.Latitude, &loc.Longitude, &loc.Address, &a.Ledger); err != nil {
		return cim.Asset{}, err
	}
	a.Type = cim.AssetType(typ)
	if hasLo {
		a.Location = &loc
	}
	return a, nil
}

// Asset implements store.Assets.
func (s *Store) Asset(ctx context.Context, site, id string) (cim.Asset, error) {
	a, err := scanAsset(s.pool.QueryRow(ctx, `SELECT `+assetColumns+` FROM assets WHERE site = $1 AND id = $2`, site, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return cim.Asset{}, fmt.Errorf("asset %q of site %q: %w", id, site, store.ErrNotFound)
	}
	if err != nil {
		return cim.Asset{}, fmt.Errorf("asset %q of site %q: %w", id, site, err)
	}
	return a, nil
}

// ListAssets implements store.Assets.
func (s *Store) ListAssets(ctx context.Context, site string) ([]cim.Asset, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+assetColumns+` FROM assets WHERE site = $1 ORDER BY id COLLATE "C"`, site)
	if err != nil {
		return nil, fmt.Errorf("list assets of site %q: %w", site, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (cim.Asset, error) { return scanAsset(row) })
	if err != nil {
		return nil, fmt.Errorf("list assets of site %q: %w", site, err)
	}
	return out, nil
}

// CreateKey implements store.Keys.
func (s *Store) CreateKey(ctx context.Context, k store.Key) error {
	var revoked *time.Time
	if k.Revoked() {
		revoked = &k.RevokedAt
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO keys (id, hash, site, scope, name, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		k.ID, k.Hash, k.Site, k.Scope, k.Name, k.CreatedAt, revoked)
	if err != nil {
		return fmt.Errorf("create key %q: %w", k.ID, err)
	}
	return nil
}

const keyColumns = `id, hash, site, scope, name, created_at, revoked_at`

func scanKey(row pgx.Row) (store.Key, error) {
	var (
		k       store.Key
		revoked *time.Time
	)
	if err := row.Scan(&k.ID, &k.Hash, &k.Site, &k.Scope, &k.Name, &k.CreatedAt, &revoked); err != nil {
		return store.Key{}, err
	}
	k.CreatedAt = k.CreatedAt.UTC()
	if revoked != nil {
		k.RevokedAt = revoked.UTC()
	}
	return k, nil
}

// KeyByHash implements store.Keys.
func (s *Store) KeyByHash(ctx context.Context, hash []byte) (store.Key, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM keys WHERE hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Key{}, fmt.Errorf("key by hash: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Key{}, fmt.Errorf("key by hash: %w", err)
	}
	return k, nil
}

// ListKeys implements store.Keys. Keys created at the same time are ordered
// by id.
func (s *Store) ListKeys(ctx context.Context) ([]store.Key, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM keys ORDER BY created_at, id COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Key, error) { return scanKey(row) })
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return out, nil
}

// RevokeKey implements store.Keys.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE keys SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1`, id, at)
	if err != nil {
		return fmt.Errorf("revoke key %q: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("revoke key %q: %w", id, store.ErrNotFound)
	}
	return nil
}
