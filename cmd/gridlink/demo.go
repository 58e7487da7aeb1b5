//go:build !edge

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
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

// demoWindow is the demo's observation window: ten measuring cycles per
// asset, short enough that the whole catalogue, fault cases included,
// ends within `--for 2m`. `itc run` observes longer (itc.DefaultWindow).
const demoWindow = 10 * time.Second

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: gridlink demo [--for 2m] [--listen 127.0.0.1:8080] [--data DIR]\n\nStarts the platform, the four pilot sites' devices (simulated) behind their\ngateways and chargers, runs the integration test cases once, prints the\nsummary and the dashboard's address, and keeps running until stopped.")
		fs.PrintDefaults()
	}
	// Logs default to errors only: the summary is the demo's output, and
	// the simulated chargers' quirks are warned about every second.
	c := demoConfig{Listen: "127.0.0.1:8080", Window: demoWindow, LogLevel: "error"}
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

	// The platform, in this process, with an OCPP central system; the
	// fault case platform_down stops it and starts it again.
	cfg := defaultServeConfig()
	cfg.Data, cfg.Listen, cfg.OCPPListen, cfg.LogLevel = filepath.Join(c.Data, "platform"), c.Listen, "127.0.0.1:0", c.LogLevel
	dp, err := startDemoPlatform(ctx, cfg, logger.With("part", "platform"))
	if err != nil {
		return false, err
	}
	defer dp.Close()
	plat := dp.Running() // no fault before the run: it stays the running one until then
	if err := demoLoadSites(ctx, plat, sites, mapping); err != nil {
		return false, err
	}
	// The key is in the store, so it outlives a restart.
	admin, err := demoAdminKey(ctx, plat, cfg.Data)
	if err != nil {
		return false, err
	}
	base := dp.Base()
	fmt.Fprintf(stdout, "gridlink demo: platform on %s (data in %s)\n", base, c.Data)

	// Chargers over OCPP, the other devices behind one gateway per site.
	var siteIDs []string
	for _, f := range sites {
		siteIDs = append(siteIDs, f.Site.ID)
	}
	target := itc.Target{Platform: base, Key: admin, Sites: siteIDs}
	simu, err := itc.Simulate(ctx, target, itc.SimOptions{
		Dir: filepath.Join(c.Data, "gateways"), Cycle: mapping.Cycle, Seed: 1,
		Choose: demoChoose(mapping, set), OCPP: "ws://" + dp.OCPPAddr() + "/ocpp", ChooseCharger: demoChooseCharger(mapping),
		Logger: logger.With("part", "simulate"),
	})
	if err != nil {
		return false, fmt.Errorf("simulate: %w", err)
	}
	defer simu.Close()
	target.Truth = simu.Truth()
	fmt.Fprintf(stdout, "gridlink demo: %d sites, %d simulated devices behind %d gateways, %d OCPP chargers\n",
		len(sites), demoSimulated(mapping), len(sites), simu.Chargers())

	// The whole catalogue, once.
	cat, err := itc.Embedded()
	if err != nil {
		return false, err
	}
	faults := &demoFaults{sim: simu.Faults(), plat: dp, log: logger.With("part", "faults")}
	run, err := itc.Execute(ctx, cat.Cases, target, itc.Options{
		Window: c.Window, Faults: faults, Logger: logger.With("part", "itc"),
		Progress: func(p itc.Progress) {
			if s := dp.State(); s != "" {
				p.Message = s + "; " + p.Message
			}
			demoProgress(stderr, p)
		},
	})
	fmt.Fprintln(stderr)
	if err != nil {
		return false, fmt.Errorf("itc: %w", err)
	}
	if err := itc.Summary(stdout, run); err != nil {
		return false, err
	}
	for _, o := range dp.Outages() {
		fmt.Fprintf(stdout, "gridlink demo: platform_down stopped the platform at %s and started it again at %s (down %v)\n",
			o.Stopped.Format("15:04:05.000"), o.Started.Format("15:04:05.000"), o.Started.Sub(o.Stopped).Round(time.Millisecond))
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
	faultCounts := map[itc.Status]int{}
	for _, res := range run.Results {
		if c, ok := cat.Get(res.Case); ok && c.Fault != "" {
			faultCounts[res.Status]++
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
		faultCounts[itc.Passed], faultCounts[itc.Failed], faultCounts[itc.Suspended], faultCounts[itc.NotRun])
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
	case err := <-dp.Err():
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

// demoChooseCharger runs each charge point of the mapping as a simulated
// charger with the OCPP identity and quirks the mapping gives it.
func demoChooseCharger(m *demo.Mapping) func(site string, a cim.Asset) (itc.ChargerChoice, bool) {
	return func(site string, a cim.Asset) (itc.ChargerChoice, bool) {
		d, ok := m.Get(site, a.ID)
		if !ok || d.ChargePoint == nil {
			return itc.ChargerChoice{}, false
		}
		ch := itc.ChargerChoice{ID: d.ChargePoint.ID}
		for _, q := range d.ChargePoint.Quirks {
			ch.Quirks = append(ch.Quirks, chargepoint.Quirk(q))
		}
		return ch, true
	}
}
