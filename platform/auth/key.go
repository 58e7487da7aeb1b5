// Package auth holds the platform's API keys and the checks made on every
// request: who is calling (Authenticator) and what they may do (Principal).
//
// A key's secret is "glk_" followed by 32 random bytes in unpadded base64url.
// Only its SHA-256 is stored (store.Key.Hash); the secret is shown once, when
// the key is made. A key has one scope and, unless it is an admin key, one
// site:
//
//	ingest           write readings of its site
//	read             read its site, except special-category health data
//	read:restricted  read its site, health data included
//	admin            everything, on every site (its site is empty)
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/gridlink/gridlink/store"
)

// Scope is what a key may do.
type Scope string

// The scopes.
const (
	ScopeIngest         Scope = "ingest"
	ScopeRead           Scope = "read"
	ScopeReadRestricted Scope = "read:restricted"
	ScopeAdmin          Scope = "admin"
)

// Scopes lists every scope.
func Scopes() []Scope { return []Scope{ScopeIngest, ScopeRead, ScopeReadRestricted, ScopeAdmin} }

// ParseScope checks a scope name.
func ParseScope(s string) (Scope, error) {
	switch sc := Scope(s); sc {
	case ScopeIngest, ScopeRead, ScopeReadRestricted, ScopeAdmin:
		return sc, nil
	}
	return "", fmt.Errorf("unknown scope %q (want ingest, read, read:restricted or admin)", s)
}

// SecretPrefix starts every key secret, so that leaked keys are easy to
// recognise by secret scanners.
const SecretPrefix = "glk_"

// secretLen is the length of a secret: the prefix plus 32 bytes in unpadded
// base64url.
var secretLen = len(SecretPrefix) + base64.RawURLEncoding.EncodedLen(32)

// ValidSiteID reports whether s is a well-formed site id: 1 to 64 of the
// characters a-z, 0-9 and '-'.
func ValidSiteID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// CheckGrant checks that a scope and site fit together: an admin key has no
// site, every other key has a well-formed one.
func CheckGrant(site, scope string) error {
	sc, err := ParseScope(scope)
	if err != nil {
		return err
	}
	if sc == ScopeAdmin {
		if site != "" {
			return fmt.Errorf("an admin key spans every site: site must be empty, not %q", site)
		}
		return nil
	}
	if site == "" {
		return fmt.Errorf("a key of scope %s needs a site", sc)
	}
	if !ValidSiteID(site) {
		return fmt.Errorf("invalid site id %q (want 1-64 characters a-z, 0-9, '-')", site)
	}
	return nil
}

// NewKey makes a key: the secret to hand to its user, once, and the
// store.Key to keep, which holds only the secret's hash. It does not check
// site and scope; call CheckGrant first.
func NewKey(site, scope, name string, now time.Time) (secret string, key store.Key) {
	var raw [32]byte
	rand.Read(raw[:]) // never fails (crypto/rand, Go 1.24+)
	secret = SecretPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	var id [8]byte
	rand.Read(id[:])
	return secret, store.Key{
		ID:        "key_" + hex.EncodeToString(id[:]),
		Hash:      Hash(secret),
		Site:      site,
		Scope:     scope,
		Name:      name,
		CreatedAt: now.UTC(),
	}
}

// Hash returns the SHA-256 of a secret, as kept in store.Key.Hash.
func Hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// Bootstrap makes an admin key when the store holds no valid one, so that a
// new platform can be administered at all. It returns the new key's secret,
// to be shown to the operator once, or "" when a valid admin key exists.
func Bootstrap(ctx context.Context, keys store.Keys, name string, now time.Time) (secret string, err error) {
	ks, err := keys.ListKeys(ctx)
	if err != nil {
		return "", fmt.Errorf("list keys: %w", err)
	}
	for _, k := range ks {
		if k.Scope == string(ScopeAdmin) && !k.Revoked() {
			return "", nil
		}
	}
	secret, k := NewKey("", string(ScopeAdmin), name, now)
	if err := keys.CreateKey(ctx, k); err != nil {
		return "", fmt.Errorf("create admin key: %w", err)
	}
	return secret, nil
}
