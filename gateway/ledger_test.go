package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/device"
	"github.com/gridlink/gridlink/ledger"
	"github.com/gridlink/gridlink/profile"
)

// writeKey writes a fresh ledger key pair's private key to dir and
// returns its path and the public key.
func writeKey(t *testing.T, dir, name string) (path, public string) {
	t.Helper()
	private, public, err := ledger.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, name+".key")
	if err := os.WriteFile(path, []byte(private+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, public
}

func ledgerConfig(key string) string {
	return `
site: bristol
platform: {url: "https://cdmp.example.org", key: glk_x}
ledger: {key: ` + key + `}
devices:
  - {asset: house-01/meter, profile: eastron-sdm630, address: 192.168.1.10, ledger: true}
  - {asset: house-01/pv, profile: eastron-sdm630, address: 192.168.1.11}
`
}

func TestLedgerConfig(t *testing.T) {
	set, err := profile.Embedded(cim.Default())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key, _ := writeKey(t, dir, "gw-bristol-1")
	c, err := ParseConfig([]byte(ledgerConfig(key)), "hems.yaml", set)
	if err != nil {
		t.Fatal(err)
	}
	if c.Ledger == nil || c.Ledger.Key != key || !c.Devices[0].Ledger || c.Devices[1].Ledger {
		t.Fatalf("ledger config %+v, devices %+v", c.Ledger, c.Devices)
	}

	public := filepath.Join(dir, "public.key")
	os.WriteFile(public, []byte("gw+1234abcd+AAAA\n"), 0o600)
	junk := filepath.Join(dir, "junk.key")
	os.WriteFile(junk, []byte("PRIVATE+KEY+gw+nothex+!!!\n"), 0o600)
	cases := []struct{ in, want string }{
		{strings.Replace(ledgerConfig(key), "ledger: {key: "+key+"}\n", "", 1),
			`hems.yaml:5: devices[0].ledger: the device's readings are signed for the ledger: the gateway needs a ledger section`},
		{ledgerConfig(filepath.Join(dir, "missing.key")), `hems.yaml:4: ledger.key: ledger key: open `},
		{ledgerConfig(public), `hems.yaml:4: ledger.key: ledger key ` + public + `: not a private key`},
		{ledgerConfig(junk), `hems.yaml:4: ledger.key: ledger key ` + junk + `: malformed private key`},
		{strings.Replace(ledgerConfig(key), ", ledger: true}", "}", 1), `hems.yaml:4: ledger: no device has ledger: true`},
		{strings.Replace(ledgerConfig(key), "{key: "+key+"}", "{}", 1), `hems.yaml:4: ledger.key: missing key`},
		{strings.Replace(ledgerConfig(key), "{key: ", "{kee: ", 1), `hems.yaml:4: field kee not found`},
	}
	for _, c := range cases {
		_, err := ParseConfig([]byte(c.in), "hems.yaml", set)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v\nwant …%s…\nconfig:%s", err, c.want, c.in)
		}
		if err != nil && strings.Contains(err.Error(), "nothex") {
			t.Errorf("error shows the key: %v", err)
		}
	}
}

// TestLedgerSigner checks that the gateway signs exactly the ledger
// devices' readings, in order, leaving out health data, and that the
// signature verifies with the public key a platform registers.
func TestLedgerSigner(t *testing.T) {
	dir := t.TempDir()
	key, public := writeKey(t, dir, "gw-bristol-1")
	set, _ := profile.Embedded(cim.Default())
	cfg, err := ParseConfig([]byte(ledgerConfig(key)), "hems.yaml", set)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newLedgerSigner(cfg, cim.Default())
	if err != nil {
		t.Fatal(err)
	}
	rd := func(asset, q string, p cim.Phase, tm int64, v float64) cim.Reading {
		return cim.Reading{SeriesKey: cim.SeriesKey{Asset: asset, Quantity: q, Phase: p}, Point: cim.Point{Time: tm, Value: v}}
	}
	rs := []cim.Reading{
		rd("house-01/meter", "active_power", cim.PhaseL1, 1000, 1.5),
		rd("house-01/pv", "active_power", cim.PhaseTotal, 1000, 7),
		rd("house-01/meter", "heart_rate", cim.PhaseTotal, 1000, 72),
		rd("house-01/meter", "energy_active_import", cim.PhaseTotal, 1000, 12345.25),
	}
	h, err := s.sign(rs)
	if err != nil {
		t.Fatal(err)
	}
	name, sig, err := ledger.ParseSignatureHeader(h)
	if err != nil || name != "gw-bristol-1" {
		t.Fatalf("header %q: %s, %v", h, name, err)
	}
	d := ledger.NewBatchDigest()
	for _, i := range []int{0, 3} {
		r := rs[i]
		d.Add(ledger.Reading{Site: "bristol", Asset: r.Asset, Quantity: r.Quantity, Phase: string(r.Phase), Time: r.Time, Value: r.Value})
	}
	v, err := note.NewVerifier(public)
	if err != nil {
		t.Fatal(err)
	}
	if err := ledger.VerifyBatch(v, "bristol", 2, d.Sum(), sig); err != nil {
		t.Fatal(err)
	}
	// A changed value no longer verifies.
	rs[3].Value = 12345.5
	h2, _ := s.sign(rs)
	if _, sig2, _ := ledger.ParseSignatureHeader(h2); ledger.VerifyBatch(v, "bristol", 2, d.Sum(), sig2) == nil {
		t.Fatal("a changed reading still verifies")
	}
	// Nothing to sign: no header.
	if h, err := s.sign(rs[1:3]); h != "" || err != nil {
		t.Fatalf("only non-ledger readings: %q, %v", h, err)
	}
	if st := s.status(); st.Signer != "gw-bristol-1" || len(st.Assets) != 1 || st.Assets[0] != "house-01/meter" {
		t.Fatalf("status %+v", st)
	}
}

// BenchmarkLedgerSign signs a full uplink batch of 5000 readings, half of
// them of a ledger device.
func BenchmarkLedgerSign(b *testing.B) {
	dir := b.TempDir()
	private, _, _ := ledger.GenerateKey("gw-bench")
	key := filepath.Join(dir, "k")
	os.WriteFile(key, []byte(private), 0o600)
	cfg := Config{Site: "bristol", Ledger: &LedgerConfig{Key: key}}
	cfg.Devices = append(cfg.Devices, deviceConfig("house-01/meter", true), deviceConfig("house-01/pv", false))
	s, err := newLedgerSigner(cfg, cim.Default())
	if err != nil {
		b.Fatal(err)
	}
	rs := make([]cim.Reading, 5000)
	for i := range rs {
		asset := "house-01/meter"
		if i%2 == 1 {
			asset = "house-01/pv"
		}
		rs[i] = cim.Reading{SeriesKey: cim.SeriesKey{Asset: asset, Quantity: "active_power", Phase: cim.PhaseL1}, Point: cim.Point{Time: 1780000000000 + int64(i), Value: float64(i) / 3}}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.sign(rs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*2500/b.Elapsed().Seconds(), "signed_readings/s")
}

func deviceConfig(asset string, ledger bool) device.Config {
	return device.Config{Asset: asset, Profile: "eastron-sdm630", Address: "192.0.2.1", Ledger: ledger}
}
