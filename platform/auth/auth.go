package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gridlink/gridlink/store"
)

// The reasons Authenticate refuses a caller. Each means HTTP 401.
var (
	ErrNoKey      = errors.New("missing API key: send the header Authorization: Bearer <key>")
	ErrUnknownKey = errors.New("unknown API key")
	ErrRevoked    = errors.New("API key revoked")
)

// Principal is an authenticated caller.
type Principal struct {
	KeyID string
	Name  string
	Site  string // empty for admin keys
	Scope Scope
}

// Admin reports whether the caller holds an admin key.
func (p Principal) Admin() bool { return p.Scope == ScopeAdmin }

// CanIngest reports whether the caller may write readings of the site.
func (p Principal) CanIngest(site string) bool {
	return p.Admin() || p.Scope == ScopeIngest && p.Site == site
}

// CanRead reports whether the caller may read the site (its health data
// aside: see CanReadRestricted).
func (p Principal) CanRead(site string) bool {
	return p.Admin() || (p.Scope == ScopeRead || p.Scope == ScopeReadRestricted) && p.Site == site
}

// CanReadRestricted reports whether the caller may read special-category
// health data of the sites it can read.
func (p Principal) CanReadRestricted() bool {
	return p.Admin() || p.Scope == ScopeReadRestricted
}

// Options tune an Authenticator.
type Options struct {
	// TTL is how long a key looked up in the store is trusted before it is
	// read again; zero means 10 s. It bounds how late a revocation made on
	// another platform node takes effect here (Forget makes one made here
	// take effect at once). Unknown secrets are remembered as long.
	TTL time.Duration
	// MaxEntries bounds the cache; when full it is emptied. Zero means 100000.
	MaxEntries int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Authenticator turns an Authorization header into a Principal. It caches
// the store's answers in memory, so that a request costs one SHA-256 and one
// map lookup. It is safe for concurrent use.
type Authenticator struct {
	keys store.Keys
	ttl  time.Duration
	max  int
	now  func() time.Time

	mu    sync.RWMutex
	cache map[[sha256.Size]byte]cached
}

type cached struct {
	p       Principal
	err     error // ErrUnknownKey or ErrRevoked, or nil
	expires int64 // unix nanoseconds
}

// NewAuthenticator returns an Authenticator over the store's keys.
func NewAuthenticator(keys store.Keys, opts Options) *Authenticator {
	a := &Authenticator{keys: keys, ttl: opts.TTL, max: opts.MaxEntries, now: opts.Now,
		cache: make(map[[sha256.Size]byte]cached)}
	if a.ttl <= 0 {
		a.ttl = 10 * time.Second
	}
	if a.max <= 0 {
		a.max = 100000
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a
}

// Bearer extracts the credentials of an "Authorization: Bearer ..." header
// value; ok is false when the header is of another scheme or empty.
func Bearer(header string) (token string, ok bool) {
	const p = "bearer "
	if len(header) <= len(p) || !strings.EqualFold(header[:len(p)], p) {
		return "", false
	}
	return strings.TrimSpace(header[len(p):]), true
}

// Authenticate checks the value of an Authorization header. It returns
// ErrNoKey, ErrUnknownKey or ErrRevoked when the caller is not to be let in,
// and another error when the store fails.
func (a *Authenticator) Authenticate(ctx context.Context, header string) (Principal, error) {
	if header == "" {
		return Principal{}, ErrNoKey
	}
	secret, ok := Bearer(header)
	if !ok {
		return Principal{}, fmt.Errorf("%w: the Authorization header must use the Bearer scheme", ErrNoKey)
	}
	if len(secret) != secretLen || !strings.HasPrefix(secret, SecretPrefix) {
		return Principal{}, ErrUnknownKey
	}
	var sb [64]byte // secretLen bytes: hashing them does not allocate
	h := sha256.Sum256(sb[:copy(sb[:], secret)])
	now := a.now().UnixNano()
	a.mu.RLock()
	c, hit := a.cache[h]
	a.mu.RUnlock()
	if hit && now < c.expires {
		return c.p, c.err
	}
	k, err := a.keys.KeyByHash(ctx, append([]byte(nil), h[:]...))
	switch {
	case errors.Is(err, store.ErrNotFound):
		c = cached{err: ErrUnknownKey}
	case err != nil:
		return Principal{}, fmt.Errorf("look up API key: %w", err)
	case k.Revoked():
		c = cached{err: ErrRevoked}
	default:
		c = cached{p: Principal{KeyID: k.ID, Name: k.Name, Site: k.Site, Scope: Scope(k.Scope)}}
	}
	c.expires = now + int64(a.ttl)
	a.mu.Lock()
	if len(a.cache) >= a.max {
		clear(a.cache)
	}
	a.cache[h] = c
	a.mu.Unlock()
	return c.p, c.err
}

// Forget drops the cached entry of a key, so that its revocation takes
// effect at the next request.
func (a *Authenticator) Forget(keyID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for h, c := range a.cache {
		if c.p.KeyID == keyID {
			delete(a.cache, h)
		}
	}
}
