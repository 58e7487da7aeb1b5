package gateway

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/ledger"
)

// LedgerStatus is what the status page shows of the ledger signing.
type LedgerStatus struct {
	Signer string   `json:"signer"` // the key's name: the signer id the platform knows
	Assets []string `json:"assets"` // the devices whose readings are signed
}

// ReadLedgerKey reads a note private key file written by `gridlink ledger
// keygen`. The error names the file, never the key.
func ReadLedgerKey(path string) (note.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ledger key: %w", err)
	}
	text := strings.TrimSpace(string(b))
	if !strings.HasPrefix(text, "PRIVATE+KEY+") {
		return nil, fmt.Errorf("ledger key %s: not a private key (want the PRIVATE+KEY+… file `gridlink ledger keygen` wrote)", path)
	}
	s, err := note.NewSigner(text)
	if err != nil {
		return nil, fmt.Errorf("ledger key %s: malformed private key", path)
	}
	return s, nil
}

// ledgerSigner signs the uplink's request bodies: the readings of the
// ledger devices' assets, in body order, except health data, which never
// enters the ledger (the platform leaves them out of the digest too).
type ledgerSigner struct {
	key    note.Signer
	site   string
	assets map[string]bool
	cat    *cim.Catalogue
}

func newLedgerSigner(cfg Config, cat *cim.Catalogue) (*ledgerSigner, error) {
	if cfg.Ledger == nil {
		return nil, nil
	}
	key, err := ReadLedgerKey(cfg.Ledger.Key)
	if err != nil {
		return nil, err
	}
	s := &ledgerSigner{key: key, site: cfg.Site, assets: map[string]bool{}, cat: cat}
	for _, d := range cfg.Devices {
		if d.Ledger {
			s.assets[d.Asset] = true
		}
	}
	if len(s.assets) == 0 {
		return nil, errors.New("ledger: a key but no device with ledger: true")
	}
	return s, nil
}

// sign implements uplink.Config.Sign. Each call starts its own digest, so
// that the uplink may sign from any goroutine.
func (s *ledgerSigner) sign(rs []cim.Reading) (string, error) {
	d := ledger.NewBatchDigest()
	for _, r := range rs {
		if !s.assets[r.Asset] {
			continue
		}
		if q, ok := s.cat.Lookup(r.Quantity); ok && q.Restricted() {
			continue
		}
		err := d.Add(ledger.Reading{Site: s.site, Asset: r.Asset, Quantity: r.Quantity, Phase: string(r.Phase), Time: r.Time, Value: r.Value})
		if err != nil {
			return "", fmt.Errorf("asset %s %s at %d: %w", r.Asset, r.Quantity, r.Time, err)
		}
	}
	if d.Count() == 0 {
		return "", nil
	}
	sig, err := ledger.SignBatch(s.key, s.site, d)
	if err != nil {
		return "", err
	}
	return ledger.FormatSignatureHeader(s.key.Name(), sig), nil
}

func (s *ledgerSigner) status() *LedgerStatus {
	if s == nil {
		return nil
	}
	st := &LedgerStatus{Signer: s.key.Name()}
	for a := range s.assets {
		st.Assets = append(st.Assets, a)
	}
	slices.Sort(st.Assets)
	return st
}
