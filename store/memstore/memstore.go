// Package memstore is an in-memory implementation of the storage contract
// in package store: maps and sorted slices under one mutex, written to be
// obviously correct rather than fast. It is the reference that validates the
// conformance suite in store/storetest, and it lets the HTTP layer be tested
// before, and without, a durable driver.
//
// It is not durable: everything is lost with the process, so Write's promise
// of durability holds only for the life of the Store. Use it for tests.
package memstore

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
)

// blockSize is the most points Read and Aggregate pass to fn at once. It is
// small so that tests see series split into several blocks.
const blockSize = 1000

// Store keeps everything in memory. The zero value is not usable; call New.
type Store struct {
	mu     sync.RWMutex
	sites  map[string]cim.Site
	assets map[string]map[string]cim.Asset // site → id → asset
	keys   map[string]store.Key            // id → key
	// series holds each series' points in ascending time order, no two
	// with the same time.
	series map[store.Series][]cim.Point

	sessions map[sessionKey]store.Session
	secrets  map[string]chargePointSecret           // charge point → credentials
	tags     map[string]map[string]store.IDTagEntry // site → store.IDTagKey → tag

	ledger ledger  // the energy ledger (ledger.go), under its own lock
	itc    itcRuns // integration test runs (itc.go), under their own lock
}

var _ store.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{
		sites:  make(map[string]cim.Site),
		assets: make(map[string]map[string]cim.Asset),
		keys:   make(map[string]store.Key),
		series: make(map[store.Series][]cim.Point),

		sessions: make(map[sessionKey]store.Session),
		secrets:  make(map[string]chargePointSecret),
		tags:     make(map[string]map[string]store.IDTagEntry),
	}
}

// Close does nothing: there is nothing to flush or release.
func (s *Store) Close() error { return nil }

// PutSite implements store.Sites.
func (s *Store) PutSite(ctx context.Context, site cim.Site) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sites[site.ID] = site
	return nil
}

// Site implements store.Sites.
func (s *Store) Site(ctx context.Context, id string) (cim.Site, error) {
	if err := ctx.Err(); err != nil {
		return cim.Site{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	site, ok := s.sites[id]
	if !ok {
		return cim.Site{}, fmt.Errorf("site %q: %w", id, store.ErrNotFound)
	}
	return site, nil
}

// ListSites implements store.Sites.
func (s *Store) ListSites(ctx context.Context) ([]cim.Site, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]cim.Site, 0, len(s.sites))
	for _, site := range s.sites {
		out = append(out, site)
	}
	slices.SortFunc(out, func(a, b cim.Site) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// PutAsset implements store.Assets.
func (s *Store) PutAsset(ctx context.Context, a cim.Asset) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sites[a.Site]; !ok {
		return fmt.Errorf("put asset %q: site %q: %w", a.ID, a.Site, store.ErrNotFound)
	}
	if s.assets[a.Site] == nil {
		s.assets[a.Site] = make(map[string]cim.Asset)
	}
	s.assets[a.Site][a.ID] = copyAsset(a)
	return nil
}

// Asset implements store.Assets.
func (s *Store) Asset(ctx context.Context, site, id string) (cim.Asset, error) {
	if err := ctx.Err(); err != nil {
		return cim.Asset{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, ok := s.assets[site][id]
	if !ok {
		return cim.Asset{}, fmt.Errorf("asset %q of site %q: %w", id, site, store.ErrNotFound)
	}
	return copyAsset(a), nil
}

// ListAssets implements store.Assets.
func (s *Store) ListAssets(ctx context.Context, site string) ([]cim.Asset, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]cim.Asset, 0, len(s.assets[site]))
	for _, a := range s.assets[site] {
		out = append(out, copyAsset(a))
	}
	slices.SortFunc(out, func(a, b cim.Asset) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// copyAsset copies the location so that callers share nothing with the
// store.
func copyAsset(a cim.Asset) cim.Asset {
	if a.Location != nil {
		l := *a.Location
		a.Location = &l
	}
	return a
}

// CreateKey implements store.Keys.
func (s *Store) CreateKey(ctx context.Context, k store.Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.keys[k.ID]; dup {
		return fmt.Errorf("create key %q: id already stored", k.ID)
	}
	for _, o := range s.keys {
		if bytes.Equal(o.Hash, k.Hash) {
			return fmt.Errorf("create key %q: hash already stored", k.ID)
		}
	}
	s.keys[k.ID] = copyKey(k)
	return nil
}

// KeyByHash implements store.Keys.
func (s *Store) KeyByHash(ctx context.Context, hash []byte) (store.Key, error) {
	if err := ctx.Err(); err != nil {
		return store.Key{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, k := range s.keys {
		if bytes.Equal(k.Hash, hash) {
			return copyKey(k), nil
		}
	}
	return store.Key{}, fmt.Errorf("key by hash: %w", store.ErrNotFound)
}

// ListKeys implements store.Keys. Keys created at the same time are ordered
// by id.
func (s *Store) ListKeys(ctx context.Context) ([]store.Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]store.Key, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, copyKey(k))
	}
	slices.SortFunc(out, func(a, b store.Key) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// RevokeKey implements store.Keys.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[id]
	if !ok {
		return fmt.Errorf("revoke key %q: %w", id, store.ErrNotFound)
	}
	if !k.Revoked() {
		k.RevokedAt = at.UTC()
		s.keys[id] = k
	}
	return nil
}

// copyKey copies the hash and puts the times in UTC.
func copyKey(k store.Key) store.Key {
	k.Hash = bytes.Clone(k.Hash)
	k.CreatedAt = k.CreatedAt.UTC()
	if !k.RevokedAt.IsZero() {
		k.RevokedAt = k.RevokedAt.UTC()
	}
	return k
}
