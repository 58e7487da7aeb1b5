package ocpp

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
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/gridlink/gridlink/internal/logbuf"
)

// answer reads the next CALL, checks its action and payload, and answers it.
func (c *rawClient) answer(action, wantPayload, result string) {
	c.t.Helper()
	call := c.read()
	if len(call) != 4 || string(call[0]) != "2" || str(call[2]) != action {
		c.t.Fatalf("want CALL %s, got %s", action, joinRaw(call))
	}
	if wantPayload != "" && !jsonEqual(call[3], wantPayload) {
		c.t.Errorf("%s payload %s, want %s", action, call[3], wantPayload)
	}
	c.send(`[3,` + string(call[1]) + `,` + result + `]`)
}

func jsonEqual(a json.RawMessage, b string) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

// run calls f in a goroutine; the returned function waits for its error.
func run(f func() error) func() error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	return func() error { return <-done }
}

func TestCommands(t *testing.T) {
	e := start(t, Config{}, "CP-1")
	c := dialRaw(t, e, "CP-1")
	ctx := t.Context()
	// Commands go to chargers that have spoken (in the field: booted);
	// before its first message a charger may not be announced yet.
	wantResult(t, c.call(heartbeat), "hb", nil)

	var ok bool
	wait := run(func() (err error) { ok, err = e.cs.RemoteStartTransaction(ctx, "CP-1", "TAG-OK", 1); return })
	c.answer("RemoteStartTransaction", `{"idTag":"TAG-OK","connectorId":1}`, `{"status":"Accepted"}`)
	if err := wait(); err != nil || !ok {
		t.Errorf("RemoteStartTransaction %v %v", ok, err)
	}

	wait = run(func() (err error) { ok, err = e.cs.RemoteStopTransaction(ctx, "CP-1", 1700000000); return })
	c.answer("RemoteStopTransaction", `{"transactionId":1700000000}`, `{"status":"Rejected"}`)
	if err := wait(); err != nil || ok {
		t.Errorf("RemoteStopTransaction %v %v", ok, err)
	}

	wait = run(func() error {
		_, err := e.cs.GetConfiguration(ctx, "CP-1")
		return err
	})
	c.answer("GetConfiguration", `{}`, `{"configurationKey":[{"key":"MeterValueSampleInterval","readonly":false,"value":"60"},`+
		`{"key":"NumberOfConnectors","readonly":true,"value":"1"}],"unknownKey":[]}`)
	if err := wait(); err != nil {
		t.Fatal(err)
	}

	var status string
	wait = run(func() (err error) {
		status, err = e.cs.ChangeConfiguration(ctx, "CP-1", "MeterValueSampleInterval", "10")
		return
	})
	c.answer("ChangeConfiguration", `{"key":"MeterValueSampleInterval","value":"10"}`, `{"status":"Accepted"}`)
	if err := wait(); err != nil || status != "Accepted" {
		t.Errorf("ChangeConfiguration %q %v", status, err)
	}
	cfg, found := e.cs.Configuration("CP-1")
	if !found || len(cfg.Keys) != 2 || cfg.Keys[0] != (ConfigKey{"MeterValueSampleInterval", "10", false}) ||
		cfg.Keys[1] != (ConfigKey{"NumberOfConnectors", "1", true}) {
		t.Errorf("kept configuration %+v %v", cfg, found)
	}

	wait = run(func() (err error) { status, err = e.cs.TriggerMessage(ctx, "CP-1", "MeterValues", 1); return })
	c.answer("TriggerMessage", `{"requestedMessage":"MeterValues","connectorId":1}`, `{"status":"Accepted"}`)
	if err := wait(); err != nil || status != "Accepted" {
		t.Errorf("TriggerMessage %q %v", status, err)
	}

	wait = run(func() (err error) { ok, err = e.cs.Reset(ctx, "CP-1", true); return })
	c.answer("Reset", `{"type":"Hard"}`, `{"status":"Accepted"}`)
	if err := wait(); err != nil || !ok {
		t.Errorf("Reset %v %v", ok, err)
	}

	// A CALLERROR of the charger comes back as an error.
	wait = run(func() error { _, err := e.cs.Reset(ctx, "CP-1", false); return err })
	call := c.read()
	c.send(`[4,` + string(call[1]) + `,"InternalError","busy",{}]`)
	if err := wait(); err == nil {
		t.Error("CALLERROR answer gave no error")
	}

	// A charger that does not answer: the caller's deadline ends the wait.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := e.cs.Reset(short, "CP-1", false); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("unanswered Reset: %v", err)
	}

	if _, err := e.cs.Reset(ctx, "CP-404", false); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Reset of an unconnected charger: %v", err)
	}
}

// Security profile 2: basic auth over TLS.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certPEM, certFile, keyFile := selfSigned(t, dir)
	e := &env{sink: &memSink{}, sessions: &memSessions{}, logs: &logbuf.Buffer{}}
	cs, err := New(Config{CertFile: certFile, KeyFile: keyFile}, Deps{Registry: registered("CP-TLS"), Sink: e.sink})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := cs.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	e.cs, e.addr = cs, addr

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	d := websocket.Dialer{Subprotocols: []string{"ocpp1.6"}, TLSClientConfig: &tls.Config{RootCAs: pool}}
	conn, _, err := d.DialContext(t.Context(), "wss://"+addr+"/ocpp/CP-TLS", basicAuth("CP-TLS", testPassword))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &rawClient{t: t, conn: conn}
	wantResult(t, c.call(heartbeat), "hb", nil)

	if _, resp, err := d.DialContext(t.Context(), "wss://"+addr+"/ocpp/CP-TLS", basicAuth("CP-TLS", "wrong")); err == nil || resp.StatusCode != 401 {
		t.Errorf("wrong password over TLS: %v", err)
	}
}

func selfSigned(t *testing.T, dir string) (certPEM []byte, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gridlink test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPEM, certFile, keyFile
}
