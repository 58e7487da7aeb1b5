//go:build !edge

package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/device"
	"github.com/gridlink/gridlink/kasa"
	"github.com/gridlink/gridlink/profile"
	"github.com/gridlink/gridlink/sim"
)

// proc is a running gridlink process of a test.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	lines  chan string // stdout, line by line
	stderr *lockedWriter
	buf    *bytes.Buffer
	exited chan struct{}
}

// startProc runs gridlink with args; it is killed at the end of the test.
func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, cmd: exec.Command(binary, args...), lines: make(chan string, 1024), buf: &bytes.Buffer{}, exited: make(chan struct{})}
	p.stderr = &lockedWriter{w: p.buf}
	p.cmd.Stderr = p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	go func() { p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("%s stderr (tail):\n%s", p.name, tail(p.stderrText(), 4000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func (p *proc) stderrText() string {
	p.stderr.mu.Lock()
	defer p.stderr.mu.Unlock()
	return p.buf.String()
}

// expect reads stdout until a line matches re and returns its submatches.
func (p *proc) expect(re *regexp.Regexp) []string {
	p.t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("%s exited before printing %s:\n%s", p.name, re, tail(p.stderrText(), 4000))
			}
			if m := re.FindStringSubmatch(line); m != nil {
				return m
			}
		case <-deadline:
			p.t.Fatalf("%s did not print %s within 60 s:\n%s", p.name, re, tail(p.stderrText(), 4000))
		}
	}
}

// signal stops the process with sig and waits for it to exit.
func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		p.t.Fatalf("%s still running 20 s after %v", p.name, sig)
	}
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// profileVars gives every {var} a profile uses a value, unique per
// profile: the devices share one broker.
func profileVars(p *profile.Profile) map[string]string {
	vars := map[string]string{}
	for _, name := range p.Placeholders() {
		vars[name] = name + "-" + p.Name
	}
	return vars
}

// e2eDevice is one simulated device of the end-to-end test.
type e2eDevice struct {
	asset, profile string
	proto          profile.Protocol
	vars           map[string]string
	addr           string // where its simulator serves
}

// TestGatewayEndToEnd runs the platform, a gateway and simulators of every
// shipped device profile as separate processes, takes the platform down for
// a while and kills the gateway with SIGKILL in the middle, and then checks
// that the platform holds exactly the values the simulated devices held at
// each measuring cycle: no value different, no cycle missing while the
// gateway ran (the platform outage included), no reading doubled.
func TestGatewayEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run takes about a minute")
	}
	const cycle = time.Second
	cat := cim.Default()
	set, err := profile.Embedded(cat)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	var devs []*e2eDevice
	for _, p := range set.All() {
		devs = append(devs, &e2eDevice{asset: "dev/" + p.Name, profile: p.Name, proto: p.Protocol, vars: profileVars(p)})
	}

	// The platform, with a site holding one asset per device.
	var site strings.Builder
	site.WriteString("site: {id: e2e, name: End to end, country: GB, timezone: Europe/London}\nassets:\n")
	for _, d := range devs {
		p, _ := set.Get(d.profile)
		typ := p.AssetType
		if typ == "" {
			typ = cim.SmartMeter
		}
		fmt.Fprintf(&site, "  - {id: %s, type: %s}\n", d.asset, typ)
	}
	siteDir := filepath.Join(dir, "sites")
	os.MkdirAll(siteDir, 0o755)
	os.WriteFile(filepath.Join(siteDir, "e2e.yaml"), []byte(site.String()), 0o644)
	platData := filepath.Join(dir, "platform")
	platAddr := freeAddr(t)
	plat := startServer(t, "--data", platData, "--sites", siteDir, "--listen", platAddr)
	admin := plat.key
	var created struct{ Key string }
	if code := call(t, "POST", plat.url+"/api/v1/keys", plat.key, map[string]any{"name": "gw", "site": "e2e", "scope": "ingest"}, &created); code != http.StatusCreated {
		t.Fatalf("create ingest key: status %d", code)
	}

	// Simulators of the polled devices.
	var polled, pushed strings.Builder
	head := "cycle: 1s\nseed: 7\ntruth: 127.0.0.1:0\ndevices:\n"
	polled.WriteString(head)
	pushed.WriteString(head)
	brokerAddr := freeAddr(t)
	for _, d := range devs {
		vars, _ := json.Marshal(d.vars)
		if d.proto == profile.MQTT {
			fmt.Fprintf(&pushed, "  - {asset: %s, profile: %s, address: 'tcp://%s', username: %q, password: secret-%s, vars: %s}\n",
				d.asset, d.profile, brokerAddr, d.profile, d.profile, vars)
			continue
		}
		fmt.Fprintf(&polled, "  - {asset: %s, profile: %s, address: '127.0.0.1:0', username: user, password: password-123, token: token-123, vars: %s}\n",
			d.asset, d.profile, vars)
	}
	polledFile, pushedFile := filepath.Join(dir, "sims-polled.yaml"), filepath.Join(dir, "sims-pushed.yaml")
	os.WriteFile(polledFile, []byte(polled.String()), 0o644)
	os.WriteFile(pushedFile, []byte(pushed.String()), 0o644)
	simsPolled := startProc(t, "sim (polled)", "sim", "--config", polledFile)
	truthRE := regexp.MustCompile(`^truth on (http://\S+)/truth`)
	simRE := regexp.MustCompile(`^sim (\S+) profile=\S+ protocol=\S+ addr=(\S+)`)
	truthPolled := simsPolled.expect(truthRE)[1]
	byAsset := map[string]*e2eDevice{}
	for _, d := range devs {
		byAsset[d.asset] = d
	}
	for range len(devs) - strings.Count(pushed.String(), "\n  - ") {
		m := simsPolled.expect(simRE)
		byAsset[m[1]].addr = m[2]
	}

	// The gateway, with an embedded broker the MQTT devices publish to.
	var hems strings.Builder
	statusAddr := freeAddr(t)
	fmt.Fprintf(&hems, "site: e2e\ndata: %s\nplatform: {url: %q, key: %q, batch_size: 500}\nstatus: {listen: %q}\n",
		filepath.Join(dir, "gateway"), plat.url, created.Key, statusAddr)
	fmt.Fprintf(&hems, "broker:\n  listen: %q\n  users:\n", brokerAddr)
	for _, d := range devs {
		if d.proto == profile.MQTT {
			fmt.Fprintf(&hems, "    - {username: %q, password: secret-%s}\n", d.profile, d.profile)
		}
	}
	hems.WriteString("devices:\n")
	for _, d := range devs {
		vars, _ := json.Marshal(d.vars)
		addr := d.addr
		switch d.proto {
		case profile.MQTT:
			addr = "embedded"
		case profile.HTTP:
			addr = "http://" + addr
		}
		fmt.Fprintf(&hems, "  - {asset: %s, profile: %s, address: %q, interval: 500ms, username: user, password: password-123, token: token-123, vars: %s}\n",
			d.asset, d.profile, addr, vars)
	}
	hemsFile := filepath.Join(dir, "hems.yaml")
	os.WriteFile(hemsFile, []byte(hems.String()), 0o644)
	startGateway := func() *proc {
		gw := startProc(t, "gateway", "gateway", "--config", hemsFile)
		gw.expect(regexp.MustCompile(`^status page on`))
		return gw
	}
	gw := startGateway()
	simsPushed := startProc(t, "sim (mqtt)", "sim", "--config", pushedFile)
	truthPushed := simsPushed.expect(truthRE)[1]

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
	allOK := func() bool {
		s := status()
		if len(s.Devices) != len(devs) {
			return false
		}
		for _, d := range s.Devices {
			if d.State != "ok" || d.Readings == 0 {
				return false
			}
		}
		return true
	}
	waitFor(t, 60*time.Second, "every device read", allOK)
	var windows [][2]time.Time // spans in which every cycle must be in the platform
	upFrom := time.Now().Add(cycle)
	time.Sleep(4 * cycle)

	// The platform goes away; the gateway queues.
	plat.stop(t, syscall.SIGTERM)
	time.Sleep(4 * cycle)
	waitFor(t, 10*time.Second, "the uplink to notice", func() bool { return status().Uplink.State != "ok" })
	queued := status().Queue.Readings
	plat = startServer(t, "--data", platData, "--listen", platAddr)
	time.Sleep(3 * cycle)

	// A power cut of the gateway.
	killedAt := time.Now()
	gw.signal(syscall.SIGKILL)
	windows = append(windows, [2]time.Time{upFrom, killedAt.Add(-cycle)})
	gw = startGateway()
	waitFor(t, 60*time.Second, "every device read after the restart", allOK)
	upFrom = time.Now().Add(cycle)
	time.Sleep(5 * cycle)
	upTo := time.Now().Add(-cycle)
	windows = append(windows, [2]time.Time{upFrom, upTo})
	waitFor(t, 120*time.Second, "the queue to drain", func() bool {
		s := status()
		return s.Uplink.State == "ok" && s.Queue.Readings == 0 && time.Now().After(upTo.Add(2*cycle))
	})
	t.Logf("%d readings queued during the platform outage", queued)
	if queued == 0 {
		t.Error("nothing was queued while the platform was down")
	}

	// Compare what the platform holds with what the devices held.
	from, to := windows[0][0].Add(-time.Minute), upTo.Add(time.Minute)
	var truth []sim.CycleRecord
	for _, base := range []string{truthPolled, truthPushed} {
		for _, d := range devs {
			recs, err := sim.FetchTruth(t.Context(), base, d.asset, from, to)
			if err != nil {
				t.Fatalf("truth of %s: %v", d.asset, err)
			}
			truth = append(truth, recs...)
		}
	}
	simsPolled.signal(syscall.SIGTERM)
	simsPushed.signal(syscall.SIGTERM)
	got := platformReadings(t, plat.url, admin, "e2e", from, to)
	all := sim.Compare(truth, got, sim.Tolerance{Boundary: 250 * time.Millisecond, Relative: 1e-6})
	t.Logf("%d devices, %d readings in the platform: %d matched the device's value, %d differ; checked windows %s–%s and %s–%s",
		len(devs), len(got), all.Matched, len(all.Mismatches),
		windows[0][0].Format("15:04:05"), windows[0][1].Format("15:04:05"), windows[1][0].Format("15:04:05"), windows[1][1].Format("15:04:05"))
	for _, d := range devs {
		var dt []sim.CycleRecord
		for _, c := range truth {
			if c.Asset == d.asset {
				dt = append(dt, c)
			}
		}
		var dg []cim.Reading
		for _, r := range got {
			if r.Asset == d.asset {
				dg = append(dg, r)
			}
		}
		checkDevice(t, d, dt, dg, windows, cycle)
	}
}

// gatewayStatus is the part of the gateway's /status the test reads.
type gatewayStatus struct {
	Uplink struct {
		State string `json:"state"`
	} `json:"uplink"`
	Queue struct {
		Readings int64 `json:"readings"`
	} `json:"queue"`
	Devices []struct {
		Asset    string `json:"asset"`
		State    string `json:"state"`
		Readings int64  `json:"readings"`
	} `json:"devices"`
}

// platformReadings fetches every reading of a site in [from, to) as CSV.
func platformReadings(t *testing.T, base, key, site string, from, to time.Time) []cim.Reading {
	t.Helper()
	q := url.Values{"site": {site}, "from": {from.UTC().Format(time.RFC3339Nano)}, "to": {to.UTC().Format(time.RFC3339Nano)}, "format": {"csv"}}
	req, _ := http.NewRequest("GET", base+"/api/v1/readings?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET readings: %d %s", resp.StatusCode, b)
	}
	rd := csv.NewReader(resp.Body)
	header, err := rd.Read()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	var out []cim.Reading
	for {
		rec, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ms, err := strconv.ParseInt(rec[col["time"]], 10, 64)
		if err != nil {
			tm, perr := time.Parse(time.RFC3339Nano, rec[col["time"]])
			if perr != nil {
				t.Fatalf("time %q: %v", rec[col["time"]], perr)
			}
			ms = tm.UnixMilli()
		}
		v, _ := strconv.ParseFloat(rec[col["value"]], 64)
		ph, _ := cim.ParsePhase(rec[col["phase"]])
		out = append(out, cim.Reading{SeriesKey: cim.SeriesKey{Asset: rec[col["asset"]], Quantity: rec[col["quantity"]], Phase: ph}, Point: cim.Point{Time: ms, Value: v}})
	}
	return out
}

// checkDevice checks one device: every reading the platform holds is the
// value the device held in that cycle, and in the windows the gateway ran
// every cycle of every series is there. Polled devices are read twice a
// cycle, as a gateway reads a meter faster than it updates so that a late
// poll cannot skip a cycle; readings are unique per series and time (the
// platform's idempotent key), so a re-sent batch cannot double one.
func checkDevice(t *testing.T, d *e2eDevice, truth []sim.CycleRecord, got []cim.Reading, windows [][2]time.Time, cycle time.Duration) {
	t.Helper()
	if len(truth) == 0 {
		t.Errorf("%s: the simulator recorded no cycles", d.asset)
		return
	}
	cmp := sim.Compare(truth, got, sim.Tolerance{Boundary: 250 * time.Millisecond, Relative: 1e-6})
	if len(cmp.Mismatches) > 0 {
		t.Errorf("%s (%s): %d of %d readings differ from the device, e.g. %+v", d.asset, d.profile, len(cmp.Mismatches), len(got), cmp.Mismatches[0])
	}
	// Per series, which cycles the platform holds, and how often.
	type key struct {
		cim.SeriesKey
		cycle int64
	}
	count := map[key]int{}
	series := map[cim.SeriesKey]bool{}
	for _, r := range got {
		count[key{r.SeriesKey, r.Time / cycle.Milliseconds()}]++
		series[r.SeriesKey] = true
	}
	for sk := range series {
		for _, w := range windows {
			var missing []int64
			for c := w[0].UnixMilli()/cycle.Milliseconds() + 1; c < w[1].UnixMilli()/cycle.Milliseconds(); c++ {
				switch n := count[key{sk, c}]; {
				case n == 0:
					missing = append(missing, c)
				case n > 3: // polled twice a cycle; a third when a poll is late
					t.Errorf("%s %s %s: cycle %d holds %d readings", d.asset, sk.Quantity, sk.Phase, c, n)
				}
			}
			if len(missing) > 0 {
				t.Errorf("%s %s %s: %d cycles missing in %s–%s, e.g. %v", d.asset, sk.Quantity, sk.Phase, len(missing),
					w[0].Format("15:04:05.000"), w[1].Format("15:04:05.000"), missing[:min(5, len(missing))])
			}
		}
	}
	if len(series) == 0 {
		t.Errorf("%s (%s): the platform holds no reading", d.asset, d.profile)
	}
}

// TestGatewayCheck validates the example configuration, and names the line
// and field of a bad one.
func TestGatewayCheck(t *testing.T) {
	code, out, errOut := gridlink(t, "gateway", "--config", "../../examples/gateway/hems.yaml", "--check")
	if code != 0 || !strings.Contains(out, "4 devices, configuration and profiles are valid") {
		t.Fatalf("example config: exit %d\n%s%s", code, out, errOut)
	}
	bad := writeFile(t, "hems.yaml", "site: bristol\nplatform: {url: 'http://x', key: k}\ndevices:\n  - {asset: a/b, profile: shelly-plug-z, address: 10.0.0.2}\n")
	code, _, errOut = gridlink(t, "gateway", "--config", bad, "--check")
	if code != 1 || !strings.Contains(errOut, `hems.yaml:4: devices[0].profile: profile "shelly-plug-z" is not known`) {
		t.Errorf("bad config: exit %d, stderr %s", code, errOut)
	}
	badProfile := t.TempDir()
	os.WriteFile(filepath.Join(badProfile, "m.yaml"), []byte("name: my-meter\nprotocol: modbus\nmodbus:\n  points:\n    - {register: 3, type: int16, quantity: power}\n"), 0o644)
	cfg := writeFile(t, "hems2.yaml", "site: bristol\nplatform: {url: 'http://x', key: k}\nprofiles: "+badProfile+"\ndevices:\n  - {asset: a/b, profile: my-meter, address: 10.0.0.2}\n")
	code, _, errOut = gridlink(t, "gateway", "--config", cfg, "--check")
	if code != 1 || !strings.Contains(errOut, `m.yaml:5: modbus.points[0].quantity: quantity "power" is not in the catalogue`) {
		t.Errorf("bad profile: exit %d, stderr %s", code, errOut)
	}
}

// TestSimOneDevice runs `gridlink sim PROFILE` and reads the simulated plug
// over its protocol with the gateway's connector: the values are the
// truth endpoint's.
func TestSimOneDevice(t *testing.T) {
	code, out, _ := gridlink(t, "sim", "--list")
	if code != 0 || !strings.Contains(out, "kasa-kp115") || !strings.Contains(out, "alphaess-smile5") {
		t.Fatalf("sim --list: exit %d\n%s", code, out)
	}
	p := startProc(t, "sim", "sim", "kasa-kp115", "--asset", "h/plug", "--truth", "127.0.0.1:0", "--cycle", "500ms")
	truthURL := p.expect(regexp.MustCompile(`^truth on (http://\S+)/truth`))[1]
	addr := p.expect(regexp.MustCompile(`^sim h/plug profile=kasa-kp115 protocol=kasa addr=(\S+)`))[1]
	waitFor(t, 10*time.Second, "a recorded cycle", func() bool {
		recs, err := sim.FetchTruth(t.Context(), truthURL, "h/plug", time.Now().Add(-time.Minute), time.Now().Add(time.Minute))
		return err == nil && len(recs) > 0
	})
	cat := cim.Default()
	set, _ := profile.Embedded(cat)
	prof, _ := set.Get("kasa-kp115")
	poller, err := kasa.NewPoller(prof, device.Config{Asset: "h/plug", Address: addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer poller.Close()
	var got []cim.Reading
	for range 3 {
		at := time.Now()
		vals, err := poller.Poll(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			in := cim.Input{Asset: "h/plug", Quantity: v.Quantity, Phase: string(v.Phase), Unit: v.Unit, Time: at.UnixMilli(), Value: v.Value}
			if v.State != "" {
				q, _ := cat.Lookup(v.Quantity)
				in.Value, _ = q.ParseValue(v.State)
			}
			r, err := cat.Normalize(in, at)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, r)
		}
		time.Sleep(300 * time.Millisecond)
	}
	recs, err := sim.FetchTruth(t.Context(), truthURL, "h/plug", time.Now().Add(-time.Minute), time.Now().Add(time.Minute))
	if err != nil || len(recs) == 0 {
		t.Fatalf("truth: %v, %d cycles", err, len(recs))
	}
	if len(recs[0].Values) != 5 {
		t.Errorf("a KP115 holds 5 values (power, voltage, current, energy, relay), truth has %+v", recs[0].Values)
	}
	cmp := sim.Compare(recs, got, sim.Tolerance{Boundary: 100 * time.Millisecond})
	if len(cmp.Mismatches) > 0 || cmp.Matched != len(got) || len(got) != 15 {
		t.Errorf("%d readings, %d matched the truth: %s", len(got), cmp.Matched, cmp.String())
	}
}
