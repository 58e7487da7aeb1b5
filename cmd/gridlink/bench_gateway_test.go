//go:build !edge

package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/gateway"
	"github.com/gridlink/gridlink/profile"
)

// TestBenchGateway runs `gridlink bench gateway` on a few devices through
// the binary: a platform and simulators in one process, the gateway in a
// child, and checks the figures it reports.
func TestBenchGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a gateway for several seconds")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	// --sizes=false: cross-compiling three stripped binaries takes minutes
	// with a cold build cache; the run reports this executable instead.
	cmd := exec.CommandContext(t.Context(), binary, "bench", "gateway", "--devices", "4", "--for", "3s", "--warmup", "2s", "--json", "--sizes=false")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench gateway: %v\n%s", err, stderr.String())
	}
	var r gwBenchResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("output is not the JSON result: %v\n%s", err, out)
	}
	t.Logf("RSS %.1f MB, CPU %.2f %%, %d readings, %d/%d devices ok", r.RSSMaxMB, r.CPUPercent, r.Readings, r.DevicesOK, r.Devices)
	if r.Devices != 4 || r.Samples < 3 {
		t.Errorf("devices %d, RSS samples %d: want 4 devices and at least 3 samples", r.Devices, r.Samples)
	}
	if r.RSSMeanMB <= 0 || r.RSSMaxMB < r.RSSMeanMB || r.HWMMB < r.RSSMaxMB {
		t.Errorf("RSS mean %v, max %v, peak %v: want 0 < mean <= max <= peak", r.RSSMeanMB, r.RSSMaxMB, r.HWMMB)
	}
	if r.CPUSeconds < 0 || r.ClockTicks != 100 {
		t.Errorf("CPU %v s at %d ticks/s", r.CPUSeconds, r.ClockTicks)
	}
	if r.Readings <= 0 || r.UplinkSent <= 0 || r.Series <= 0 {
		t.Errorf("readings %d, uplink sent %d, series %d: want all positive", r.Readings, r.UplinkSent, r.Series)
	}
	if r.DevicesOK != 4 {
		t.Errorf("%d of 4 devices ok: %+v", r.DevicesOK, r.NotOK)
	}
	if !r.CleanExit {
		t.Errorf("the gateway did not exit cleanly on SIGTERM: %s", r.ExitError)
	}
	if len(r.Binaries) != 1 || r.Binaries[0].Stripped || r.Binaries[0].Bytes <= 0 {
		t.Errorf("binaries %+v: want this executable, not stripped", r.Binaries)
	}
	if len(r.Targets) != 2 {
		t.Errorf("targets %+v: want RSS and CPU (no stripped binary measured)", r.Targets)
	}
}

// TestBenchGatewayConfig checks that the hems.yaml the benchmark writes is
// a valid gateway configuration with every protocol of the mix and topics
// of their own for the MQTT devices.
func TestBenchGatewayConfig(t *testing.T) {
	cat := cim.Default()
	set, err := profile.Embedded(cat)
	if err != nil {
		t.Fatal(err)
	}
	devs, err := planDevices(2*len(gwBenchMix), set)
	if err != nil {
		t.Fatal(err)
	}
	for i := range devs {
		if devs[i].prof.Protocol == profile.HTTP {
			devs[i].cfg.Address = "http://127.0.0.1:8080"
		}
	}
	data := gatewayConfig(devs, 1e9, t.TempDir(), "http://127.0.0.1:1", "glk_x")
	cfg, err := gateway.ParseConfig(data, "hems.yaml", set)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if len(cfg.Devices) != len(devs) || cfg.Broker == nil || len(cfg.Broker.Users) != 6 {
		t.Fatalf("%d devices, broker %+v: want %d devices and 6 MQTT logins", len(cfg.Devices), cfg.Broker, len(devs))
	}
	protocols := map[profile.Protocol]bool{}
	topics := map[string]string{}
	for _, d := range devs[:5] {
		protocols[d.prof.Protocol] = true
	}
	for _, want := range []profile.Protocol{profile.Modbus, profile.HTTP, profile.Kasa, profile.MQTT} {
		if !protocols[want] {
			t.Errorf("the first 5 devices have no %s device", want)
		}
	}
	for _, d := range cfg.Devices {
		if d.Interval != 1e9 {
			t.Errorf("%s: interval %v", d.Asset, d.Interval)
		}
		p, _ := set.Get(d.Profile)
		if p.MQTT == nil {
			continue
		}
		for _, tp := range p.MQTT.Topics {
			topic := tp.Topic
			for k, v := range d.Vars {
				topic = strings.ReplaceAll(topic, "{"+k+"}", v)
			}
			if other, dup := topics[topic]; dup {
				t.Errorf("%s and %s both publish %s", other, d.Asset, topic)
			}
			topics[topic] = d.Asset
		}
	}
}

func TestParseProc(t *testing.T) {
	st, err := parseProcStat("4242 (gridlink (x) y) S 1 2 3 0 -1 4194304 103 0 0 0 1234 567 0 0 20 0 11 0 1681761 2998272 410")
	if err != nil || st.user != 1234 || st.sys != 567 {
		t.Errorf("stat: %+v, %v; want user 1234, sys 567", st, err)
	}
	if _, err := parseProcStat("4242 (gridlink"); err == nil {
		t.Error("stat without ')': no error")
	}
	m, err := parseProcStatus("Name:\tgridlink\nVmHWM:\t   32768 kB\nVmRSS:\t   30000 kB\nRssAnon:\t 12000 kB\nRssFile:\t 18000 kB\nThreads:\t11\n")
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if err != nil || !near(m.rss, 30.72) || !near(m.hwm, 32768*1024/1e6) || m.threads != 11 || !near(m.anon+m.file, m.rss) {
		t.Errorf("status: %+v, %v", m, err)
	}
	if _, err := parseProcStatus("Name:\tzombie\nState:\tZ (zombie)\n"); err == nil {
		t.Error("status without VmRSS: no error")
	}
}

// FuzzParseProc feeds arbitrary /proc/PID/stat and status text to the
// parsers: no panic, and what they accept is not negative.
func FuzzParseProc(f *testing.F) {
	f.Add("12223 (head) R 12180 12180 32335 0 -1 4194304 103 0 0 0 7 3 0 0 20 0 1 0 1681761 2998272 410 18446744073709551615")
	f.Add("1 (a) b) S 0 0 0 0 0 0 0 0 0 0 1 2 3")
	f.Add("Name:\thead\nVmHWM:\t    1708 kB\nVmRSS:\t    1708 kB\nRssAnon:\t     112 kB\nRssFile:\t    1596 kB\nThreads:\t1\n")
	f.Add("VmRSS:\t-5 kB\nThreads:")
	f.Fuzz(func(t *testing.T, s string) {
		if st, err := parseProcStat(s); err == nil && (st.user < 0 || st.sys < 0) {
			t.Errorf("stat %q: negative times %+v", s, st)
		}
		if m, err := parseProcStatus(s); err == nil && (m.rss < 0 || m.hwm < 0 || m.anon < 0 || m.file < 0 || m.threads < 0) {
			t.Errorf("status %q: negative figures %+v", s, m)
		}
	})
}
