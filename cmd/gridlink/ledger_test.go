//go:build !edge

package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/gridlink/gridlink/ledger"
)

// runCLI runs gridlink in this process and returns its exit status and
// output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestLedgerKeygen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gw.key")
	code, out, stderr := runCLI(t, "ledger", "keygen", "--name", "gw-bristol-1", "--out", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if _, err := note.NewVerifier(lines[len(lines)-1]); err != nil || !strings.HasPrefix(lines[len(lines)-1], "gw-bristol-1+") {
		t.Fatalf("last line is not the public key: %q", out)
	}
	if code, _, stderr := runCLI(t, "ledger", "keygen", "--name", "gw-bristol-1", "--out", path); code != 1 || !strings.Contains(stderr, "never overwritten") {
		t.Fatalf("overwrite: exit %d %s", code, stderr)
	}
	if code, _, _ := runCLI(t, "ledger", "keygen", "--name", "bad name", "--out", path+"2"); code != 1 {
		t.Fatalf("bad name: exit %d", code)
	}
	if code, _, _ := runCLI(t, "ledger", "keygen"); code != 2 {
		t.Fatalf("no flags: exit %d", code)
	}
}

// TestLedgerVerifyAndWitness runs the platform as a process with a
// witness configured, sends signed readings, and runs ledger verify and
// ledger witness against it; then a rolled-back state makes verify fail.
func TestLedgerVerifyAndWitness(t *testing.T) {
	dir := t.TempDir()
	gwKey, witKey := filepath.Join(dir, "gw.key"), filepath.Join(dir, "witness.key")
	pub := map[string]string{}
	for name, path := range map[string]string{"gw-bristol-1": gwKey, "witness-athens": witKey} {
		code, out, stderr := runCLI(t, "ledger", "keygen", "--name", name, "--out", path)
		if code != 0 {
			t.Fatalf("keygen: %s", stderr)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		pub[name] = lines[len(lines)-1]
	}
	data := filepath.Join(dir, "data")
	s := startServer(t, "--data", data, "--ledger-witness", pub["witness-athens"])
	admin := s.key
	if call(t, "POST", s.url+"/api/v1/sites", admin, map[string]any{"id": "bristol", "name": "Bristol"}, nil) >= 300 ||
		call(t, "POST", s.url+"/api/v1/sites/bristol/assets", admin, map[string]any{"id": "house-01/meter", "type": "smart_meter", "ledger": true}, nil) >= 300 ||
		call(t, "POST", s.url+"/api/v1/sites/bristol/signers", admin, map[string]any{"public_key": pub["gw-bristol-1"]}, nil) >= 300 {
		t.Fatal("setting up the site failed")
	}
	gw, err := readSigner(gwKey)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-3 * time.Hour).Truncate(time.Hour).UnixMilli()
	var body bytes.Buffer
	d := ledger.NewBatchDigest()
	for i := range 12 {
		tm, v := base+int64(i)*5*60_000, 1000+float64(i)*2.5
		body.WriteString(`{"asset":"house-01/meter","quantity":"energy_active_import","time":` + strconv.FormatInt(tm, 10) + `,"value":` + strconv.FormatFloat(v, 'g', -1, 64) + "}\n")
		d.Add(ledger.Reading{Site: "bristol", Asset: "house-01/meter", Quantity: "energy_active_import", Time: tm, Value: v})
	}
	sig, err := ledger.SignBatch(gw, "bristol", d)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", s.url+"/api/v1/batches?site=bristol", &body)
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set(ledger.SignatureHeader, ledger.FormatSignatureHeader(gw.Name(), sig))
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("batch: %v %v", res.Status, err)
	}
	res.Body.Close()
	// The platform checkpoints the grown log within seconds.
	_, logPub := getText(t, s.url+"/api/v1/ledger/key")
	logPub = strings.TrimSpace(logPub)
	logV, err := note.NewVerifier(logPub)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, cp := getText(t, s.url+"/api/v1/ledger/checkpoint")
		if size, _, _, err := ledger.OpenCheckpoint([]byte(cp), ledger.DefaultOrigin, logV); err == nil && size == 13 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint of the 13 entries: %s", cp)
		}
		time.Sleep(100 * time.Millisecond)
	}

	state := filepath.Join(dir, "verify.state")
	code, out, stderr := runCLI(t, "ledger", "verify", "--platform", s.url, "--key", admin, "--log-key", logPub, "--state", state, "--quiet")
	if code != 0 || !strings.Contains(out, "13 entries (12 readings, 1 batches, 0 energy, 0 hidden)") || !strings.Contains(out, "0 problems") || !strings.Contains(out, "state saved") {
		t.Fatalf("verify: exit %d\n%s%s", code, out, stderr)
	}
	wstate := filepath.Join(dir, "witness", "state")
	code, out, stderr = runCLI(t, "ledger", "witness", "--platform", s.url, "--key", witKey, "--log-key", logPub, "--state", wstate, "--once")
	if code != 0 || !strings.Contains(out, "cosigned the checkpoint of 13 entries") {
		t.Fatalf("witness: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = runCLI(t, "ledger", "verify", "--platform", s.url, "--key", admin, "--log-key", logPub, "--witness", pub["witness-athens"], "--state", state, "--quiet")
	if code != 0 || !strings.Contains(out, "extends the 13 verified before") {
		t.Fatalf("verify with the witness: exit %d\n%s%s", code, out, stderr)
	}

	// A state from a longer log (signed with the platform's own key, as
	// a verifier would have seen before a rollback): exit status 1.
	logKey, err := os.ReadFile(filepath.Join(data, LedgerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := parseLedgerKey(logKey)
	if err != nil {
		t.Fatal(err)
	}
	longer, err := note.Sign(&note.Note{Text: string(ledger.FormatCheckpoint(ledger.DefaultOrigin, 20, tlog.RecordHash([]byte("x"))))}, signer)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(state, longer, 0o644)
	code, out, _ = runCLI(t, "ledger", "verify", "--platform", s.url, "--key", admin, "--log-key", logPub, "--state", state, "--quiet")
	if code != 1 || !strings.Contains(out, "log: log rolled back: the checkpoint has 13 entries, fewer than the 20 verified before") {
		t.Fatalf("rolled back: exit %d\n%s", code, out)
	}
}

func readSigner(path string) (note.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return note.NewSigner(strings.TrimSpace(string(b)))
}
