package mqtt

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/device"
)

// testCert makes a CA and a server certificate for 127.0.0.1, written as
// PEM files into dir.
func testCert(t *testing.T, dir string) (caFile, certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gridlink test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pool = x509.NewCertPool()
	pool.AddCert(caCert)
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", leafDER), write("key.pem", "EC PRIVATE KEY", keyDER), pool
}

// TestMosquittoTLS: ssl:// to a real mosquitto with a TLS listener; the
// certificate is checked against the CA, and refused without it.
func TestMosquittoTLS(t *testing.T) {
	m := startMosquitto(t, "gx", "gxpass")
	dir := t.TempDir()
	ca, cert, key, pool := testCert(t, dir)
	tlsPort := freePort(t)
	conf, err := os.ReadFile(m.conf)
	if err != nil {
		t.Fatal(err)
	}
	// A second listener, with TLS; the password file is global.
	extra := fmt.Sprintf("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\n", tlsPort, ca, cert, key)
	if err := os.WriteFile(m.conf, append(conf, extra...), 0o600); err != nil {
		t.Fatal(err)
	}
	m.stop()
	m.start()

	ctx, cancel := context.WithTimeout(t.Context(), hang)
	defer cancel()
	url := fmt.Sprintf("ssl://gx:gxpass@127.0.0.1:%d", tlsPort)
	c, err := Dial(ctx, ClientConfig{URL: url, TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := startSubscriber(t, t.Context(), embeddedProfile(t, "victron-venus-mqtt"), device.Config{Vars: map[string]string{"portal": "78a504c59655"}}, c)
	// The real discharging capture (testdata/victron-venus-mqtt.txt).
	mustPub(t, m.addr(), "gx", "gxpass", "N/78a504c59655/system/0/Dc/Battery/Current", `{"value": -46.099998474121094}`)
	expect(t, cim.Default(), r.next(t), want{quantity: "battery_current", value: -46.099998474121094})

	// Without the CA the certificate is not trusted, and Dial says so
	// rather than retrying.
	if _, err := Dial(ctx, ClientConfig{URL: url}, nil); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Dial without the CA: %v", err)
	}
}
