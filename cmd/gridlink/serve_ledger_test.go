//go:build !edge

package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/ledger"
	"github.com/gridlink/gridlink/platform"
	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/sqlite"
)

func getText(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

// TestServeLedgerKey: the first start makes the log key (0600, named
// gridlink-ledger-<6 hex>) and serves its public key; a restart keeps it.
func TestServeLedgerKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, LedgerKeyFile)
	first := startServer(t, "--data", dir)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("ledger key file: %v", err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("%s has mode %#o, want 0600", LedgerKeyFile, perm)
	}
	saved, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, vkey, err := parseLedgerKey(saved)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^gridlink-ledger-[0-9a-f]{6}\+[0-9a-f]{8}\+`).MatchString(vkey) {
		t.Errorf("log key %q is not named gridlink-ledger-<6 hex>", vkey)
	}
	if code, body := getText(t, first.url+"/api/v1/ledger/key"); code != 200 || body != vkey+"\n" {
		t.Errorf("GET /api/v1/ledger/key: %d %q, want %q", code, body, vkey)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	code, cp := getText(t, first.url+"/api/v1/ledger/checkpoint")
	if _, _, _, err := ledger.OpenCheckpoint([]byte(cp), ledger.DefaultOrigin, v); code != 200 || err != nil {
		t.Errorf("GET /api/v1/ledger/checkpoint: %d %q: %v", code, cp, err)
	}
	if code := first.stop(t, os.Interrupt); code != 0 {
		t.Fatalf("exit status %d:\n%s", code, first.stderrText())
	}

	second := startServer(t, "--data", dir, "--ledger-origin", "test/ledger")
	if again, _ := os.ReadFile(path); string(again) != string(saved) {
		t.Errorf("second start rewrote %s", LedgerKeyFile)
	}
	if _, body := getText(t, second.url+"/api/v1/ledger/key"); body != vkey+"\n" {
		t.Errorf("after restart the log key is %q, want %q", body, vkey)
	}
	second.stop(t, os.Interrupt)

	// A witness key that is none: serve refuses to start and says which.
	cmd := exec.Command(binary, "serve", "--listen", "127.0.0.1:0", "--data", dir, "--ledger-witness", "w+nonsense")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--ledger-witness") || !strings.Contains(string(out), "w+nonsense") {
		t.Errorf("serve with a bad witness key: %v\n%s", err, out)
	}
}

func TestParseLedgerKey(t *testing.T) {
	// Many keys: their base64 holds '+' now and then.
	for range 200 {
		priv, pub, err := ledger.GenerateKey("node-a")
		if err != nil {
			t.Fatal(err)
		}
		key, vkey, err := parseLedgerKey([]byte("\n" + priv + "\n"))
		if err != nil || vkey != pub || key.Name() != "node-a" {
			t.Fatalf("parseLedgerKey(%q): %q, %v; want %q", priv, vkey, err, pub)
		}
	}
	priv, pub, _ := ledger.GenerateKey("node-a")
	for _, bad := range []string{"", pub, "PRIVATE+KEY+x+00000000+AAAA", strings.Replace(priv, "PRIVATE+KEY+node-a+", "PRIVATE+KEY+node-b+", 1)} {
		if _, _, err := parseLedgerKey([]byte(bad)); err == nil {
			t.Errorf("parseLedgerKey(%q) accepted", bad)
		}
	}
}

// TestSealOnceAndOCPPWrite: the readings a charge point sends through the
// OCPP path are signed with the log key and logged, and the sealer records
// the ledger assets' 15-minute energy from the stored readings.
func TestSealOnceAndOCPPWrite(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	api, err := platform.New(platform.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	priv, _, _ := ledger.GenerateKey("serve-test")
	key, vkey, err := parseLedgerKey([]byte(priv))
	if err != nil {
		t.Fatal(err)
	}
	lg, err := ledger.New(st, ledger.Config{Key: key, Grace: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	if err := api.SetLedger(platform.LedgerConfig{Log: lg, Key: key, PublicKey: vkey}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutSite(ctx, cim.Site{ID: "bristol", Name: "Bristol"}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutAsset(ctx, cim.Asset{Site: "bristol", ID: "evse-01", Type: cim.ChargingPoint, Ledger: true}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(15 * time.Minute)
	start := now.Add(-time.Hour).UnixMilli()
	var rs []cim.Reading
	// A reading every quarter hour from an hour ago: the three intervals
	// after the first end ahead of now and grew by 250 Wh each (the first
	// has no reading before it; the last reading's interval has not ended).
	for i := range 5 {
		rs = append(rs, cim.Reading{SeriesKey: cim.SeriesKey{Asset: "evse-01", Quantity: "ev_energy_register"},
			Point: cim.Point{Time: start + int64(i)*15*60_000, Value: float64(1000 + 250*i)}})
	}
	d := ocppDeps{st: st, api: api, now: time.Now}
	if err := d.Write(ctx, "bristol", rs); err != nil {
		t.Fatal(err)
	}
	if n, _ := st.LedgerSize(ctx); n != 6 {
		t.Fatalf("ledger size %d after the OCPP write, want 5 readings and their batch", n)
	}
	n, err := sealOnce(ctx, lg, st, now.Add(2*time.Minute))
	if err != nil || n == 0 {
		t.Fatalf("sealOnce: %d, %v", n, err)
	}
	es, err := st.LedgerEntries(ctx, 6, 6+int64(n))
	if err != nil {
		t.Fatal(err)
	}
	wh := 0.0
	for _, e := range es {
		if e.Kind != ledger.KindEnergy || e.Asset != "evse-01" {
			t.Errorf("entry %d: %+v", e.Index, e)
		}
		wh += e.Value
	}
	if wh != 750 {
		t.Errorf("sealed %g Wh over %d entries, want 750", wh, n)
	}
	// Nothing changed: a second run adds nothing.
	if n, err := sealOnce(ctx, lg, st, now.Add(2*time.Minute)); err != nil || n != 0 {
		t.Errorf("second sealOnce: %d, %v", n, err)
	}
	// runSealer stops with its context.
	sctx, cancel := context.WithCancel(ctx)
	cancel()
	runSealer(sctx, lg, st, time.Hour, slog.New(slog.DiscardHandler))
	var _ store.Ledger = st
}

// FuzzParseLedgerKey: a key file of any content is refused with an error
// or gives a signer whose derived public key verifies its signatures.
func FuzzParseLedgerKey(f *testing.F) {
	priv, pub, _ := ledger.GenerateKey("seed")
	f.Add(priv)
	f.Add(pub)
	f.Add("PRIVATE+KEY+a+00000000+AQ==")
	f.Add("PRIVATE+KEY+++")
	f.Fuzz(func(t *testing.T, data string) {
		key, vkey, err := parseLedgerKey([]byte(data))
		if err != nil {
			return
		}
		v, err := note.NewVerifier(vkey)
		if err != nil {
			t.Fatalf("derived public key %q: %v", vkey, err)
		}
		sig, err := key.Sign([]byte("msg"))
		if err != nil || !v.Verify([]byte("msg"), sig) {
			t.Fatalf("derived public key %q does not verify the key's signature (%v)", vkey, err)
		}
	})
}

// TestStartLedgerWarnsOfAnotherKey: a node whose log key did not sign the
// store's latest checkpoint says so (nodes must share the key).
func TestStartLedgerWarnsOfAnotherKey(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, dir, sqlite.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	start := func(keyFile string) string {
		api, err := platform.New(platform.Config{Store: st})
		if err != nil {
			t.Fatal(err)
		}
		defer api.Close()
		var out strings.Builder
		cfg := defaultServeConfig()
		cfg.Data, cfg.LedgerKey = dir, keyFile
		lg, err := startLedger(ctx, cfg, st, api, &out, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lg.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		lg.Close()
		return out.String()
	}
	if out := start(""); !strings.Contains(out, "ledger log key gridlink-ledger-") || strings.Contains(out, "warning") {
		t.Errorf("first start printed %q", out)
	}
	if out := start(""); strings.Contains(out, "warning") || strings.Contains(out, "created") {
		t.Errorf("second start with the same key printed %q", out)
	}
	if out := start(filepath.Join(dir, "other.key")); !strings.Contains(out, "warning") || !strings.Contains(out, "--ledger-key") {
		t.Errorf("start with another key printed %q", out)
	}
}
