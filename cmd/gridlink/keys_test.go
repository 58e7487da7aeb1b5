//go:build !edge

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/platform/auth"
	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/sqlite"
)

// newSiteDir returns a data directory whose SQLite store holds the sites.
func newSiteDir(t *testing.T, sites ...string) string {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, dir, sqlite.Options{MetaOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range sites {
		if err := st.PutSite(ctx, cim.Site{ID: id, Name: strings.ToUpper(id[:1]) + id[1:]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// gridlink runs the command line in-process and returns its status and
// output.
func gridlink(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// storedKey looks a secret up in the data directory's store.
func storedKey(t *testing.T, dir, secret string) (store.Key, error) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, dir, sqlite.Options{MetaOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	return st.KeyByHash(ctx, auth.Hash(secret))
}

var (
	secretRe = regexp.MustCompile(`(?m)^glk_[A-Za-z0-9_-]{43}$`)
	keyIDRe  = regexp.MustCompile(`\bkey_[0-9a-f]{16}\b`)
)

type keyRow struct {
	ID        string     `json:"id"`
	Site      string     `json:"site"`
	Scope     string     `json:"scope"`
	Name      string     `json:"name"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at"`
}

func TestKeysCreateListRevoke(t *testing.T) {
	dir := newSiteDir(t, "bristol", "athens")

	// create, text output
	code, out, errs := gridlink(t, "keys", "create", "--data", dir, "--site", "bristol", "--scope", "ingest", "--name", "gw-1")
	if code != 0 {
		t.Fatalf("keys create: status %d\n%s", code, errs)
	}
	secret := secretRe.FindString(out)
	if secret == "" {
		t.Fatalf("keys create printed no glk_ secret on a line of its own:\n%s", out)
	}
	ingestID := keyIDRe.FindString(out)
	if ingestID == "" {
		t.Fatalf("keys create printed no key id:\n%s", out)
	}
	if !strings.Contains(out, `"bristol"`) || !strings.Contains(out, "ingest") {
		t.Errorf("keys create does not say the site and scope:\n%s", out)
	}
	k, err := storedKey(t, dir, secret)
	if err != nil {
		t.Fatalf("the printed secret is not a stored key: %v", err)
	}
	if k.ID != ingestID || k.Site != "bristol" || k.Scope != "ingest" || k.Name != "gw-1" || k.Revoked() {
		t.Errorf("stored key %+v, want %s for bristol, ingest, gw-1, not revoked", k, ingestID)
	}

	// create, JSON output
	code, out, errs = gridlink(t, "keys", "create", "--data", dir, "--site", "athens", "--scope", "read:restricted", "--name", "dashboard", "--json")
	if code != 0 {
		t.Fatalf("keys create --json: status %d\n%s", code, errs)
	}
	var created struct{ ID, Key, Site, Scope, Name string }
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("keys create --json: %v\n%s", err, out)
	}
	if !strings.HasPrefix(created.Key, auth.SecretPrefix) || created.Site != "athens" ||
		created.Scope != "read:restricted" || created.Name != "dashboard" || !keyIDRe.MatchString(created.ID) {
		t.Errorf("keys create --json = %+v", created)
	}
	if k, err := storedKey(t, dir, created.Key); err != nil || k.ID != created.ID {
		t.Errorf("JSON secret looks up %+v, %v; want key %s", k, err, created.ID)
	}
	readID := created.ID

	// an admin key has no site
	if code, _, errs := gridlink(t, "keys", "create", "--data", dir, "--scope", "admin", "--name", "ops"); code != 0 {
		t.Fatalf("keys create --scope admin: status %d\n%s", code, errs)
	}

	// list, text: ids and names, never a secret
	code, out, errs = gridlink(t, "keys", "list", "--data", dir)
	if code != 0 {
		t.Fatalf("keys list: status %d\n%s", code, errs)
	}
	for _, want := range []string{ingestID, readID, "gw-1", "dashboard", "ops", "read:restricted"} {
		if !strings.Contains(out, want) {
			t.Errorf("keys list does not show %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, auth.SecretPrefix) {
		t.Errorf("keys list shows a secret:\n%s", out)
	}

	// revoke
	code, out, errs = gridlink(t, "keys", "revoke", ingestID, "--data", dir) // flags after the id
	if code != 0 {
		t.Fatalf("keys revoke: status %d\n%s", code, errs)
	}
	if !strings.Contains(out, ingestID) {
		t.Errorf("keys revoke does not name the key: %q", out)
	}

	// list, JSON: the revoked key has a revocation time, the others none
	code, out, errs = gridlink(t, "keys", "list", "--data", dir, "--json")
	if code != 0 {
		t.Fatalf("keys list --json: status %d\n%s", code, errs)
	}
	if strings.Contains(out, auth.SecretPrefix) {
		t.Errorf("keys list --json shows a secret:\n%s", out)
	}
	var rows []keyRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("keys list --json: %v\n%s", err, out)
	}
	if len(rows) != 3 {
		t.Fatalf("keys list --json: %d keys, want 3:\n%s", len(rows), out)
	}
	for _, r := range rows {
		if r.CreatedAt.IsZero() {
			t.Errorf("key %s has no creation time", r.ID)
		}
		if revoked := r.RevokedAt != nil; revoked != (r.ID == ingestID) {
			t.Errorf("key %s (%s): revoked_at %v", r.ID, r.Name, r.RevokedAt)
		}
	}
	if k, err := storedKey(t, dir, secret); err != nil || !k.Revoked() {
		t.Errorf("after revoke the stored key is %+v, %v; want revoked", k, err)
	}

	// the text list shows when it was revoked
	_, out, _ = gridlink(t, "keys", "list", "--data", dir)
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, ingestID) && strings.HasSuffix(strings.TrimSpace(line), " -") {
			t.Errorf("revoked key listed as not revoked: %q", line)
		}
	}
}

func TestKeysErrors(t *testing.T) {
	dir := newSiteDir(t, "bristol")
	tests := []struct {
		name string
		args []string
		code int
		want []string // substrings of stderr
	}{
		{"unknown site", []string{"create", "--site", "atlantis", "--scope", "ingest"}, 1, []string{"atlantis", "not found"}},
		{"bad scope", []string{"create", "--site", "bristol", "--scope", "superuser"}, 1, []string{`"superuser"`}},
		{"read key without a site", []string{"create", "--scope", "read"}, 1, []string{"needs a site"}},
		{"admin with a site", []string{"create", "--site", "bristol", "--scope", "admin"}, 1, []string{"admin", `"bristol"`}},
		{"malformed site id", []string{"create", "--site", "Bristol!", "--scope", "ingest"}, 1, []string{`"Bristol!"`}},
		{"revoke unknown id", []string{"revoke", "key_0123456789abcdef"}, 1, []string{"key_0123456789abcdef", "not found"}},
		{"revoke an id that looks like a flag", []string{"revoke", "--", "-key_1"}, 1, []string{`"-key_1"`, "not found"}},
		{"revoke two ids", []string{"revoke", "key_0123456789abcdef", "key_fedcba9876543210"}, 2, []string{"usage"}},
		{"revoke without id", []string{"revoke"}, 2, []string{"usage"}},
		{"no subcommand", nil, 2, []string{"create|list|revoke"}},
		{"unknown subcommand", []string{"rotate"}, 2, []string{`"rotate"`}},
		{"unknown flag", []string{"list", "--everything"}, 2, []string{"everything"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"keys"}
			if len(tt.args) > 0 {
				args = append(args, tt.args[0], "--data", dir)
				args = append(args, tt.args[1:]...)
			}
			code, out, errs := gridlink(t, args...)
			if code != tt.code {
				t.Fatalf("%q: status %d, want %d\nstdout:\n%s\nstderr:\n%s", args, code, tt.code, out, errs)
			}
			for _, w := range tt.want {
				if !strings.Contains(errs, w) {
					t.Errorf("%q: stderr does not contain %q:\n%s", args, w, errs)
				}
			}
			if strings.Contains(out, auth.SecretPrefix) {
				t.Errorf("%q failed but printed a secret:\n%s", args, out)
			}
		})
	}
	// None of the failures left a key behind.
	ctx := context.Background()
	st, err := sqlite.Open(ctx, dir, sqlite.Options{MetaOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, err := st.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("failed creates stored %d keys: %+v", len(keys), keys)
	}
	if _, err := st.Site(ctx, "atlantis"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("create for an unknown site made the site: %v", err)
	}
}
