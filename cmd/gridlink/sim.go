package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gridlink/gridlink/chargepoint"
	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/device"
	"github.com/gridlink/gridlink/httpjson"
	"github.com/gridlink/gridlink/kasa"
	"github.com/gridlink/gridlink/modbus"
	"github.com/gridlink/gridlink/mqtt"
	"github.com/gridlink/gridlink/profile"
	"github.com/gridlink/gridlink/sim"
)

// simConfig is what `gridlink sim` runs: one or more simulated devices and
// the truth endpoint.
type simConfig struct {
	// Truth is the address of the truth endpoint (GET /truth).
	Truth string `yaml:"truth"`
	// Cycle is the measuring cycle: devices change their values once per
	// cycle, at multiples of it since the Unix epoch.
	Cycle time.Duration `yaml:"cycle"`
	Seed  uint64        `yaml:"seed"`
	// TimeScale speeds simulated time up (720: a day in two minutes).
	TimeScale float64 `yaml:"time_scale"`
	// Profiles is a directory of user profiles.
	Profiles string      `yaml:"profiles"`
	Devices  []simDevice `yaml:"devices"`
}

// simDevice is one simulated device: a gateway device entry whose address
// is where the simulator listens (Modbus, HTTP, Kasa) or the broker it
// publishes to (MQTT).
type simDevice struct {
	device.Config `yaml:",inline"`
	// TLS serves HTTP over TLS with a self-signed certificate.
	TLS bool `yaml:"tls"`
}

// simulator is what every protocol's simulator offers.
type simulator interface {
	Update(sim.Frame) ([]device.Value, error)
}

func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: gridlink sim PROFILE [flags]   simulate one device\n       gridlink sim --config sims.yaml   simulate several\n       gridlink sim --list               list the device profiles\n       gridlink sim chargepoint --listen ws://HOST:PORT/ocpp --asset ID --password P   an OCPP 1.6J charge point")
		fs.PrintDefaults()
	}
	cfgPath := fs.String("config", "", "simulators `file` (YAML)")
	list := fs.Bool("list", false, "list the profiles and exit")
	c := simConfig{Truth: "127.0.0.1:9100", Cycle: time.Second, Seed: 1, TimeScale: 1}
	var one simDevice
	fs.StringVar(&one.Address, "listen", "127.0.0.1:0", "`address` to serve on (Modbus, HTTP, Kasa) or MQTT broker URL to publish to")
	fs.StringVar(&one.Asset, "asset", "sim/device", "asset `id` the truth is recorded under")
	fs.IntVar(&one.UnitID, "unit-id", 0, "Modbus unit `id` (0: the profile's)")
	fs.StringVar(&one.Username, "username", "", "username the device expects (HTTP) or presents (MQTT)")
	fs.StringVar(&one.Password, "password", "", "password")
	fs.StringVar(&one.Token, "token", "", "bearer token the device expects")
	fs.BoolVar(&one.TLS, "tls", false, "serve HTTPS with a self-signed certificate")
	vars := fs.String("vars", "", "profile variables as `k=v,k=v`")
	fs.StringVar(&c.Truth, "truth", c.Truth, "`address` of the truth endpoint")
	fs.DurationVar(&c.Cycle, "cycle", c.Cycle, "measuring cycle")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "random seed")
	fs.Float64Var(&c.TimeScale, "time-scale", c.TimeScale, "simulated seconds per real second")
	fs.StringVar(&c.Profiles, "profiles", "", "`directory` of user profiles")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cat := cim.Default()
	if *cfgPath != "" {
		if err := readSimConfig(*cfgPath, &c); err != nil {
			return err
		}
	}
	set, err := profile.Load(cat, c.Profiles)
	if err != nil {
		return err
	}
	if *list {
		for _, p := range set.All() {
			fmt.Fprintf(stdout, "%-28s %-8s %s\n", p.Name, p.Protocol, p.Title)
		}
		return nil
	}
	if *cfgPath == "" && fs.NArg() == 1 && fs.Arg(0) == "chargepoint" {
		return runChargePointSim(ctx, one, *vars, c, stdout, stderr)
	}
	if *cfgPath == "" {
		if fs.NArg() != 1 {
			fs.Usage()
			return errUsage
		}
		one.Profile = fs.Arg(0)
		if *vars != "" {
			one.Vars = map[string]string{}
			for _, kv := range strings.Split(*vars, ",") {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("--vars %q: want k=v,k=v", *vars)
				}
				one.Vars[k] = v
			}
		}
		c.Devices = []simDevice{one}
	}
	if c.Cycle < 100*time.Millisecond {
		return fmt.Errorf("cycle %v: want at least 100ms", c.Cycle)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return serveSims(ctx, c, set, cat, stdout, log)
}

func readSimConfig(path string, c *simConfig) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(c.Devices) == 0 {
		return fmt.Errorf("%s: no devices", path)
	}
	return nil
}

// serveSims starts every simulator and the truth endpoint, and steps the
// devices once per cycle until ctx ends.
func serveSims(ctx context.Context, c simConfig, set *profile.Set, cat *cim.Catalogue, stdout io.Writer, log *slog.Logger) error {
	truth := sim.NewTruth(cat, 0)
	ln, err := net.Listen("tcp", c.Truth)
	if err != nil {
		return fmt.Errorf("truth endpoint: %w", err)
	}
	srv := &http.Server{Handler: truth.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	fmt.Fprintf(stdout, "truth on http://%s/truth\n", ln.Addr())

	var closers []func()
	defer func() {
		for _, f := range closers {
			f()
		}
	}()
	clients := map[string]*mqtt.Client{}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); wg.Wait() }()
	for i, d := range c.Devices {
		p, ok := set.Get(d.Profile)
		if !ok {
			return fmt.Errorf("device %d: profile %q is not known (gridlink sim --list)", i, d.Profile)
		}
		s, addr, closer, err := startSim(ctx, p, d, cat, clients, log)
		if err != nil {
			return fmt.Errorf("device %s (%s): %w", d.Asset, p.Name, err)
		}
		closers = append(closers, closer)
		fmt.Fprintf(stdout, "sim %s profile=%s protocol=%s addr=%s\n", d.Asset, p.Name, p.Protocol, addr)
		m := sim.NewModel(sim.ModelConfig{Seed: c.Seed + uint64(i), Cycle: c.Cycle, Channels: sim.ChannelsOf(p), Catalogue: cat, Kind: sim.KindOf(p), TimeScale: c.TimeScale})
		asset := d.Asset
		wg.Go(func() { sim.Drive(ctx, m, c.Cycle, s.Update, truth, asset, log.With("asset", asset)) })
	}
	for _, cl := range clients {
		closers = append(closers, func() { cl.Close() })
	}
	fmt.Fprintln(stdout, "simulators running")
	<-ctx.Done()
	return nil
}

// startSim starts one device's simulator on its protocol.
func startSim(ctx context.Context, p *profile.Profile, d simDevice, cat *cim.Catalogue, clients map[string]*mqtt.Client, log *slog.Logger) (simulator, string, func(), error) {
	switch p.Protocol {
	case profile.Modbus, profile.SunSpec:
		s, err := modbus.NewSimulator(p, d.Config, cat)
		if err != nil {
			return nil, "", nil, err
		}
		addr, err := s.Start(d.Address)
		return s, addr, func() { s.Close() }, err
	case profile.HTTP:
		s, err := httpjson.NewSimulator(p, d.Config, cat)
		if err != nil {
			return nil, "", nil, err
		}
		start := s.Start
		if d.TLS {
			start = s.StartTLS
		}
		addr, err := start(d.Address)
		return s, addr, func() { s.Close() }, err
	case profile.Kasa:
		s, err := kasa.NewSimulator(p, d.Config, cat)
		if err != nil {
			return nil, "", nil, err
		}
		addr, err := s.Start(d.Address)
		return s, addr, func() { s.Close() }, err
	case profile.MQTT:
		id := d.Address + "\x00" + d.Username
		cl, ok := clients[id]
		if !ok {
			var err error
			cl, err = mqtt.Dial(ctx, mqtt.ClientConfig{URL: d.Address, Username: d.Username, Password: d.Password,
				ClientID: "gridlink-sim-" + strings.ReplaceAll(d.Asset, "/", "-")}, log)
			if err != nil {
				return nil, "", nil, err
			}
			clients[id] = cl
		}
		s, err := mqtt.NewSimulator(p, d.Config, cat, cl)
		return s, d.Address, func() {}, err
	}
	return nil, "", nil, fmt.Errorf("protocol %q has no simulator", p.Protocol)
}

// runChargePointSim runs one simulated OCPP 1.6J charge point against a
// central system: --listen is the central system's base URL, --asset the
// charge point id, --password its key, --vars tag=RFID the tag it presents.
// Its truth (every meter value sent) is served on --truth.
func runChargePointSim(ctx context.Context, d simDevice, vars string, c simConfig, stdout, stderr io.Writer) error {
	cfg := chargepoint.Config{ID: d.Asset, URL: d.Address, Password: d.Password, Seed: c.Seed, Speed: c.TimeScale}
	for _, kv := range strings.Split(vars, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == "tag" {
			cfg.IDTags = append(cfg.IDTags, v)
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cp, err := chargepoint.New(cfg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Truth)
	if err != nil {
		return fmt.Errorf("truth endpoint: %w", err)
	}
	srv := &http.Server{Handler: cp.TruthHandler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	fmt.Fprintf(stdout, "truth on http://%s/\nsim %s chargepoint to %s/%s\n", ln.Addr(), d.Asset, d.Address, d.Asset)
	return cp.Run(ctx)
}
