//go:build !edge

package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/profile"
	"github.com/gridlink/gridlink/sim"
	"github.com/gridlink/gridlink/store/sqlite"
)

// ledgerCases are the seed's ledger test cases: the asset each is about and
// the profile of the simulated device that stands for it.
var ledgerCases = []struct {
	itc, asset, profile string
}{
	{"ITC1.02", "house-01/meter", "eastron-sdm630"},    // smart meter
	{"ITC4.02", "house-01/plug-01", "kasa-kp115"},      // energy asset
	{"ITC5.02", "house-01/door", "shelly-dw2-http"},    // environmental sensor
	{"ITC6.02", "house-01/battery", "alphaess-smile5"}, // home battery
}

// TestITCLedger does what the seed's ITC1.02, ITC4.02, ITC5.02 and ITC6.02
// ask: the readings of a smart meter, an energy asset, an environmental
// sensor and a home battery reach the ledger, value for value, per
// measuring cycle. A gateway signs them; the platform checks the signature
// and logs them; the values in the ledger are compared with what each
// simulated device held at each cycle, and `gridlink ledger verify` checks
// the whole log. Then an operator changes a stored reading behind the
// platform's back, and verify must name it.
func TestITCLedger(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run")
	}
	const cycle = time.Second
	cat := cim.Default()
	set, err := profile.Embedded(cat)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	// The gateway's key.
	keyFile := filepath.Join(dir, "gateway-ledger.key")
	out, err := exec.Command(binary, "ledger", "keygen", "--name", "bristol-house-01", "--out", keyFile).Output()
	if err != nil {
		t.Fatalf("ledger keygen: %v", err)
	}
	vkey := lastLine(string(out))
	if !strings.HasPrefix(vkey, "bristol-house-01+") {
		t.Fatalf("ledger keygen printed %q, want the public key", out)
	}

	// The platform, with the four assets marked for the ledger.
	var site strings.Builder
	site.WriteString("site: {id: bristol, name: Bristol, country: GB, timezone: Europe/London}\nassets:\n")
	devs := map[string]*e2eDevice{}
	for _, c := range ledgerCases {
		p, ok := set.Get(c.profile)
		if !ok {
			t.Fatalf("no profile %s", c.profile)
		}
		devs[c.asset] = &e2eDevice{asset: c.asset, profile: c.profile, proto: p.Protocol, vars: profileVars(p)}
		fmt.Fprintf(&site, "  - {id: %s, type: %s, ledger: true}\n", c.asset, p.AssetType)
	}
	siteDir := filepath.Join(dir, "sites")
	os.MkdirAll(siteDir, 0o755)
	os.WriteFile(filepath.Join(siteDir, "bristol.yaml"), []byte(site.String()), 0o644)
	platData := filepath.Join(dir, "platform")
	platAddr := freeAddr(t)
	plat := startServer(t, "--data", platData, "--sites", siteDir, "--listen", platAddr)
	admin := plat.key
	var created struct{ Key string }
	if code := call(t, "POST", plat.url+"/api/v1/keys", admin, map[string]any{"name": "gw", "site": "bristol", "scope": "ingest"}, &created); code != http.StatusCreated {
		t.Fatalf("create ingest key: status %d", code)
	}
	if code := call(t, "POST", plat.url+"/api/v1/sites/bristol/signers", admin, map[string]any{"public_key": vkey}, nil); code/100 != 2 {
		t.Fatalf("register the gateway's key: status %d", code)
	}

	// Simulators and the gateway.
	var sims, hems strings.Builder
	sims.WriteString("cycle: 1s\nseed: 11\ntruth: 127.0.0.1:0\ndevices:\n")
	for _, c := range ledgerCases {
		d := devs[c.asset]
		vars, _ := json.Marshal(d.vars)
		fmt.Fprintf(&sims, "  - {asset: %s, profile: %s, address: '127.0.0.1:0', username: user, password: password-123, vars: %s}\n", d.asset, d.profile, vars)
	}
	simsFile := filepath.Join(dir, "sims.yaml")
	os.WriteFile(simsFile, []byte(sims.String()), 0o644)
	simProc := startProc(t, "sim", "sim", "--config", simsFile)
	truthBase := simProc.expect(regexp.MustCompile(`^truth on (http://\S+)/truth`))[1]
	simRE := regexp.MustCompile(`^sim (\S+) profile=\S+ protocol=\S+ addr=(\S+)`)
	for range ledgerCases {
		m := simProc.expect(simRE)
		devs[m[1]].addr = m[2]
	}
	statusAddr := freeAddr(t)
	fmt.Fprintf(&hems, "site: bristol\ndata: %s\nplatform: {url: %q, key: %q}\nstatus: {listen: %q}\nledger: {key: %q}\ndevices:\n",
		filepath.Join(dir, "gateway"), plat.url, created.Key, statusAddr, keyFile)
	for _, c := range ledgerCases {
		d := devs[c.asset]
		vars, _ := json.Marshal(d.vars)
		addr := d.addr
		if d.proto == profile.HTTP {
			addr = "http://" + addr
		}
		fmt.Fprintf(&hems, "  - {asset: %s, profile: %s, address: %q, interval: 500ms, username: user, password: password-123, vars: %s, ledger: true}\n",
			d.asset, d.profile, addr, vars)
	}
	hemsFile := filepath.Join(dir, "hems.yaml")
	os.WriteFile(hemsFile, []byte(hems.String()), 0o644)
	gw := startProc(t, "gateway", "gateway", "--config", hemsFile)
	gw.expect(regexp.MustCompile(`^status page on`))

	status := func() gatewayStatus {
		var s gatewayStatus
		resp, err := http.Get("http://" + statusAddr + "/status?format=json")
		if err != nil {
			return s
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(&s)
		return s
	}
	waitFor(t, 60*time.Second, "every device read and sent", func() bool {
		s := status()
		if len(s.Devices) != len(ledgerCases) || s.Uplink.State != "ok" {
			return false
		}
		for _, d := range s.Devices {
			if d.State != "ok" || d.Readings == 0 {
				return false
			}
		}
		return true
	})
	from := time.Now().Add(cycle)
	time.Sleep(8 * cycle)
	to := time.Now().Add(-cycle)
	waitFor(t, 30*time.Second, "the queue to drain", func() bool {
		s := status()
		return s.Queue.Readings == 0 && s.Uplink.State == "ok"
	})
	gw.signal(syscall.SIGTERM)

	// Per case: the ledger holds the device's value of every cycle.
	ledgerReadings := ledgerEntries(t, plat.url, admin)
	for _, c := range ledgerCases {
		t.Run(c.itc, func(t *testing.T) {
			d := devs[c.asset]
			truth, err := sim.FetchTruth(t.Context(), truthBase, d.asset, from.Add(-time.Minute), to.Add(time.Minute))
			if err != nil {
				t.Fatalf("truth of %s: %v", d.asset, err)
			}
			var got []cim.Reading
			for _, r := range ledgerReadings {
				if r.Asset == d.asset {
					got = append(got, r)
				}
			}
			checkDevice(t, d, truth, got, [][2]time.Time{{from, to}}, cycle)
			t.Logf("%s %s (%s): %d readings in the ledger", c.itc, d.asset, d.profile, len(got))
		})
	}
	simProc.signal(syscall.SIGTERM)

	// The whole log verifies.
	code, logKey := getText(t, plat.url+"/api/v1/ledger/key")
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/ledger/key: %d %s", code, logKey)
	}
	logKey = strings.TrimSpace(logKey)
	state := filepath.Join(dir, "verify-state")
	verify := func() (string, int) {
		cmd := exec.Command(binary, "ledger", "verify", "--platform", plat.url, "--key", admin, "--log-key", logKey, "--state", state)
		b, _ := cmd.CombinedOutput()
		return string(b), cmd.ProcessState.ExitCode()
	}
	if out, code := verify(); code != 0 {
		t.Fatalf("ledger verify of an untouched platform: exit %d:\n%s", code, out)
	}

	// Tamper: with the platform stopped, change one stored reading of the
	// meter straight in the store; verify must name it.
	victim := firstOf(ledgerReadings, "house-01/meter")
	plat.stop(t, syscall.SIGTERM)
	st, err := sqlite.Open(context.Background(), platData, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	victim.Value += 1
	if _, err := st.Write(context.Background(), "bristol", []cim.Reading{victim}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	plat = startServer(t, "--data", platData, "--listen", platAddr)
	out2, code2 := verify()
	if code2 == 0 || !strings.Contains(out2, "house-01/meter") || !strings.Contains(out2, victim.Quantity) {
		t.Fatalf("ledger verify after a stored reading was changed: exit %d:\n%s", code2, out2)
	}
	t.Logf("verify caught the change:\n%s", tail(out2, 1500))
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// ledgerEntries reads every reading entry of the ledger through the API,
// as readable records.
func ledgerEntries(t *testing.T, base, key string) []cim.Reading {
	t.Helper()
	var out []cim.Reading
	for from := int64(0); ; from += 10000 {
		var page struct {
			Entries []struct {
				Index    int64  `json:"index"`
				Kind     string `json:"kind"`
				Data     string `json:"data"`
				Readable *struct {
					Asset    string  `json:"asset"`
					Quantity string  `json:"quantity"`
					Phase    string  `json:"phase"`
					Time     int64   `json:"time"`
					Value    float64 `json:"value"`
				} `json:"readable"`
			} `json:"entries"`
		}
		if code := call(t, "GET", fmt.Sprintf("%s/api/v1/ledger/entries?from=%d&to=%d", base, from, from+10000), key, nil, &page); code != http.StatusOK {
			t.Fatalf("ledger entries from %d: status %d", from, code)
		}
		for _, e := range page.Entries {
			if e.Kind != "reading" || e.Readable == nil {
				continue
			}
			if _, err := base64.StdEncoding.DecodeString(e.Data); err != nil {
				t.Fatalf("entry %d: data is not base64: %v", e.Index, err)
			}
			r := e.Readable
			phase := cim.Phase(r.Phase)
			if r.Phase == "total" {
				phase = cim.PhaseTotal
			}
			out = append(out, cim.Reading{SeriesKey: cim.SeriesKey{Asset: r.Asset, Quantity: r.Quantity, Phase: phase}, Point: cim.Point{Time: r.Time, Value: r.Value}})
		}
		if len(page.Entries) < 10000 {
			return out
		}
	}
}

func firstOf(rs []cim.Reading, asset string) cim.Reading {
	for _, r := range rs {
		if r.Asset == asset {
			return r
		}
	}
	return cim.Reading{}
}
