package httpjson

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/gridlink/gridlink/device"
)

// tlsConfig builds the client TLS settings of a device: the system roots by
// default; cfg.CAFile as the only root; cfg.Fingerprint to pin the leaf
// certificate (self-signed devices such as the Powerwall gateway), which
// then replaces chain verification; cfg.Insecure to verify nothing.
func tlsConfig(cfg device.Config, log *slog.Logger) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" && cfg.Fingerprint != "" {
		return nil, errors.New("tls: set ca_file or fingerprint, not both")
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: ca_file %s holds no PEM certificate", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	if cfg.Fingerprint != "" {
		want, err := ParseFingerprint(cfg.Fingerprint)
		if err != nil {
			return nil, fmt.Errorf("tls: fingerprint: %w", err)
		}
		// The chain of a self-signed device cannot verify; the pin checks
		// the leaf instead, in VerifyConnection, which runs either way.
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("tls: the device sent no certificate")
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if !bytes.Equal(got[:], want) {
				return fmt.Errorf("tls: certificate fingerprint %s does not match the pinned %s", hex.EncodeToString(got[:]), hex.EncodeToString(want))
			}
			return nil
		}
		return tc, nil
	}
	if cfg.Insecure {
		log.Warn("TLS certificate verification is off for this device; pin its fingerprint instead", "address", cfg.Address)
		tc.InsecureSkipVerify = true
	}
	return tc, nil
}

// ParseFingerprint reads a SHA-256 certificate fingerprint written in hex,
// with or without colons or spaces (as browsers and openssl print it).
func ParseFingerprint(s string) ([]byte, error) {
	clean := strings.NewReplacer(":", "", " ", "", "-", "").Replace(strings.TrimSpace(s))
	b, err := hex.DecodeString(clean)
	if err != nil {
		return nil, fmt.Errorf("%q is not hex", s)
	}
	if len(b) != sha256.Size {
		return nil, fmt.Errorf("%q has %d bytes, want the %d of a SHA-256", s, len(b), sha256.Size)
	}
	return b, nil
}

// Fingerprint is the SHA-256 fingerprint of a DER certificate in hex, the
// form a device config's fingerprint takes.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}
