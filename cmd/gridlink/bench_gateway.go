//go:build !edge

package main

// `gridlink bench gateway` measures the gateway's footprint: it runs a
// platform and simulated devices in this process and the gateway as a child
// process, so that the resident memory and CPU time read from /proc are the
// gateway's alone.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/device"
	"github.com/gridlink/gridlink/mqtt"
	"github.com/gridlink/gridlink/platform"
	"github.com/gridlink/gridlink/platform/auth"
	"github.com/gridlink/gridlink/profile"
	"github.com/gridlink/gridlink/sim"
	"github.com/gridlink/gridlink/store"
)

// gwBenchMix is the device mix of the benchmark, cycled through: Modbus,
// SunSpec, HTTP, Kasa and MQTT devices of the pilot sites, interleaved so
// that a few devices already cover every protocol.
var gwBenchMix = []string{
	"alphaess-smile5", "shelly-plug-s-http", "kasa-kp115", "shelly-plug-s-mqtt",
	"eastron-sdm630", "shelly-em-http", "emonpi-emonhub",
	"transformer-box", "zwave-aeotec-ms6", "sunspec-inverter",
}

// Footprint targets of the issue (Raspberry Pi Zero).
const (
	gwTargetRSSMB    = 20.0
	gwTargetCPU      = 2.0
	gwTargetBinaryMB = 25.0
	// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat:
	// sysconf(_SC_CLK_TCK) is 100 on every Linux architecture Go supports.
	clockTicks = 100
	// gwSimCycle is the simulators' measuring cycle, as `gridlink sim`'s.
	gwSimCycle = time.Second
)

// gwBenchConfig says what `gridlink bench gateway` measures.
type gwBenchConfig struct {
	devices  int
	window   time.Duration
	warmup   time.Duration
	interval time.Duration
	jsonOut  bool
	quiet    bool
	sizes    bool
	keep     string
	gogc     string // GOGC of the child; empty inherits
	memLimit string // GOMEMLIMIT of the child; empty inherits
	exe      string // the gateway binary; empty means this executable
}

// gwBenchResult is what one run measured.
type gwBenchResult struct {
	Machine        gwMachine `json:"machine"`
	Devices        int       `json:"devices"`
	Interval       string    `json:"interval"`
	WindowSeconds  float64   `json:"window_seconds"`
	GatewayBinary  string    `json:"gateway_binary,omitempty"` // when not this executable
	ChildEnv       []string  `json:"child_env,omitempty"`
	Samples        int       `json:"rss_samples"`
	RSSMeanMB      float64   `json:"rss_mean_mb"`
	RSSMaxMB       float64   `json:"rss_max_mb"`
	RSSAnonMB      float64   `json:"rss_anon_mb"` // at the end of the window
	RSSFileMB      float64   `json:"rss_file_mb"` // mapped binary and libraries
	HWMMB          float64   `json:"vm_hwm_mb"`   // peak RSS since the child started
	Threads        int       `json:"threads"`
	CPUSeconds     float64   `json:"cpu_seconds"`
	CPUUserSeconds float64   `json:"cpu_user_seconds"`
	CPUSysSeconds  float64   `json:"cpu_system_seconds"`
	CPUPercent     float64   `json:"cpu_percent_of_one_core"`
	ClockTicks     int       `json:"clock_ticks_per_second"`
	Series         int       `json:"series"`
	Readings       int64     `json:"readings_received"`
	ReadingsPerSec float64   `json:"readings_per_second"`
	Expected       int64     `json:"readings_expected"`
	UplinkSent     int64     `json:"uplink_sent_in_window"`
	DevicesOK      int       `json:"devices_ok"`
	NotOK          []gwDev   `json:"devices_not_ok,omitempty"`
	CleanExit      bool      `json:"clean_exit"`
	ExitError      string    `json:"exit_error,omitempty"`
	Binaries       []gwBin   `json:"binaries"`
	BinaryNote     string    `json:"binary_note,omitempty"`
	Targets        []gwGoal  `json:"targets"`
}

// gwMachine describes where the figures were measured.
type gwMachine struct {
	OS       string  `json:"os"`
	Arch     string  `json:"arch"`
	CPUs     int     `json:"cpus"`
	CPUModel string  `json:"cpu_model,omitempty"`
	MemoryGB float64 `json:"memory_gb,omitempty"`
	Go       string  `json:"go"`
}

// gwDev is a device that was not "ok" at the end, or sent nothing.
type gwDev struct {
	Asset     string `json:"asset"`
	Profile   string `json:"profile"`
	State     string `json:"state"`
	Readings  int64  `json:"readings_in_window"`
	LastError string `json:"last_error,omitempty"`
}

// gwBin is the size of one build of the binary.
type gwBin struct {
	Target   string  `json:"target"`
	Bytes    int64   `json:"bytes"`
	MB       float64 `json:"mb"`
	Stripped bool    `json:"stripped"`
}

// gwGoal is one footprint target and whether it was met.
type gwGoal struct {
	Name    string  `json:"name"`
	Target  float64 `json:"target"`
	Reached float64 `json:"reached"`
	Met     bool    `json:"met"`
}

// runBenchGateway is `gridlink bench gateway`.
func runBenchGateway(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c gwBenchConfig
	fs := flag.NewFlagSet("bench gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.devices, "devices", 50, "number of simulated `devices` the gateway reads")
	fs.DurationVar(&c.window, "for", 60*time.Second, "measuring time after the warm-up")
	fs.DurationVar(&c.warmup, "warmup", 10*time.Second, "time the gateway runs before measuring")
	fs.DurationVar(&c.interval, "interval", time.Second, "poll interval of every device")
	fs.BoolVar(&c.jsonOut, "json", false, "print the results as JSON")
	fs.BoolVar(&c.quiet, "quiet", false, "no progress bar")
	fs.BoolVar(&c.sizes, "sizes", true, "cross-compile stripped binaries to report their sizes (needs the go command)")
	fs.StringVar(&c.keep, "keep", "", "`directory` to keep the run's files in (hems.yaml, gateway.log, platform store); default a temporary one, removed after")
	fs.StringVar(&c.gogc, "gogc", "", "GOGC `value` for the gateway process only (default: inherited)")
	fs.StringVar(&c.memLimit, "gomemlimit", "", "GOMEMLIMIT `value` for the gateway process only, e.g. 15MiB (default: inherited)")
	fs.StringVar(&c.exe, "gateway-binary", "", "measure this gridlink `executable` as the gateway instead of this one (e.g. a differently built one)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case c.devices < 1:
		return fmt.Errorf("--devices %d: want at least 1", c.devices)
	case c.window < time.Second:
		return fmt.Errorf("--for %v: want at least 1s", c.window)
	case c.warmup < 0:
		return fmt.Errorf("--warmup %v: want 0 or more", c.warmup)
	case c.interval < 100*time.Millisecond:
		return fmt.Errorf("--interval %v: want at least 100ms", c.interval)
	}
	if runtime.GOOS != "linux" {
		return fmt.Errorf("bench gateway reads /proc and runs on Linux only, not %s", runtime.GOOS)
	}
	dir, cleanup, err := benchWorkDir(c.keep, "gridlink-bench-gateway")
	if err != nil {
		return err
	}
	defer cleanup()
	res, err := benchGateway(ctx, c, dir, stderr)
	if err != nil {
		return err
	}
	return writeBenchResult(stdout, c.jsonOut, res, func() { printGatewayBench(stdout, res) })
}

// gwDevice is one simulated device of the benchmark.
type gwDevice struct {
	cfg  device.Config
	prof *profile.Profile
}

func benchGateway(ctx context.Context, c gwBenchConfig, dir string, log io.Writer) (gwBenchResult, error) {
	res := gwBenchResult{Machine: machineInfo(), Devices: c.devices, Interval: c.interval.String(), ClockTicks: clockTicks}
	fmt.Fprintf(log, "bench gateway: %d devices every %v, %v warm-up, %v measured; %s/%s, %d CPUs, %s\n",
		c.devices, c.interval, c.warmup, c.window, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	cat := cim.Default()
	set, err := profile.Embedded(cat)
	if err != nil {
		return res, err
	}
	devs, err := planDevices(c.devices, set)
	if err != nil {
		return res, err
	}
	quiet := slog.New(slog.DiscardHandler)

	// The platform, in this process.
	st, _, err := openStore(ctx, storeOptions{data: filepath.Join(dir, "platform"), logger: quiet})
	if err != nil {
		return res, err
	}
	defer st.Close()
	platURL, ingestKey, stopPlatform, err := startBenchPlatform(ctx, st, cat, devs)
	if err != nil {
		return res, err
	}
	defer stopPlatform()

	// The simulators the gateway polls; MQTT devices need the gateway's
	// broker and start after it.
	simCtx, stopSims := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var closers []func()
	defer func() {
		stopSims()
		wg.Wait()
		for _, f := range slices.Backward(closers) {
			f()
		}
	}()
	clients := map[string]*mqtt.Client{}
	closers = append(closers, func() {
		for _, cl := range clients {
			cl.Close()
		}
	})
	sims := make([]simulator, len(devs))
	for i, d := range devs {
		if d.prof.Protocol == profile.MQTT {
			continue
		}
		s, addr, closer, err := startSim(simCtx, d.prof, simDevice{Config: d.cfg}, cat, clients, quiet)
		if err != nil {
			return res, fmt.Errorf("simulator of %s (%s): %w", d.cfg.Asset, d.prof.Name, err)
		}
		closers = append(closers, closer)
		sims[i] = s
		if d.prof.Protocol == profile.HTTP {
			addr = "http://" + addr
		}
		devs[i].cfg.Address = addr
	}

	// The gateway, a child process of this binary.
	hemsFile := filepath.Join(dir, "hems.yaml")
	if err := os.WriteFile(hemsFile, gatewayConfig(devs, c.interval, dir, platURL, ingestKey), 0o600); err != nil {
		return res, err
	}
	res.ChildEnv = childEnv(c)
	res.GatewayBinary = c.exe
	gw, err := startChildGateway(c.exe, hemsFile, filepath.Join(dir, "gateway.log"), res.ChildEnv)
	if err != nil {
		return res, err
	}
	defer gw.kill()
	fmt.Fprintf(log, "gateway pid %d, status on http://%s/status, mqtt broker on %s\n", gw.cmd.Process.Pid, gw.status, gw.broker)

	for i, d := range devs {
		if d.prof.Protocol != profile.MQTT {
			continue
		}
		sd := simDevice{Config: d.cfg}
		sd.Address = "tcp://" + gw.broker
		s, _, closer, err := startSim(simCtx, d.prof, sd, cat, clients, quiet)
		if err != nil {
			return res, fmt.Errorf("simulator of %s (%s): %w", d.cfg.Asset, d.prof.Name, err)
		}
		closers = append(closers, closer)
		sims[i] = s
	}
	for i, d := range devs {
		m := sim.NewModel(sim.ModelConfig{Seed: 1 + uint64(i), Cycle: gwSimCycle, Channels: sim.ChannelsOf(d.prof), Catalogue: cat, Kind: sim.KindOf(d.prof)})
		s, asset := sims[i], d.cfg.Asset
		wg.Go(func() { sim.Drive(simCtx, m, gwSimCycle, s.Update, nil, asset, quiet) })
	}

	// Warm-up, then the measuring window.
	fmt.Fprintf(log, "warming up for %v\n", c.warmup)
	if err := sleepCtx(ctx, c.warmup, gw.exited); err != nil {
		return res, gw.explain(err)
	}
	st0, err := gw.statusJSON(ctx)
	if err != nil {
		return res, gw.explain(err)
	}
	cpu0, err := procCPU(gw.cmd.Process.Pid)
	if err != nil {
		return res, err
	}
	t0 := time.Now()
	var bar *progressbar.ProgressBar
	if !c.quiet {
		bar = progressbar.NewOptions64(int64(c.window/time.Second), progressbar.OptionSetWriter(log), progressbar.OptionSetDescription("measuring"),
			progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(false), progressbar.OptionClearOnFinish())
	}
	var rssSum float64
	var last procMem
	tick := time.NewTicker(time.Second)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			tick.Stop()
			return res, ctx.Err()
		case <-gw.exited:
			tick.Stop()
			return res, gw.explain(errors.New("the gateway exited during the measurement"))
		case <-tick.C:
		}
		m, err := procStatus(gw.cmd.Process.Pid)
		if err != nil {
			tick.Stop()
			return res, err
		}
		last = m
		res.Samples++
		rssSum += m.rss
		res.RSSMaxMB = max(res.RSSMaxMB, m.rss)
		if bar != nil {
			bar.Add(1)
		}
		done = time.Since(t0) >= c.window
	}
	tick.Stop()
	cpu1, err := procCPU(gw.cmd.Process.Pid)
	if err != nil {
		return res, err
	}
	t1 := time.Now()
	if bar != nil {
		bar.Finish()
	}
	wall := t1.Sub(t0).Seconds()
	res.WindowSeconds = wall
	res.RSSMeanMB = rssSum / float64(res.Samples)
	res.RSSAnonMB, res.RSSFileMB, res.HWMMB, res.Threads = last.anon, last.file, last.hwm, last.threads
	res.CPUUserSeconds = float64(cpu1.user-cpu0.user) / clockTicks
	res.CPUSysSeconds = float64(cpu1.sys-cpu0.sys) / clockTicks
	res.CPUSeconds = res.CPUUserSeconds + res.CPUSysSeconds
	res.CPUPercent = 100 * res.CPUSeconds / wall

	// Let the uplink deliver the window's last readings, then count what
	// the platform holds with a timestamp in the window. Readings of the
	// last slot may still be gathering for the queue (its append window):
	// wait that out before the queue's depth means anything.
	if err := sleepCtx(ctx, 1500*time.Millisecond, gw.exited); err != nil {
		return res, gw.explain(err)
	}
	st1, err := gw.statusJSON(ctx)
	if err != nil {
		return res, gw.explain(err)
	}
	for deadline := time.Now().Add(15 * time.Second); st1.Queue.Readings > 0 && time.Now().Before(deadline); {
		if err := sleepCtx(ctx, 250*time.Millisecond, gw.exited); err != nil {
			return res, gw.explain(err)
		}
		if st1, err = gw.statusJSON(ctx); err != nil {
			return res, gw.explain(err)
		}
	}
	res.UplinkSent = st1.Uplink.Sent - st0.Uplink.Sent
	perAsset := map[string]int64{}
	err = st.Read(ctx, store.Selector{Site: "bench", From: t0.UnixMilli(), To: t1.UnixMilli()}, func(s store.Series, pts []cim.Point) error {
		perAsset[s.Asset] += int64(len(pts))
		res.Readings += int64(len(pts))
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("count readings in the platform: %w", err)
	}
	res.ReadingsPerSec = float64(res.Readings) / wall
	byAsset := map[string]*gwDevice{}
	for i := range devs {
		byAsset[devs[i].cfg.Asset] = &devs[i]
	}
	seen := map[string]bool{}
	for _, d := range st1.Devices {
		seen[d.Asset] = true
		res.Series += len(d.Values)
		// Polled devices give one reading per series per poll; MQTT
		// devices publish once per simulator cycle.
		per := c.interval
		if dv := byAsset[d.Asset]; dv != nil && dv.prof.Protocol == profile.MQTT {
			per = gwSimCycle
		}
		res.Expected += int64(len(d.Values)) * int64(wall*float64(time.Second)/float64(per))
		if d.State == "ok" && perAsset[d.Asset] > 0 {
			res.DevicesOK++
			continue
		}
		res.NotOK = append(res.NotOK, gwDev{Asset: d.Asset, Profile: d.Profile, State: d.State, Readings: perAsset[d.Asset], LastError: d.LastError})
	}
	for _, d := range devs {
		if !seen[d.cfg.Asset] {
			res.NotOK = append(res.NotOK, gwDev{Asset: d.cfg.Asset, Profile: d.prof.Name, State: "missing from the status page", Readings: perAsset[d.cfg.Asset]})
		}
	}

	// Stop the gateway as a service manager would.
	res.CleanExit, res.ExitError = gw.stop(30 * time.Second)
	stopSims()
	wg.Wait()

	if c.sizes {
		res.Binaries, res.BinaryNote = binarySizes(ctx, dir, log)
	} else {
		res.Binaries, res.BinaryNote = executableSize("--sizes=false")
	}
	res.Targets = gatewayTargets(res)
	return res, nil
}

// planDevices picks n devices from the mix, each with its own asset id,
// MQTT login and topic variables.
func planDevices(n int, set *profile.Set) ([]gwDevice, error) {
	devs := make([]gwDevice, n)
	for i := range devs {
		name := gwBenchMix[i%len(gwBenchMix)]
		p, ok := set.Get(name)
		if !ok {
			return nil, fmt.Errorf("profile %q is not embedded", name)
		}
		id := fmt.Sprintf("d%03d", i)
		cfg := device.Config{Asset: fmt.Sprintf("%s/%s", id, name), Profile: name, Address: "127.0.0.1:0", Vars: profileVarsOf(p, id)}
		if p.Protocol == profile.MQTT {
			cfg.Username, cfg.Password = id, "bench-"+id+"-secret"
		}
		devs[i] = gwDevice{cfg: cfg, prof: p}
	}
	return devs, nil
}

var gwVarRE = regexp.MustCompile(`\{([a-z_][a-z0-9_]*)\}`)

// profileVarsOf gives every {var} of the profile's topics and paths the
// value id, so that devices of one profile use topics of their own.
func profileVarsOf(p *profile.Profile, id string) map[string]string {
	var texts []string
	if s := p.MQTT; s != nil {
		for _, tp := range s.Topics {
			texts = append(texts, tp.Topic)
		}
		texts = append(texts, s.Online)
		if s.Keepalive != nil {
			texts = append(texts, s.Keepalive.Topic)
		}
	}
	if s := p.HTTP; s != nil {
		for _, r := range s.Requests {
			texts = append(texts, r.Path)
		}
	}
	vars := map[string]string{}
	for _, t := range texts {
		for _, m := range gwVarRE.FindAllStringSubmatch(t, -1) {
			if m[1] != "username" && m[1] != "password" {
				vars[m[1]] = id
			}
		}
	}
	if len(vars) == 0 {
		return nil
	}
	return vars
}

// startBenchPlatform serves the platform on loopback with site "bench"
// holding the devices' assets, and returns its URL and an ingest key.
func startBenchPlatform(ctx context.Context, st store.Store, cat *cim.Catalogue, devs []gwDevice) (string, string, func(), error) {
	if err := st.PutSite(ctx, cim.Site{ID: "bench", Name: "Gateway bench"}); err != nil {
		return "", "", nil, err
	}
	for _, d := range devs {
		typ := d.prof.AssetType
		if typ == "" {
			typ = cim.SmartMeter
		}
		if err := st.PutAsset(ctx, cim.Asset{Site: "bench", ID: d.cfg.Asset, Type: typ}); err != nil {
			return "", "", nil, err
		}
	}
	secret, key := auth.NewKey("bench", string(auth.ScopeIngest), "gateway bench", time.Now())
	if err := st.CreateKey(ctx, key); err != nil {
		return "", "", nil, err
	}
	api, err := platform.New(platform.Config{Store: st, Catalogue: cat})
	if err != nil {
		return "", "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		api.Close()
		return "", "", nil, err
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), secret, func() { srv.Close(); api.Close() }, nil
}

// gatewayConfig is the hems.yaml of the benchmark: every device at
// interval, an embedded broker with a login per MQTT device, status and
// broker on free loopback ports.
func gatewayConfig(devs []gwDevice, interval time.Duration, dir, platURL, key string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "site: bench\ndata: %q\nplatform: {url: %q, key: %q}\nstatus: {listen: \"127.0.0.1:0\"}\n",
		filepath.Join(dir, "gateway"), platURL, key)
	b.WriteString("broker:\n  listen: \"127.0.0.1:0\"\n  users:\n")
	for _, d := range devs {
		if d.prof.Protocol == profile.MQTT {
			fmt.Fprintf(&b, "    - {username: %q, password: %q}\n", d.cfg.Username, d.cfg.Password)
		}
	}
	b.WriteString("devices:\n")
	for _, d := range devs {
		addr := d.cfg.Address
		if d.prof.Protocol == profile.MQTT {
			addr = "embedded"
		}
		vars, _ := json.Marshal(d.cfg.Vars) // JSON is YAML
		fmt.Fprintf(&b, "  - {asset: %q, profile: %q, address: %q, interval: %s", d.cfg.Asset, d.prof.Name, addr, interval)
		if d.cfg.Username != "" {
			fmt.Fprintf(&b, ", username: %q, password: %q", d.cfg.Username, d.cfg.Password)
		}
		if d.cfg.Vars != nil {
			fmt.Fprintf(&b, ", vars: %s", vars)
		}
		b.WriteString("}\n")
	}
	return []byte(b.String())
}

// childEnv is the environment of the gateway process.
func childEnv(c gwBenchConfig) []string {
	var env []string
	if c.gogc != "" {
		env = append(env, "GOGC="+c.gogc)
	}
	if c.memLimit != "" {
		env = append(env, "GOMEMLIMIT="+c.memLimit)
	}
	return env
}

// childGateway is the `gridlink gateway` process being measured.
type childGateway struct {
	*child
	status string // host:port of the status page
	broker string // host:port of the embedded MQTT broker
	client *http.Client
}

var (
	gwStatusLine = regexp.MustCompile(`^status page on http://(\S+)/status`)
	gwBrokerLine = regexp.MustCompile(`^mqtt broker on (\S+)`)
)

// startChildGateway runs exe (empty: this executable) as `gateway
// --config hemsFile`, its log going to logPath, and waits until it prints
// the addresses of its status page and broker.
func startChildGateway(exe, hemsFile, logPath string, env []string) (*childGateway, error) {
	c, got, err := startChild("gateway", exe, []string{"gateway", "--config", hemsFile}, env, logPath, 60*time.Second, gwStatusLine, gwBrokerLine)
	if err != nil {
		return nil, err
	}
	return &childGateway{child: c, status: got[0], broker: got[1], client: &http.Client{Timeout: 10 * time.Second}}, nil
}

// gwStatus is the part of the gateway's /status JSON the benchmark reads.
type gwStatus struct {
	Uplink struct {
		State string `json:"state"`
		Sent  int64  `json:"sent"`
	} `json:"uplink"`
	Queue struct {
		Readings int64 `json:"readings"`
	} `json:"queue"`
	Devices []struct {
		Asset     string            `json:"asset"`
		Profile   string            `json:"profile"`
		State     string            `json:"state"`
		LastError string            `json:"last_error"`
		Values    []json.RawMessage `json:"values"`
	} `json:"devices"`
}

func (g *childGateway) statusJSON(ctx context.Context) (gwStatus, error) {
	var s gwStatus
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+g.status+"/status?format=json", nil)
	if err != nil {
		return s, err
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return s, fmt.Errorf("gateway status: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("gateway status: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return s, fmt.Errorf("gateway status: %w", err)
	}
	return s, nil
}

// sleepCtx waits for d unless ctx ends or the gateway exits first.
func sleepCtx(ctx context.Context, d time.Duration, exited <-chan struct{}) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-exited:
		return errors.New("the gateway exited")
	case <-t.C:
		return nil
	}
}

// procTimes is the CPU time a process used, in clock ticks.
type procTimes struct{ user, sys int64 }

// procCPU reads the CPU time of process pid.
func procCPU(pid int) (procTimes, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procTimes{}, err
	}
	return parseProcStat(string(b))
}

// parseProcStat reads utime and stime (fields 14 and 15) of a
// /proc/PID/stat line. The command name (field 2) may hold spaces and
// parentheses, so the fields are counted from its last ')'.
func parseProcStat(s string) (procTimes, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procTimes{}, fmt.Errorf("/proc stat %.40q: no ')' after the command name", s)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3, the state
	if len(f) < 13 {
		return procTimes{}, fmt.Errorf("/proc stat: %d fields after the command name, want at least 13", len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return procTimes{}, fmt.Errorf("/proc stat utime/stime: %w", err)
	}
	if utime < 0 || stime < 0 {
		return procTimes{}, fmt.Errorf("/proc stat: negative utime %d or stime %d", utime, stime)
	}
	return procTimes{user: utime, sys: stime}, nil
}

// procMem is the memory of a process from /proc/PID/status, in MB.
type procMem struct {
	rss, hwm, anon, file float64
	threads              int
}

func procStatus(pid int) (procMem, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procMem{}, err
	}
	return parseProcStatus(string(b))
}

// parseProcStatus reads VmRSS, VmHWM, RssAnon, RssFile (kB) and Threads.
func parseProcStatus(s string) (procMem, error) {
	var m procMem
	found := false
	for line := range strings.Lines(s) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil || n < 0 {
			continue
		}
		mb := float64(n) * 1024 / 1e6
		switch k {
		case "VmRSS":
			m.rss, found = mb, true
		case "VmHWM":
			m.hwm = mb
		case "RssAnon":
			m.anon = mb
		case "RssFile":
			m.file = mb
		case "Threads":
			m.threads = int(n)
		}
	}
	if !found {
		return m, errors.New("/proc status: no VmRSS line (has the process exited?)")
	}
	return m, nil
}

// binarySizes cross-compiles stripped binaries of this command the way CI
// does, when the go command and the module's source are at hand; otherwise
// it reports this executable's size.
func binarySizes(ctx context.Context, dir string, log io.Writer) ([]gwBin, string) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return executableSize("no go command")
	}
	pkg := "github.com/gridlink/gridlink/cmd/gridlink"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Path != "" {
		pkg = bi.Path
	}
	var bins []gwBin
	for _, t := range []struct{ goos, goarch, goarm, name string }{
		{"linux", "amd64", "", "linux/amd64"},
		{"linux", "arm64", "", "linux/arm64"},
		{"linux", "arm", "6", "linux/arm/v6"},
	} {
		fmt.Fprintf(log, "building %s (stripped)\n", t.name)
		out := filepath.Join(dir, "bin", strings.ReplaceAll(t.name, "/", "-"), "gridlink")
		cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+t.goos, "GOARCH="+t.goarch, "GOARM="+t.goarm)
		if b, err := cmd.CombinedOutput(); err != nil {
			bins, note := executableSize(fmt.Sprintf("go build %s failed (%v: %.300s)", t.name, err, b))
			return bins, note
		}
		fi, err := os.Stat(out)
		if err != nil {
			return executableSize(err.Error())
		}
		bins = append(bins, gwBin{Target: t.name, Bytes: fi.Size(), MB: float64(fi.Size()) / 1e6, Stripped: true})
	}
	return bins, ""
}

// executableSize reports the running executable, which is not stripped.
func executableSize(why string) ([]gwBin, string) {
	exe, err := os.Executable()
	if err != nil {
		return nil, why + "; " + err.Error()
	}
	fi, err := os.Stat(exe)
	if err != nil {
		return nil, why + "; " + err.Error()
	}
	return []gwBin{{Target: runtime.GOOS + "/" + runtime.GOARCH + " (this executable)", Bytes: fi.Size(), MB: float64(fi.Size()) / 1e6}},
		why + ": size of this executable, not stripped"
}

// gatewayTargets compares the figures with the targets.
func gatewayTargets(r gwBenchResult) []gwGoal {
	goals := []gwGoal{
		{Name: "resident memory (max VmRSS in the window), MB", Target: gwTargetRSSMB, Reached: r.RSSMaxMB, Met: r.RSSMaxMB < gwTargetRSSMB},
		{Name: "CPU, % of one core", Target: gwTargetCPU, Reached: r.CPUPercent, Met: r.CPUPercent < gwTargetCPU},
	}
	var biggest float64
	stripped := len(r.Binaries) > 0
	for _, b := range r.Binaries {
		biggest = max(biggest, b.MB)
		stripped = stripped && b.Stripped
	}
	if stripped {
		goals = append(goals, gwGoal{Name: "stripped binary (largest target), MB", Target: gwTargetBinaryMB, Reached: biggest, Met: biggest < gwTargetBinaryMB})
	}
	return goals
}

// machineInfo describes this machine from /proc.
func machineInfo() gwMachine {
	m := gwMachine{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				if f := strings.Fields(v); len(f) > 0 {
					kb, _ := strconv.ParseFloat(f[0], 64)
					m.MemoryGB = kb * 1024 / (1 << 30)
				}
			}
		}
	}
	return m
}

func printGatewayBench(w io.Writer, r gwBenchResult) {
	fmt.Fprintf(w, "machine: %s/%s, %d CPUs (%s), %.1f GiB, %s\n", r.Machine.OS, r.Machine.Arch, r.Machine.CPUs, r.Machine.CPUModel, r.Machine.MemoryGB, r.Machine.Go)
	env := "inherited"
	if len(r.ChildEnv) > 0 {
		env = strings.Join(r.ChildEnv, " ")
	}
	fmt.Fprintf(w, "gateway: %d devices every %s, measured %.1f s (GOGC/GOMEMLIMIT: %s)\n", r.Devices, r.Interval, r.WindowSeconds, env)
	if r.GatewayBinary != "" {
		fmt.Fprintf(w, "gateway binary: %s\n", r.GatewayBinary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| measure | value |")
	fmt.Fprintln(w, "|---|---|")
	fmt.Fprintf(w, "| resident memory (VmRSS), mean / max | %.1f MB / %.1f MB (%d samples) |\n", r.RSSMeanMB, r.RSSMaxMB, r.Samples)
	fmt.Fprintf(w, "| of which anonymous / file-backed, at the end | %.1f MB / %.1f MB |\n", r.RSSAnonMB, r.RSSFileMB)
	fmt.Fprintf(w, "| peak since start (VmHWM) | %.1f MB |\n", r.HWMMB)
	fmt.Fprintf(w, "| threads | %d |\n", r.Threads)
	fmt.Fprintf(w, "| CPU, %% of one core | %.2f %% (%.2f s user + %.2f s system in %.1f s; %d ticks/s) |\n",
		r.CPUPercent, r.CPUUserSeconds, r.CPUSysSeconds, r.WindowSeconds, r.ClockTicks)
	fmt.Fprintf(w, "| readings received by the platform | %d (%.0f/s; %d series, %d expected) |\n", r.Readings, r.ReadingsPerSec, r.Series, r.Expected)
	fmt.Fprintf(w, "| uplink sent in the window | %d |\n", r.UplinkSent)
	fmt.Fprintf(w, "| devices ok at the end | %d of %d |\n", r.DevicesOK, r.Devices)
	exit := "clean (status 0 after SIGTERM)"
	if !r.CleanExit {
		exit = "NOT clean: " + r.ExitError
	}
	fmt.Fprintf(w, "| gateway exit | %s |\n", exit)
	for _, b := range r.Binaries {
		s := "stripped"
		if !b.Stripped {
			s = "not stripped"
		}
		fmt.Fprintf(w, "| binary %s | %.1f MB (%s) |\n", b.Target, b.MB, s)
	}
	if r.BinaryNote != "" {
		fmt.Fprintf(w, "\nbinary size: %s\n", r.BinaryNote)
	}
	for _, d := range r.NotOK {
		fmt.Fprintf(w, "\nnot ok: %s (%s): %s, %d readings in the window %s", d.Asset, d.Profile, d.State, d.Readings, d.LastError)
	}
	if len(r.NotOK) > 0 {
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "\n| target | reached | |")
	fmt.Fprintln(w, "|---|---|---|")
	for _, g := range r.Targets {
		met := "met"
		if !g.Met {
			met = "**not met**"
		}
		fmt.Fprintf(w, "| %s < %g | %.2f | %s |\n", g.Name, g.Target, g.Reached, met)
	}
}
