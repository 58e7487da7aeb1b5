package ledger

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Keys are signed-note keys (golang.org/x/mod/sumdb/note, Ed25519): the
// private key text "PRIVATE+KEY+<name>+<hash>+<base64>" stays with its
// holder, the public key text "<name>+<hash>+<base64>" is what a platform
// registers for a signer and what a verifier trusts for checkpoints. The
// name is the signer's id.

// GenerateKey returns a new key pair named name.
func GenerateKey(name string) (private, public string, err error) {
	if err := checkName(name); err != nil {
		return "", "", err
	}
	return note.GenerateKey(rand.Reader, name)
}

// checkName applies note's rules for key names, with an error that says
// which rule.
func checkName(name string) error {
	if name == "" || strings.ContainsAny(name, "+ \t\n") || !isPrintable(name) {
		return fmt.Errorf("key name %q: must be non-empty printable text without spaces or '+'", name)
	}
	return nil
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// Reading is one reading as its signer saw it: the site and asset as
// named in the platform, the catalogue quantity, the phase ("" = total),
// the time in UTC Unix milliseconds and the value in the quantity's
// canonical unit.
type Reading struct {
	Site, Asset, Quantity, Phase string
	Time                         int64
	Value                        float64
}

// AppendCanonical appends the reading's canonical encoding, the bytes a
// signer commits to:
//
//	{"asset":A,"phase":P,"quantity":Q,"site":S,"time":T,"value":V}
//
// with P "total" for the total phase.
func (r Reading) AppendCanonical(b []byte) ([]byte, error) {
	phase := r.Phase
	if phase == "" {
		phase = "total"
	}
	var err error
	b = append(b, '{')
	for _, f := range [...]struct{ name, v string }{{"asset", r.Asset}, {"phase", phase}, {"quantity", r.Quantity}, {"site", r.Site}} {
		b = member(b, f.name, f.name == "asset")
		if b, err = appendString(b, f.v); err != nil {
			return b, fmt.Errorf("reading %s: %w", f.name, err)
		}
	}
	b = member(b, "time", false)
	b = strconv.AppendInt(b, r.Time, 10)
	b = member(b, "value", false)
	if b, err = appendNumber(b, r.Value); err != nil {
		return b, fmt.Errorf("reading value: %w", err)
	}
	return append(b, '}'), nil
}

// BatchDigest accumulates the digest a batch signature covers: SHA-256 of
// the concatenated SHA-256 hashes of the readings' canonical encodings, in
// the order they are sent. The zero value is not usable; use
// NewBatchDigest.
type BatchDigest struct {
	outer hash.Hash
	buf   []byte
	n     int
}

// NewBatchDigest starts an empty digest.
func NewBatchDigest() *BatchDigest {
	return &BatchDigest{outer: sha256.New(), buf: make([]byte, 0, 256)}
}

// Add adds the next reading.
func (d *BatchDigest) Add(r Reading) error {
	var err error
	d.buf, err = r.AppendCanonical(d.buf[:0])
	if err != nil {
		return err
	}
	h := sha256.Sum256(d.buf)
	d.outer.Write(h[:])
	d.n++
	return nil
}

// Count is the number of readings added.
func (d *BatchDigest) Count() int { return d.n }

// Sum is the digest of the readings added so far.
func (d *BatchDigest) Sum() [32]byte {
	var s [32]byte
	d.outer.Sum(s[:0])
	return s
}

// batchContext starts every signed batch message, so that a signature over
// a batch can never be taken for a signature over anything else.
const batchContext = "gridlink ledger batch v1\n"

// BatchMessage is the text a batch signature signs:
//
//	gridlink ledger batch v1
//	<site>
//	<count>
//	<base64 digest>
func BatchMessage(site string, count int, digest [32]byte) []byte {
	return []byte(batchContext + site + "\n" + strconv.Itoa(count) + "\n" + base64.StdEncoding.EncodeToString(digest[:]) + "\n")
}

// SignBatch signs the readings accumulated in d for a site.
func SignBatch(s note.Signer, site string, d *BatchDigest) ([]byte, error) {
	sig, err := s.Sign(BatchMessage(site, d.Count(), d.Sum()))
	if err != nil {
		return nil, fmt.Errorf("sign batch: %w", err)
	}
	return sig, nil
}

// ErrBadSignature is returned (wrapped) when a batch signature does not
// verify: the readings were altered or the signature forged.
var ErrBadSignature = errors.New("signature does not verify")

// VerifyBatch checks a batch signature over count readings with digest.
func VerifyBatch(v note.Verifier, site string, count int, digest [32]byte, sig []byte) error {
	if !v.Verify(BatchMessage(site, count, digest), sig) {
		return fmt.Errorf("batch of %d readings of site %q signed by %s: %w", count, site, v.Name(), ErrBadSignature)
	}
	return nil
}

// SignatureHeader is the HTTP header that carries a batch signature on
// POST /api/v1/batches: "<signer name> <base64 signature>".
const SignatureHeader = "Gridlink-Ledger-Signature"

// FormatSignatureHeader returns the header value for a signature.
func FormatSignatureHeader(signer string, sig []byte) string {
	return signer + " " + base64.StdEncoding.EncodeToString(sig)
}

// ParseSignatureHeader splits a header value into signer name and signature.
func ParseSignatureHeader(v string) (signer string, sig []byte, err error) {
	name, b64, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || checkName(name) != nil {
		return "", nil, fmt.Errorf("%s %q: want \"<signer> <base64 signature>\"", SignatureHeader, clip(v))
	}
	sig, err = base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil || len(sig) != 64 {
		return "", nil, fmt.Errorf("%s: signature of %s is not 64 bytes of base64", SignatureHeader, name)
	}
	return name, sig, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
