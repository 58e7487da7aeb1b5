package platform

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gridlink/gridlink/store"
)

// assetCache remembers which assets exist, per site, so that checking a
// reading's asset costs a map lookup. Assets are never deleted from the
// store, so a known asset stays known; an absent one is re-read after ttl.
type assetCache struct {
	ttl time.Duration

	mu    sync.RWMutex
	sites map[string]*siteAssets
}

type siteAssets struct {
	known   map[string]string // asset id → the same id, to reuse the string
	missing map[string]int64  // asset id → unix nanoseconds until which it is taken as absent
}

// maxMissing bounds the remembered absent assets of a site.
const maxMissing = 10000

func newAssetCache(ttl time.Duration) *assetCache {
	return &assetCache{ttl: ttl, sites: make(map[string]*siteAssets)}
}

func (c *assetCache) known(site, id string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	sa := c.sites[site]
	if sa == nil {
		return false
	}
	_, ok := sa.known[id]
	return ok
}

func (c *assetCache) missing(site, id string, now int64) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	sa := c.sites[site]
	return sa != nil && now < sa.missing[id]
}

func (c *assetCache) site(site string) *siteAssets {
	sa := c.sites[site]
	if sa == nil {
		sa = &siteAssets{known: make(map[string]string), missing: make(map[string]int64)}
		c.sites[site] = sa
	}
	return sa
}

func (c *assetCache) add(site, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sa := c.site(site)
	sa.known[id] = id
	delete(sa.missing, id)
}

func (c *assetCache) markMissing(site, id string, until int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sa := c.site(site)
	if len(sa.missing) >= maxMissing {
		clear(sa.missing)
	}
	sa.missing[id] = until
}

// assetExists reports whether the site has the asset, from the cache or the
// store.
func (s *Server) assetExists(ctx context.Context, site, id string) (bool, error) {
	if s.assets.known(site, id) {
		return true, nil
	}
	now := time.Now().UnixNano()
	if s.assets.missing(site, id, now) {
		return false, nil
	}
	_, err := s.store.Asset(ctx, site, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.assets.markMissing(site, id, now+int64(s.assets.ttl))
		return false, nil
	case err != nil:
		return false, fmt.Errorf("look up asset %q of site %q: %w", id, site, err)
	}
	s.assets.add(site, id)
	return true, nil
}
