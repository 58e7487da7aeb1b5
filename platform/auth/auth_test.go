package auth

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridlink/gridlink/store"
)

// memKeys is a store.Keys in memory that counts lookups.
type memKeys struct {
	mu      sync.Mutex
	keys    []store.Key
	lookups atomic.Int64
	fail    error
}

func (m *memKeys) CreateKey(_ context.Context, k store.Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys = append(m.keys, k)
	return nil
}

func (m *memKeys) KeyByHash(_ context.Context, h []byte) (store.Key, error) {
	m.lookups.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return store.Key{}, m.fail
	}
	for _, k := range m.keys {
		if string(k.Hash) == string(h) {
			return k, nil
		}
	}
	return store.Key{}, store.ErrNotFound
}

func (m *memKeys) ListKeys(context.Context) ([]store.Key, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]store.Key(nil), m.keys...), nil
}

func (m *memKeys) RevokeKey(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.keys {
		if m.keys[i].ID == id {
			if m.keys[i].RevokedAt.IsZero() {
				m.keys[i].RevokedAt = at
			}
			return nil
		}
	}
	return store.ErrNotFound
}

func TestNewKey(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.FixedZone("x", 3600))
	secret, k := NewKey("bristol", "ingest", "gw-1", now)
	if !strings.HasPrefix(secret, SecretPrefix) || len(secret) != secretLen {
		t.Fatalf("secret %q", secret)
	}
	if string(k.Hash) != string(Hash(secret)) || len(k.Hash) != 32 {
		t.Fatal("hash is not the SHA-256 of the secret")
	}
	if k.Site != "bristol" || k.Scope != "ingest" || k.Name != "gw-1" || !k.CreatedAt.Equal(now) || k.CreatedAt.Location() != time.UTC {
		t.Fatalf("key %+v", k)
	}
	s2, k2 := NewKey("bristol", "ingest", "gw-1", now)
	if s2 == secret || k2.ID == k.ID {
		t.Fatal("two keys share a secret or id")
	}
}

func TestCheckGrant(t *testing.T) {
	for _, c := range []struct {
		site, scope string
		ok          bool
	}{
		{"bristol", "ingest", true}, {"bristol", "read", true}, {"bristol", "read:restricted", true}, {"", "admin", true},
		{"bristol", "admin", false}, {"", "read", false}, {"Bristol", "read", false}, {"bristol", "write", false},
		{strings.Repeat("a", 64), "read", true}, {strings.Repeat("a", 65), "read", false}, {"a_b", "read", false},
	} {
		if err := CheckGrant(c.site, c.scope); (err == nil) != c.ok {
			t.Errorf("CheckGrant(%q, %q) = %v", c.site, c.scope, err)
		}
	}
}

func TestPrincipal(t *testing.T) {
	ingest := Principal{Site: "a", Scope: ScopeIngest}
	read := Principal{Site: "a", Scope: ScopeRead}
	restricted := Principal{Site: "a", Scope: ScopeReadRestricted}
	admin := Principal{Scope: ScopeAdmin}
	for _, c := range []struct {
		name string
		got  bool
		want bool
	}{
		{"ingest writes a", ingest.CanIngest("a"), true},
		{"ingest writes b", ingest.CanIngest("b"), false},
		{"ingest reads a", ingest.CanRead("a"), false},
		{"read reads a", read.CanRead("a"), true},
		{"read reads b", read.CanRead("b"), false},
		{"read writes a", read.CanIngest("a"), false},
		{"read health", read.CanReadRestricted(), false},
		{"restricted reads a", restricted.CanRead("a"), true},
		{"restricted health", restricted.CanReadRestricted(), true},
		{"admin everything", admin.CanRead("b") && admin.CanIngest("c") && admin.CanReadRestricted(), true},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	ks := &memKeys{}
	now := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	a := NewAuthenticator(ks, Options{TTL: time.Minute, Now: clock})
	ctx := context.Background()
	secret, k := NewKey("bristol", "read", "r", now)
	ks.CreateKey(ctx, k)

	p, err := a.Authenticate(ctx, "Bearer "+secret)
	if err != nil || p.KeyID != k.ID || p.Site != "bristol" || p.Scope != ScopeRead || p.Name != "r" {
		t.Fatalf("principal %+v, %v", p, err)
	}
	if _, err := a.Authenticate(ctx, "bearer  "+secret+" "); err != nil {
		t.Fatalf("lower-case scheme and spaces: %v", err)
	}
	if n := ks.lookups.Load(); n != 1 {
		t.Errorf("%d store lookups, want 1 (cached)", n)
	}
	for header, want := range map[string]error{
		"":                                      ErrNoKey,
		"Basic dXNlcjpwYXNz":                    ErrNoKey,
		"Bearer ":                               ErrNoKey,
		"Bearer short":                          ErrUnknownKey,
		"Bearer " + secret[:len(secret)-1]:      ErrUnknownKey,
		"Bearer glk_" + strings.Repeat("x", 43): ErrUnknownKey,
	} {
		if _, err := a.Authenticate(ctx, header); !errors.Is(err, want) {
			t.Errorf("%q: %v, want %v", header, err, want)
		}
	}
	// Unknown secrets of the right shape are cached too.
	n := ks.lookups.Load()
	a.Authenticate(ctx, "Bearer glk_"+strings.Repeat("x", 43))
	if ks.lookups.Load() != n {
		t.Error("unknown key looked up again within the TTL")
	}

	// A revocation elsewhere shows after the TTL; Forget shows it at once.
	ks.RevokeKey(ctx, k.ID, now)
	if _, err := a.Authenticate(ctx, "Bearer "+secret); err != nil {
		t.Fatalf("cached key refused before the TTL: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := a.Authenticate(ctx, "Bearer "+secret); !errors.Is(err, ErrRevoked) {
		t.Fatalf("after the TTL: %v, want ErrRevoked", err)
	}
	secret2, k2 := NewKey("bristol", "ingest", "i", now)
	ks.CreateKey(ctx, k2)
	a.Authenticate(ctx, "Bearer "+secret2)
	ks.RevokeKey(ctx, k2.ID, now)
	a.Forget(k2.ID)
	if _, err := a.Authenticate(ctx, "Bearer "+secret2); !errors.Is(err, ErrRevoked) {
		t.Fatalf("after Forget: %v, want ErrRevoked", err)
	}

	// Store failures are not taken for unknown keys, nor cached.
	ks.fail = errors.New("disk on fire")
	secret3, _ := NewKey("bristol", "read", "", now)
	if _, err := a.Authenticate(ctx, "Bearer "+secret3); err == nil || errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("store failure: %v", err)
	}
}

func TestCacheBounded(t *testing.T) {
	ks := &memKeys{}
	a := NewAuthenticator(ks, Options{MaxEntries: 10})
	for i := 0; i < 100; i++ {
		s, _ := NewKey("x", "read", "", time.Now())
		a.Authenticate(context.Background(), "Bearer "+s)
	}
	if n := len(a.cache); n > 10 {
		t.Errorf("cache holds %d entries, bound 10", n)
	}
}

func BenchmarkAuthenticateCached(b *testing.B) {
	ks := &memKeys{}
	secret, k := NewKey("bristol", "ingest", "", time.Now())
	ks.CreateKey(context.Background(), k)
	a := NewAuthenticator(ks, Options{})
	h := "Bearer " + secret
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := a.Authenticate(ctx, h); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestBootstrap(t *testing.T) {
	ks := &memKeys{}
	ctx := context.Background()
	now := time.Now()
	s1, err := Bootstrap(ctx, ks, "first", now)
	if err != nil || s1 == "" {
		t.Fatalf("first bootstrap: %q, %v", s1, err)
	}
	if s2, err := Bootstrap(ctx, ks, "again", now); err != nil || s2 != "" {
		t.Fatalf("second bootstrap made a key: %q, %v", s2, err)
	}
	a := NewAuthenticator(ks, Options{})
	p, err := a.Authenticate(ctx, "Bearer "+s1)
	if err != nil || !p.Admin() || p.Name != "first" {
		t.Fatalf("bootstrap key: %+v, %v", p, err)
	}
	ks.RevokeKey(ctx, p.KeyID, now)
	if s3, err := Bootstrap(ctx, ks, "after revoke", now); err != nil || s3 == "" {
		t.Fatalf("bootstrap after revoking the only admin key: %q, %v", s3, err)
	}
}
