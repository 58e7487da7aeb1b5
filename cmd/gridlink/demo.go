//go:build !edge

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gridlink/gridlink/chargepoint"
	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/examples"
	"github.com/gridlink/gridlink/examples/demo"
	"github.com/gridlink/gridlink/inventory"
	"github.com/gridlink/gridlink/itc"
	"github.com/gridlink/gridlink/platform/auth"
	"github.com/gridlink/gridlink/profile"
)

// demoConfig is what `gridlink demo` runs with.
type demoConfig struct {
	For      time.Duration // 0: until SIGINT/SIGTERM
	Listen   string
	Data     string // "": a temporary directory, removed at the end
	Window   time.Duration
	LogLevel string
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: gridlink demo [--for 2m] [--listen 127.0.0.1:8080] [--data DIR]\n\nStarts the platform, the four pilot sites' devices (simulated) behind their\ngateways and chargers, runs the integration test cases once, prints the\nsummary and the dashboard's address, and keeps running until stopped.")
		fs.PrintDefaults()
	}
	// Logs default to errors only: the summary is the demo's output, and
	// the simulated chargers' quirks are warned about every second.
	c := demoConfig{Listen: "127.0.0.1:8080", Window: itc.DefaultWindow, LogLevel: "error"}
	fs.DurationVar(&c.For, "for", 0, "stop by itself after this `duration` (0: run until interrupted)")
	fs.StringVar(&c.Listen, "listen", c.Listen, "`address` of the platform's API and dashboard")
	fs.StringVar(&c.Data, "data", "", "data `directory` (default: a temporary one, removed at the end)")
	fs.DurationVar(&c.Window, "window", c.Window, "observation window of the test cases")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (logs go to stderr)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "gridlink demo: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	if c.For < 0 || c.Window <= 0 {
		return fmt.Errorf("--for %v / --window %v: want a positive duration", c.For, c.Window)
	}
	level, err := parseLevel(c.LogLevel)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if c.For > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.For)
		defer cancel()
	}
	passed, err := demoRun(ctx, c, stdout, stderr, logger)
	if err != nil {
		return err
	}
	if !passed {
		return errors.New("not every seed test case passed")
	}
	return nil
}

// demoRun runs the demo until ctx ends and reports whether every case
// passed.
func demoRun(ctx context.Context, c demoConfig, stdout, stderr io.Writer, logger *slog.Logger) (bool, error) {
	mapping, err := demo.Embedded()
	if err != nil {
		return false, err
	}
	sites, err := inventory.LoadDir(examples.Pilots())
	if err != nil {
		return false, fmt.Errorf("pilot sites: %w", err)
	}
	set, err := profile.Embedded(cim.Default())
	if err != nil {
		return false, err
	}
	if err := mapping.Check("examples/demo/devices.yaml", sites, set); err != nil {
		return false, err
	}
	if c.Data == "" {
		dir, err := os.MkdirTemp("", "gridlink-demo-")
		if err != nil {
			return false, err
		}
		defer os.RemoveAll(dir)
		c.Data = dir
	}

	// The platform, in this process, with an OCPP central system.
	cfg := defaultServeConfig()
	cfg.Data, cfg.Listen, cfg.OCPPListen, cfg.LogLevel = filepath.Join(c.Data, "platform"), c.Listen, "127.0.0.1:0", c.LogLevel
	plat, err := startPlatform(ctx, cfg, io.Discard, logger.With("part", "platform"))
	if err != nil {
		return false, err
	}
	defer plat.Close()
	if err := demoLoadSites(ctx, plat, sites, mapping); err != nil {
		return false, err
	}
	admin, err := demoAdminKey(ctx, plat, cfg.Data)
	if err != nil {
		return false, err
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return false, fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: plat.api, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	defer func() {
		plat.api.Close() // ends the live streams, which Shutdown would wait for
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "gridlink demo: platform on %s (data in %s)\n", base, c.Data)

	// Chargers over OCPP, the other devices behind one gateway per site.
	chargers, err := startDemoChargers(ctx, base, admin, "ws://"+plat.ocppAddr+"/ocpp", mapping, logger)
	if err != nil {
		return false, err
	}
	defer chargers.Close()
	var siteIDs []string
	for _, f := range sites {
		siteIDs = append(siteIDs, f.Site.ID)
	}
	target := itc.Target{Platform: base, Key: admin, Sites: siteIDs}
	simu, err := itc.Simulate(ctx, target, itc.SimOptions{
		Dir: filepath.Join(c.Data, "gateways"), Cycle: mapping.Cycle, Seed: 1,
		Choose: demoChoose(mapping, set), Logger: logger.With("part", "simulate"),
	})
	if err != nil {
		return false, fmt.Errorf("simulate: %w", err)
	}
	defer simu.Close()
	target.Truth = append(simu.Truth(), chargers.truth...)
	fmt.Fprintf(stdout, "gridlink demo: %d sites, %d simulated devices behind %d gateways, %d OCPP chargers\n",
		len(sites), demoSimulated(mapping), len(sites), len(chargers.cps))

	// The whole catalogue, once.
	cat, err := itc.Embedded()
	if err != nil {
		return false, err
	}
	run, err := itc.Execute(ctx, cat.Cases, target, itc.Options{
		Window: c.Window, Faults: simu.Faults(), Logger: logger.With("part", "itc"),
		Progress: func(p itc.Progress) { demoProgress(stderr, p) },
	})
	fmt.Fprintln(stderr)
	if err != nil {
		return false, fmt.Errorf("itc: %w", err)
	}
	if err := itc.Summary(stdout, run); err != nil {
		return false, err
	}
	// Keep the run even when --for ended it part way: the platform is still up.
	postCtx, cancelPost := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancelPost()
	if err := postRun(postCtx, target, run); err != nil {
		logger.Warn("keep the run on the platform", "err", err)
	}
	// The demo is done when every case of the source document passed; the
	// fault cases beyond it are reported beside them.
	seed, seedPassed := 0, 0
	faults := map[itc.Status]int{}
	for _, res := range run.Results {
		if c, ok := cat.Get(res.Case); ok && c.Fault != "" {
			faults[res.Status]++
			continue
		}
		seed++
		if res.Status == itc.Passed {
			seedPassed++
		}
	}
	passed := seed > 0 && seedPassed == seed
	fmt.Fprintf(stdout, "gridlink demo: %d of %d seed cases passed\n", seedPassed, seed)
	fmt.Fprintf(stdout, "gridlink demo: fault cases: %d passed, %d failed, %d suspended, %d not run\n",
		faults[itc.Passed], faults[itc.Failed], faults[itc.Suspended], faults[itc.NotRun])
	fmt.Fprintf(stdout, "open %s/?key=%s\n", base, admin)
	switch {
	case ctx.Err() != nil:
	case c.For == 0:
		fmt.Fprintln(stdout, "gridlink demo: running until interrupted (Ctrl-C)")
	default:
		fmt.Fprintf(stdout, "gridlink demo: running until %s (--for %v)\n", demoDeadline(ctx).Format(time.TimeOnly), c.For)
	}
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return passed, fmt.Errorf("serve: %w", err)
	}
	return passed, nil
}

// demoDeadline is when ctx ends (now when it has no deadline).
func demoDeadline(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now()
}

// demoLoadSites puts the pilot sites and their assets in the store, the
// ledger assets of the mapping marked.
func demoLoadSites(ctx context.Context, p *runningPlatform, sites []inventory.File, m *demo.Mapping) error {
	for _, f := range sites {
		if err := p.st.PutSite(ctx, f.Site); err != nil {
			return err
		}
		for _, a := range f.Assets {
			a.Site = f.Site.ID
			if d, ok := m.Get(f.Site.ID, a.ID); ok && d.Ledger {
				a.Ledger = true
			}
			if err := p.st.PutAsset(ctx, a); err != nil {
				return fmt.Errorf("site %s asset %s: %w", f.Site.ID, a.ID, err)
			}
		}
	}
	return nil
}

// demoAdminKey returns the admin key serve wrote on first start, or makes
// one when the data directory is an older one whose key file is gone.
func demoAdminKey(ctx context.Context, p *runningPlatform, data string) (string, error) {
	if b, err := os.ReadFile(filepath.Join(data, AdminKeyFile)); err == nil {
		if k := strings.TrimSpace(string(b)); k != "" {
			return k, nil
		}
	}
	secret, key := auth.NewKey("", string(auth.ScopeAdmin), "gridlink demo", time.Now())
	if err := p.st.CreateKey(ctx, key); err != nil {
		return "", fmt.Errorf("demo admin key: %w", err)
	}
	return secret, nil
}

// demoChoose simulates each asset with the profile and variables the
// mapping gives it; a variable the mapping leaves out gets a value unique
// to the asset, as devices of a site share one MQTT broker.
func demoChoose(m *demo.Mapping, set *profile.Set) func(site string, a cim.Asset) (string, map[string]string, bool) {
	return func(site string, a cim.Asset) (string, map[string]string, bool) {
		d, ok := m.Get(site, a.ID)
		if !ok || d.Profile == "" {
			return "", nil, false
		}
		p, ok := set.Get(d.Profile)
		if !ok {
			return "", nil, false
		}
		vars := map[string]string{}
		for _, name := range p.Placeholders() {
			vars[name] = name + "-" + strings.NewReplacer("/", "-", "_", "-").Replace(a.ID)
		}
		for k, v := range d.Vars {
			vars[k] = v
		}
		return d.Profile, vars, true
	}
}

func demoSimulated(m *demo.Mapping) int {
	n := 0
	for _, d := range m.Devices {
		if d.Profile != "" {
			n++
		}
	}
	return n
}

// demoProgress rewrites one progress line on stderr.
func demoProgress(w io.Writer, p itc.Progress) {
	id := p.Case
	if id == "" {
		id = "all cases"
	}
	line := fmt.Sprintf("itc %d/%d %s: %s %s", p.Done, p.Total, id, p.Stage, p.Message)
	if len(line) > 100 {
		line = line[:99] + "…"
	}
	fmt.Fprintf(w, "\r%-100s", line)
}

// demoCall POSTs a JSON body to the platform with key.
func demoCall(ctx context.Context, base, key, path string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

// demoChargers are the simulated OCPP chargers and their truth endpoint.
type demoChargers struct {
	cps   []*chargepoint.ChargePoint
	truth []string // "site=URL" per charger
	srv   *http.Server
	stop  context.CancelFunc
	wg    sync.WaitGroup
}

// demoIDTag is the RFID tag the demo's EVs present.
const demoIDTag = "DEMO0001"

// startDemoChargers registers every charge point of the mapping with the
// platform (a fresh password each) and runs it as a simulated charger
// with an EV plugged in for the whole run; each charger's truth is served
// at /{site}/{asset} of one listener.
func startDemoChargers(ctx context.Context, base, admin, ocppURL string, m *demo.Mapping, logger *slog.Logger) (_ *demoChargers, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("charger truth: %w", err)
	}
	mux := http.NewServeMux()
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	dc := &demoChargers{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, stop: stop}
	go dc.srv.Serve(ln)
	defer func() {
		if err != nil {
			dc.Close()
		}
	}()
	tagged := map[string]bool{}
	for _, d := range m.Devices {
		if d.ChargePoint == nil {
			continue
		}
		var b [12]byte
		rand.Read(b[:]) // never fails
		password := hex.EncodeToString(b[:])
		reg, _ := json.Marshal(map[string]string{"id": d.Asset, "password": password})
		if err := demoCall(ctx, base, admin, "/api/v1/sites/"+d.Site+"/chargepoints", reg); err != nil {
			return nil, fmt.Errorf("register charger %s of %s: %w", d.Asset, d.Site, err)
		}
		if !tagged[d.Site] {
			tag, _ := json.Marshal(map[string]string{"tag": demoIDTag})
			if err := demoCall(ctx, base, admin, "/api/v1/sites/"+d.Site+"/idtags", tag); err != nil {
				return nil, fmt.Errorf("id tag of %s: %w", d.Site, err)
			}
			tagged[d.Site] = true
		}
		var quirks []chargepoint.Quirk
		for _, q := range d.ChargePoint.Quirks {
			quirks = append(quirks, chargepoint.Quirk(q))
		}
		cp, err := chargepoint.New(chargepoint.Config{
			ID: d.Asset, URL: ocppURL, Password: password, Quirks: quirks,
			MeterValueInterval: m.Cycle, HeartbeatInterval: 30 * time.Second,
			IDTags: []string{demoIDTag}, Seed: uint64(d.Line),
			// An EV plugs in at once and charges for the whole run.
			Plan:         chargepoint.SessionPlan{{After: 100 * time.Millisecond, CapacityWh: 1e6}},
			ReconnectMax: 5 * time.Second,
		}, logger.With("part", "charger", "site", d.Site, "asset", d.Asset))
		if err != nil {
			return nil, fmt.Errorf("charger %s of %s: %w", d.Asset, d.Site, err)
		}
		path := "/" + d.Site + "/" + d.Asset
		mux.Handle(path+"/", http.StripPrefix(path, cp.TruthHandler()))
		dc.cps = append(dc.cps, cp)
		dc.truth = append(dc.truth, d.Site+"=http://"+ln.Addr().String()+path)
		dc.wg.Add(1)
		go func() {
			defer dc.wg.Done()
			if err := cp.Run(runCtx); err != nil && runCtx.Err() == nil {
				logger.Warn("charger stopped", "site", d.Site, "asset", d.Asset, "err", err)
			}
		}()
	}
	return dc, nil
}

// Close stops the chargers and their truth endpoint.
func (dc *demoChargers) Close() {
	dc.stop()
	dc.wg.Wait()
	dc.srv.Close()
}
