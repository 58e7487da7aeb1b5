//go:build !edge

package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pilotsDir holds the site files of the four pilot sites.
const pilotsDir = "../../examples/pilots"

// stderrText returns what the server has logged so far.
func (s *server) stderrText() string {
	lw := s.cmd.Stderr.(*lockedWriter)
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return s.stderr.String()
}

// stop sends sig to the server and returns its exit status once it has
// exited, failing the test if that takes more than 10 s.
func (s *server) stop(t *testing.T, sig os.Signal) int {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("gridlink serve still running 10 s after %v:\n%s", sig, s.stderrText())
	}
	return s.cmd.ProcessState.ExitCode()
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// siteIDs lists the sites the platform at base holds.
func siteIDs(t *testing.T, base, key string) []string {
	t.Helper()
	var reply struct {
		Sites []struct{ ID, Name string }
	}
	if code := call(t, "GET", base+"/api/v1/sites", key, nil, &reply); code != http.StatusOK {
		t.Fatalf("GET /api/v1/sites: status %d", code)
	}
	var ids []string
	for _, s := range reply.Sites {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	return ids
}

var pilotSites = []string{"athens", "benetutti", "bristol", "steinheim"}

// points returns the stored values of one series, in time order.
func points(t *testing.T, base, key, site, asset, quantity string) [][2]float64 {
	t.Helper()
	q := url.Values{"site": {site}, "asset": {asset}, "quantity": {quantity}}
	var got seriesReply
	if code := call(t, "GET", base+"/api/v1/readings?"+q.Encode(), key, nil, &got); code != http.StatusOK {
		t.Fatalf("GET /api/v1/readings?%s: status %d", q.Encode(), code)
	}
	var pts [][2]float64
	for _, s := range got.Series {
		pts = append(pts, s.Points...)
	}
	return pts
}

// TestServePilotsAndAdminKey starts the platform with the pilot sites: the
// first start makes and prints the admin key and writes it to admin.key
// (0600); later starts on the same data directory make none.
func TestServePilotsAndAdminKey(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, AdminKeyFile)

	first := startServer(t, "--data", dir, "--sites", pilotsDir)
	if !secretRe.MatchString(first.key) {
		t.Fatalf("first start printed no admin key (got %q)", first.key)
	}
	fi, err := os.Stat(keyFile)
	if err != nil {
		t.Fatalf("admin key file: %v", err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("%s has mode %#o, want 0600", AdminKeyFile, perm)
	}
	saved, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(saved) != first.key+"\n" {
		t.Errorf("%s holds %q, printed key %q", AdminKeyFile, saved, first.key)
	}
	if got := siteIDs(t, first.url, first.key); !slices.Equal(got, pilotSites) {
		t.Errorf("sites %q, want %q", got, pilotSites)
	}
	var assets struct{ Assets []struct{ ID, Type string } }
	if code := call(t, "GET", first.url+"/api/v1/sites/bristol/assets", first.key, nil, &assets); code != http.StatusOK {
		t.Fatalf("GET bristol assets: status %d", code)
	}
	if !slices.ContainsFunc(assets.Assets, func(a struct{ ID, Type string }) bool {
		return a.ID == "house-01/meter" && a.Type == "smart_meter"
	}) {
		t.Errorf("bristol assets lack house-01/meter: %+v", assets.Assets)
	}
	if code := call(t, "GET", first.url+"/api/v1/sites", "", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/sites without a key: status %d, want 401", code)
	}
	if strings.Contains(first.stderrText(), first.key) {
		t.Error("the admin key was written to the log")
	}
	if code := first.stop(t, os.Interrupt); code != 0 {
		t.Fatalf("exit status %d after SIGINT:\n%s", code, first.stderrText())
	}

	// Second start: no new key, the first still works, the sites are
	// loaded again without being doubled.
	second := startServer(t, "--data", dir, "--sites", pilotsDir)
	if second.key != "" {
		t.Errorf("second start printed a key: %q", second.key)
	}
	if again, _ := os.ReadFile(keyFile); string(again) != string(saved) {
		t.Errorf("second start rewrote %s", AdminKeyFile)
	}
	if got := siteIDs(t, second.url, first.key); !slices.Equal(got, pilotSites) {
		t.Errorf("after restart: sites %q, want %q", got, pilotSites)
	}
	if code := second.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit status %d after SIGTERM:\n%s", code, second.stderrText())
	}

	// The store holds a valid admin key, so a lost admin.key is not
	// replaced by a new one.
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	third := startServer(t, "--data", dir)
	if third.key != "" {
		t.Errorf("start without admin.key but with an admin key in the store printed a key: %q", third.key)
	}
	if _, err := os.Stat(keyFile); err == nil {
		t.Errorf("start without admin.key wrote a new one")
	}
}

// TestServeConfigFile starts the platform from a config file; the
// --listen flag wins over the file's unusable address.
func TestServeConfigFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	sites, err := filepath.Abs(pilotsDir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, fmt.Sprintf("data: %q\nsites: %q\nlisten: 256.0.0.1:1\nlog_level: warn\n", dir, sites))

	srv := startServer(t, "--config", cfg) // startServer adds --listen 127.0.0.1:0
	if srv.key == "" {
		t.Fatal("first start printed no admin key")
	}
	if _, err := os.Stat(filepath.Join(dir, AdminKeyFile)); err != nil {
		t.Errorf("admin key not in the config file's data directory: %v", err)
	}
	if got := siteIDs(t, srv.url, srv.key); !slices.Equal(got, pilotSites) {
		t.Errorf("sites %q, want %q (from the config file's sites)", got, pilotSites)
	}
	if code := srv.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit status %d:\n%s", code, srv.stderrText())
	}
	if log := srv.stderrText(); strings.Contains(log, "level=INFO") {
		t.Errorf("log_level warn in the config file, yet info lines were logged:\n%s", log)
	}
}

// selfSigned writes a self-signed ECDSA certificate for 127.0.0.1 and its
// key as PEM files, and returns them with a pool that trusts the
// certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: "gridlink test"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}

func TestServeTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	srv := startServer(t, "--data", t.TempDir(), "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(srv.url, "https://127.0.0.1:") {
		t.Fatalf("printed URL %q, want https://127.0.0.1:PORT", srv.url)
	}

	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := client.Get(srv.url + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz over TLS: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Fatalf("GET /healthz over TLS: status %d, TLS %v: %s", resp.StatusCode, resp.TLS != nil, body)
	}
	if resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("TLS version %#x, want at least 1.2", resp.TLS.Version)
	}

	// An authenticated call over the same connection.
	req, _ := http.NewRequest("GET", srv.url+"/api/v1/sites", nil)
	req.Header.Set("Authorization", "Bearer "+srv.key)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /api/v1/sites over TLS: status %d", resp.StatusCode)
	}

	// A client that does not trust the certificate is refused, and plain
	// HTTP gets no answer from the API.
	if resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(srv.url + "/healthz"); err == nil {
		resp.Body.Close()
		t.Error("a client without the certificate got a reply")
	}
	plain := "http://" + strings.TrimPrefix(srv.url, "https://") + "/healthz"
	if resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(plain); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP to the TLS port got 200")
		}
	}
}

// TestServeGracefulShutdown sends SIGTERM while a batch upload is
// streaming in: the upload completes, its readings are stored, and the
// process exits with status 0.
func TestServeGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, "--data", dir, "--sites", pilotsDir)

	pr, pw := io.Pipe()
	defer pw.Close()
	// The client holds the body back until the server answers "100
	// Continue", which it does when the handler starts reading: from then
	// on the request is in flight, deterministically.
	handling := make(chan struct{})
	var once sync.Once
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got100Continue: func() { once.Do(func() { close(handling) }) },
	})
	req, err := http.NewRequestWithContext(ctx, "POST", srv.url+"/api/v1/batches?site=bristol", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+srv.key)
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("Expect", "100-continue")
	tr := &http.Transport{ExpectContinueTimeout: time.Minute}
	defer tr.CloseIdleConnections()

	type result struct {
		status int
		body   []byte
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{resp.StatusCode, b, err}
	}()
	select {
	case <-handling:
	case r := <-done:
		t.Fatalf("upload ended before it was sent: %+v %s", r, r.body)
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not start reading the upload within 10 s")
	}

	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, `"shutting down" in the log`, func() bool {
		return strings.Contains(srv.stderrText(), "shutting down")
	})
	select {
	case <-srv.exited:
		t.Fatalf("exited with a request in flight:\n%s", srv.stderrText())
	default:
	}

	// The rest of the upload arrives after the signal, in two parts.
	const n = 2000
	base := time.Now().Add(-time.Hour).UnixMilli()
	for part := range 2 {
		var b strings.Builder
		for i := part * n / 2; i < (part+1)*n/2; i++ {
			fmt.Fprintf(&b, "house-01/meter,active_power,%d,%d\n", base+int64(i)*1000, i)
		}
		if _, err := io.WriteString(pw, b.String()); err != nil {
			t.Fatalf("write upload part %d: %v\n%s", part, err, srv.stderrText())
		}
		time.Sleep(100 * time.Millisecond)
	}
	pw.Close()

	var r result
	select {
	case r = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("no reply to the upload within 20 s")
	}
	if r.err != nil || r.status != http.StatusOK {
		t.Fatalf("upload during shutdown: status %d, err %v: %s\n%s", r.status, r.err, r.body, srv.stderrText())
	}
	var rep uploadReport
	if err := json.Unmarshal(r.body, &rep); err != nil {
		t.Fatalf("reply %s: %v", r.body, err)
	}
	if rep.Rows != n || rep.Accepted != n {
		t.Errorf("upload during shutdown: %+v, want %d rows accepted", rep, n)
	}

	select {
	case <-srv.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10 s after SIGTERM and the last request:\n%s", srv.stderrText())
	}
	if code := srv.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit status %d after SIGTERM:\n%s", code, srv.stderrText())
	}

	// Every acknowledged reading is there after a restart.
	again := startServer(t, "--data", dir)
	pts := points(t, again.url, srv.key, "bristol", "house-01/meter", "active_power")
	if len(pts) != n {
		t.Fatalf("%d readings stored, want %d", len(pts), n)
	}
	for i, p := range pts {
		if int64(p[0]) != base+int64(i)*1000 || p[1] != float64(i) {
			t.Fatalf("reading %d is (%v, %v), want (%d, %d)", i, p[0], p[1], base+int64(i)*1000, i)
		}
	}
}
