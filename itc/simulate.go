package itc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/device"
	"github.com/gridlink/gridlink/gateway"
	"github.com/gridlink/gridlink/httpjson"
	"github.com/gridlink/gridlink/kasa"
	"github.com/gridlink/gridlink/ledger"
	"github.com/gridlink/gridlink/modbus"
	"github.com/gridlink/gridlink/mqtt"
	"github.com/gridlink/gridlink/profile"
	"github.com/gridlink/gridlink/sim"
)

// SimOptions tune Simulate.
type SimOptions struct {
	// Dir holds the gateways' queues and signing keys; "" means a
	// temporary directory removed by Close.
	Dir string
	// Cycle is the devices' measuring cycle (default 1 s); gateways poll
	// twice a cycle.
	Cycle time.Duration
	// Seed makes the devices' trajectories reproducible.
	Seed uint64
	// Choose picks the profile and variables that simulate an asset; ok
	// false leaves the asset out. Nil means DefaultChoice.
	Choose func(site string, a cim.Asset) (profile string, vars map[string]string, ok bool)
	// GatewayProfiles is a directory of user profiles the gateways load
	// (not the simulators): a deliberately wrong one makes a broken
	// set-up.
	GatewayProfiles string
	// IngestKey, when set, is the key the gateways present instead of a
	// fresh one (a wrong key makes a broken set-up).
	IngestKey string
	// OCPP is the platform's OCPP central system, e.g.
	// ws://host:8887/ocpp. When set, the sites' charging points are
	// simulated as OCPP chargers: each is registered through the admin
	// API with a fresh password, the site gets the RFID tag SimIDTag, and
	// an EV charges for the whole run. "" leaves charging points out.
	OCPP string
	// ChooseCharger picks a charging point's OCPP identity and quirks; ok
	// false leaves it out. Nil simulates every charging point as
	// "{site}-{asset}" without quirks.
	ChooseCharger func(site string, a cim.Asset) (ChargerChoice, bool)
	// Logger; nil discards.
	Logger *slog.Logger
}

// Simulation is simulated devices and one gateway per site, feeding a
// platform; it serves the devices' truth and injects faults.
type Simulation struct {
	log      *slog.Logger
	set      *profile.Set
	cat      *cim.Catalogue
	cycle    time.Duration
	dir      string
	tmp      bool
	runCtx   context.Context // ends with Close; the devices and gateways run in it
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	sites    []*simSite
	chargers *simChargers // nil without SimOptions.OCPP
}

// simSite is one site's devices, truth endpoint, gateway and link.
type simSite struct {
	id      string
	truth   *sim.Truth
	truthLn net.Listener
	truthSv *http.Server
	linkLn  net.Listener
	linkSv  *http.Server
	linkOff atomic.Bool // the gateway's link to the platform is cut
	// clockOff is how far (ns) the gateway's clock runs ahead of true
	// time: its Options.Now reads it, so a clock_offset fault needs no
	// second gateway (whose new broker address pushing devices would
	// not know).
	clockOff atomic.Int64
	// refusals counts readings the platform refused in the gateway's
	// batches, as seen on the link; lastRefusal is the last one's reason.
	refMu       sync.Mutex
	refusals    int64
	lastRefusal string
	gw          *gateway.Gateway
	gwStop      context.CancelFunc
	gwDone      chan struct{}
	devices     []*simDevice
	mqttCl      *mqtt.Client
}

// simDevice is one simulated device.
type simDevice struct {
	cfg     device.Config // as the gateway reads it
	prof    *profile.Profile
	seed    uint64
	addr    string // where the simulator listens
	model   *sim.Model
	mu      sync.Mutex
	stop    context.CancelFunc // its Drive
	done    chan struct{}      // closed when its Drive returned
	closer  func()
	offsets map[sim.Channel]float64 // counter reset: subtracted from counters
	pending bool                    // a counter reset asked for, taken at the next frame
	update  func(sim.Frame) ([]device.Value, error)
}

// Simulate starts, in this process, simulators for the assets of the
// target's sites (every site the key lists when t.Sites is empty) and one
// gateway per site sending to the platform with a fresh ingest key; the
// readings of ledger assets are signed by a key registered as the site's
// signer. t.Key must be an admin key. Charging points are simulated as OCPP
// chargers when opt.OCPP names the platform's central system (it is not
// part of the HTTP API), else left out.
func Simulate(ctx context.Context, t Target, opt SimOptions) (*Simulation, error) {
	cl, err := newClient(t)
	if err != nil {
		return nil, err
	}
	if opt.Cycle <= 0 {
		opt.Cycle = time.Second
	}
	if opt.Cycle < 100*time.Millisecond {
		return nil, fmt.Errorf("cycle %v: want at least 100ms", opt.Cycle)
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cat := cim.Default()
	set, err := profile.Embedded(cat)
	if err != nil {
		return nil, fmt.Errorf("profiles: %w", err)
	}
	s := &Simulation{log: log, set: set, cat: cat, cycle: opt.Cycle, dir: opt.Dir}
	if s.dir == "" {
		if s.dir, err = os.MkdirTemp("", "gridlink-itc-"); err != nil {
			return nil, fmt.Errorf("simulation directory: %w", err)
		}
		s.tmp = true
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.runCtx, s.cancel = runCtx, cancel
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	r := &runner{cl: cl, log: log}
	sites, assets, err := r.sites(ctx, t.Sites)
	if err != nil {
		return nil, err
	}
	choose := opt.Choose
	if choose == nil {
		choose = func(_ string, a cim.Asset) (string, map[string]string, bool) { return DefaultChoice(set, a) }
	}
	seed := opt.Seed
	for _, site := range sites {
		if err := s.startSite(ctx, runCtx, cl, site, assets[site], choose, &seed, opt); err != nil {
			return nil, fmt.Errorf("site %s: %w", site, err)
		}
	}
	if opt.OCPP != "" {
		chooseCharger := opt.ChooseCharger
		if chooseCharger == nil {
			chooseCharger = func(string, cim.Asset) (ChargerChoice, bool) { return ChargerChoice{}, true }
		}
		if err := s.startChargers(ctx, cl, sites, assets, opt.OCPP, chooseCharger, &seed); err != nil {
			return nil, err
		}
	}
	if len(s.sites) == 0 && (s.chargers == nil || len(s.chargers.cps) == 0) {
		if opt.OCPP == "" {
			return nil, errors.New("no asset of the sites has a simulator (charging points are simulated only with the OCPP endpoint)")
		}
		return nil, errors.New("no asset of the sites has a simulator")
	}
	// Every device recorded a cycle before the runner asks who is known.
	deadline := time.Now().Add(10 * s.cycle)
	for _, ss := range s.sites {
		for _, d := range ss.devices {
			for len(ss.truth.Cycles(d.cfg.Asset, time.Time{}, time.Time{})) == 0 && time.Now().Before(deadline) {
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(50 * time.Millisecond):
				}
			}
		}
	}
	ok = true
	return s, nil
}

// DefaultChoice picks the embedded profile for an asset: one of its type
// whose title names the asset's make or model, else the first of its type
// by name. Every profile variable gets a value unique to the asset.
func DefaultChoice(set *profile.Set, a cim.Asset) (string, map[string]string, bool) {
	var best *profile.Profile
	bestScore := -1
	for _, p := range set.All() {
		if p.AssetType != a.Type || p.Protocol == "" {
			continue
		}
		score := 0
		title := strings.ToLower(p.Name + " " + p.Title)
		for _, w := range strings.Fields(strings.ToLower(a.Make + " " + a.Model)) {
			if len(w) > 2 && strings.Contains(title, w) {
				score++
			}
		}
		if score > bestScore {
			best, bestScore = p, score
		}
	}
	if best == nil {
		return "", nil, false
	}
	return best.Name, uniqueVars(best, a.ID), true
}

var unsafeRE = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// uniqueVars gives each {var} of a profile a value unique to the asset:
// devices of a site share one broker.
func uniqueVars(p *profile.Profile, asset string) map[string]string {
	vars := map[string]string{}
	for _, name := range p.Placeholders() {
		vars[name] = name + "-" + unsafeRE.ReplaceAllString(asset, "-")
	}
	return vars
}

// startSite starts a site's truth endpoint, simulators and gateway, and
// adds the site to s; a site with no asset to simulate is left out.
func (s *Simulation) startSite(ctx, runCtx context.Context, cl *client, site string, assets []cim.Asset,
	choose func(string, cim.Asset) (string, map[string]string, bool), seed *uint64, opt SimOptions) error {
	ss := &simSite{id: site, truth: sim.NewTruth(s.cat, 0), gwDone: make(chan struct{})}
	var devs []*simDevice
	ledgerAssets := false
	for _, a := range assets {
		if a.Type == cim.ChargingPoint || a.Type == cim.Gateway {
			continue
		}
		name, vars, ok := choose(site, a)
		if !ok {
			s.log.Info("asset not simulated: no profile", "site", site, "asset", a.ID, "type", a.Type)
			continue
		}
		p, found := s.set.Get(name)
		if !found {
			return fmt.Errorf("asset %s: profile %q is not known", a.ID, name)
		}
		*seed++
		d := &simDevice{prof: p, seed: *seed, cfg: device.Config{Asset: a.ID, Profile: p.Name, Vars: vars,
			Interval: s.cycle / 2, Username: "user", Password: "password-123", Token: "token-123", Ledger: a.Ledger}}
		ledgerAssets = ledgerAssets || a.Ledger
		devs = append(devs, d)
	}
	if len(devs) == 0 {
		return nil
	}
	ss.devices = devs
	s.sites = append(s.sites, ss) // so that Close stops what starts below

	var err error
	if ss.truthLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return fmt.Errorf("truth endpoint: %w", err)
	}
	ss.truthSv = &http.Server{Handler: ss.truth.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go ss.truthSv.Serve(ss.truthLn)

	// The gateway reaches the platform through a link this process can
	// cut: a platform outage as the gateway sees it.
	target, _ := url.Parse(cl.base.String())
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ErrorLog = slog.NewLogLogger(s.log.Handler(), slog.LevelDebug) // a cut link (platform_down) fails every request
	proxy.ModifyResponse = ss.noteRefusals
	if ss.linkLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return fmt.Errorf("link: %w", err)
	}
	ss.linkSv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ss.linkOff.Load() {
			panic(http.ErrAbortHandler) // the connection drops, as on a dead link
		}
		proxy.ServeHTTP(w, r)
	})}
	go ss.linkSv.Serve(ss.linkLn)

	// Polled devices' simulators first: the gateway needs their addresses.
	for _, d := range devs {
		if d.prof.Protocol == profile.MQTT {
			continue
		}
		if err := s.startDevice(runCtx, ss, d); err != nil {
			return err
		}
	}
	key := opt.IngestKey
	if key == "" {
		var created struct {
			Key string `json:"key"`
		}
		if err := cl.do(ctx, http.MethodPost, "/api/v1/keys", nil, map[string]string{"name": "itc-" + site, "site": site, "scope": "ingest"}, &created); err != nil {
			return fmt.Errorf("create an ingest key (the key must be an admin's): %w", err)
		}
		key = created.Key
	}
	dir := filepath.Join(s.dir, site)
	cfg := gateway.Config{Site: site, Data: filepath.Join(dir, "gateway"), Profiles: opt.GatewayProfiles,
		Platform: gateway.PlatformConfig{URL: "http://" + ss.linkLn.Addr().String(), Key: key, BatchSize: 5000},
		Queue:    gateway.QueueConfig{MaxBytes: 64 << 20}, Status: gateway.StatusConfig{Listen: "off"}, LogLevel: "info"}
	if slices.ContainsFunc(devs, func(d *simDevice) bool { return d.prof.Protocol == profile.MQTT }) {
		b := &gateway.BrokerConfig{Listen: "127.0.0.1:0"}
		for _, d := range devs {
			if d.prof.Protocol == profile.MQTT {
				b.Users = append(b.Users, gateway.BrokerUser{Username: brokerUser(d), Password: "secret-" + brokerUser(d)})
			}
		}
		cfg.Broker = b
	}
	if ledgerAssets {
		keyFile, err := s.signer(ctx, cl, site, dir)
		if err != nil {
			return err
		}
		cfg.Ledger = &gateway.LedgerConfig{Key: keyFile}
	}
	for _, d := range devs {
		c := d.cfg
		switch d.prof.Protocol {
		case profile.MQTT:
			c.Address = "embedded"
			c.Username, c.Password = brokerUser(d), "secret-"+brokerUser(d)
		case profile.HTTP:
			c.Address = "http://" + d.addr
		default:
			c.Address = d.addr
		}
		cfg.Devices = append(cfg.Devices, c)
	}
	now := func() time.Time { return time.Now().Add(time.Duration(ss.clockOff.Load())) }
	gw, err := gateway.Open(ctx, cfg, gateway.Options{Catalogue: s.cat, Logger: s.log.With("gateway", site), Now: now})
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	ss.gw = gw
	gctx, gstop := context.WithCancel(runCtx)
	ss.gwStop = gstop
	go func() {
		defer close(ss.gwDone)
		if err := gw.Run(gctx); err != nil {
			s.log.Warn("gateway stopped", "site", site, "err", err)
		}
	}()
	// Pushing devices publish to the gateway's broker.
	for _, d := range devs {
		if d.prof.Protocol != profile.MQTT {
			continue
		}
		d.cfg.Address = "tcp://" + gw.BrokerAddr()
		d.cfg.Username, d.cfg.Password = brokerUser(d), "secret-"+brokerUser(d)
		if err := s.startDevice(runCtx, ss, d); err != nil {
			return err
		}
	}
	return nil
}

// maxReply bounds the batch reply the link reads for refusals.
const maxReply = 1 << 20

// noteRefusals reads a batch reply on its way to the gateway and notes
// the readings the platform refused: the gateway drops them, keeping only
// a count, and a case's reason needs the platform's words.
func (ss *simSite) noteRefusals(resp *http.Response) error {
	if resp.Request == nil || resp.Request.Method != http.MethodPost || resp.StatusCode != http.StatusOK {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read the platform's reply: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if len(body) > maxReply {
		return nil // too long to be a reply worth reading; passed on as is
	}
	var rep struct {
		Rejected int64 `json:"rejected"`
		Errors   []struct {
			Field  string `json:"field"`
			Value  string `json:"value"`
			Reason string `json:"reason"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &rep) != nil || rep.Rejected <= 0 {
		return nil
	}
	ss.refMu.Lock()
	defer ss.refMu.Unlock()
	ss.refusals += rep.Rejected
	if len(rep.Errors) > 0 {
		e := rep.Errors[len(rep.Errors)-1]
		ss.lastRefusal = fmt.Sprintf("%s %s: %s", e.Field, e.Value, e.Reason)
	}
	return nil
}

// refused returns how many readings the platform refused so far and the
// last refusal's words.
func (ss *simSite) refused() (int64, string) {
	ss.refMu.Lock()
	defer ss.refMu.Unlock()
	return ss.refusals, ss.lastRefusal
}

func brokerUser(d *simDevice) string { return "dev-" + unsafeRE.ReplaceAllString(d.cfg.Asset, "-") }

// signer makes the site's gateway signing key and registers it.
func (s *Simulation) signer(ctx context.Context, cl *client, site, dir string) (string, error) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	private, public, err := ledger.GenerateKey("itc-" + site + "-" + hex.EncodeToString(b[:]))
	if err != nil {
		return "", fmt.Errorf("ledger key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	file := filepath.Join(dir, "ledger.key")
	if err := os.WriteFile(file, []byte(private+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("ledger key: %w", err)
	}
	if err := cl.do(ctx, http.MethodPost, "/api/v1/sites/"+url.PathEscape(site)+"/signers", nil, map[string]string{"public_key": public}, nil); err != nil {
		return "", fmt.Errorf("register the gateway's signing key: %w", err)
	}
	return file, nil
}

// startDevice starts (or restarts) a device's simulator and drives it.
func (s *Simulation) startDevice(runCtx context.Context, ss *simSite, d *simDevice) error {
	addr := d.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var update func(sim.Frame) ([]device.Value, error)
	var err error
	cfg := d.cfg
	switch d.prof.Protocol {
	case profile.Modbus, profile.SunSpec:
		var m *modbus.Simulator
		if m, err = modbus.NewSimulator(d.prof, cfg, s.cat); err == nil {
			d.addr, err = m.Start(addr)
			update, d.closer = m.Update, func() { m.Close() }
		}
	case profile.HTTP:
		var h *httpjson.Simulator
		if h, err = httpjson.NewSimulator(d.prof, cfg, s.cat); err == nil {
			d.addr, err = h.Start(addr)
			update, d.closer = h.Update, func() { h.Close() }
		}
	case profile.Kasa:
		var k *kasa.Simulator
		if k, err = kasa.NewSimulator(d.prof, cfg, s.cat); err == nil {
			d.addr, err = k.Start(addr)
			update, d.closer = k.Update, func() { k.Close() }
		}
	case profile.MQTT:
		if ss.mqttCl == nil {
			ss.mqttCl, err = mqtt.Dial(runCtx, mqtt.ClientConfig{URL: cfg.Address, Username: cfg.Username, Password: cfg.Password,
				ClientID: "itc-sim-" + ss.id}, s.log)
			if err != nil {
				return fmt.Errorf("device %s: mqtt: %w", cfg.Asset, err)
			}
		}
		var m *mqtt.Simulator
		if m, err = mqtt.NewSimulator(d.prof, cfg, s.cat, ss.mqttCl); err == nil {
			update, d.closer = m.Update, func() {}
		}
	default:
		err = fmt.Errorf("protocol %q has no simulator", d.prof.Protocol)
	}
	if err != nil {
		if d.closer != nil {
			d.closer()
		}
		return fmt.Errorf("device %s (%s): %w", cfg.Asset, d.prof.Name, err)
	}
	if d.model == nil {
		d.model = sim.NewModel(sim.ModelConfig{Seed: d.seed, Cycle: s.cycle, Channels: sim.ChannelsOf(d.prof), Catalogue: s.cat, Kind: sim.KindOf(d.prof), TimeScale: 1})
	}
	d.update = update
	dctx, stop := context.WithCancel(runCtx)
	done := make(chan struct{})
	d.mu.Lock()
	d.stop, d.done = stop, done
	d.mu.Unlock()
	s.wg.Go(func() {
		defer close(done)
		sim.Drive(dctx, d.model, s.cycle, d.serve, ss.truth, cfg.Asset, s.log)
	})
	return nil
}

// serve hands a frame to the simulator, with counters lowered by a reset.
func (d *simDevice) serve(f sim.Frame) ([]device.Value, error) {
	d.mu.Lock()
	if d.pending {
		d.pending = false
		d.offsets = map[sim.Channel]float64{}
		for ch, v := range f.Values {
			if q, ok := cim.Default().Lookup(ch.Quantity); ok && q.Kind == cim.Cumulative {
				d.offsets[ch] = v
			}
		}
	}
	if len(d.offsets) > 0 {
		vals := make(map[sim.Channel]float64, len(f.Values))
		for ch, v := range f.Values {
			vals[ch] = v - d.offsets[ch]
		}
		f.Values = vals
	}
	d.mu.Unlock()
	return d.update(f)
}

// silence stops a device: it answers no more and records no truth.
func (d *simDevice) silence() {
	d.mu.Lock()
	stop, done := d.stop, d.done
	d.mu.Unlock()
	stop()
	<-done // the model is stepped by one Drive at a time
	d.closer()
}

// Truth returns the truth endpoints, one per site, as "site=URL".
func (s *Simulation) Truth() []string {
	var out []string
	for _, ss := range s.sites {
		out = append(out, ss.id+"=http://"+ss.truthLn.Addr().String())
	}
	if s.chargers != nil {
		out = append(out, s.chargers.truth...)
	}
	return out
}

// Chargers returns how many OCPP chargers are simulated.
func (s *Simulation) Chargers() int {
	if s.chargers == nil {
		return 0
	}
	return len(s.chargers.cps)
}

// Sites returns the simulated sites.
func (s *Simulation) Sites() []string {
	var out []string
	for _, ss := range s.sites {
		out = append(out, ss.id)
	}
	return out
}

// Faults returns the simulation's fault injector; it also implements
// Diagnoser.
func (s *Simulation) Faults() FaultInjector { return (*simFaults)(s) }

// Close stops the gateways, simulators and truth endpoints.
func (s *Simulation) Close() error {
	if s.cancel != nil {
		s.cancel()
	}
	for _, ss := range s.sites {
		if ss.gwStop != nil {
			ss.gwStop()
			<-ss.gwDone
		}
	}
	s.wg.Wait()
	if s.chargers != nil {
		s.chargers.close()
	}
	for _, ss := range s.sites {
		for _, d := range ss.devices {
			if d.closer != nil {
				d.closer()
			}
		}
		if ss.mqttCl != nil {
			ss.mqttCl.Close()
		}
		for _, sv := range []*http.Server{ss.truthSv, ss.linkSv} {
			if sv != nil {
				sv.Close()
			}
		}
	}
	if s.tmp {
		return os.RemoveAll(s.dir)
	}
	return nil
}

func (s *Simulation) site(id string) (*simSite, error) {
	for _, ss := range s.sites {
		if ss.id == id {
			return ss, nil
		}
	}
	return nil, fmt.Errorf("site %s is not simulated", id)
}

// simFaults is a Simulation as a FaultInjector.
type simFaults Simulation

// Inject does a fault to a site:
//   - platform_down: the gateway's link to the platform is cut (the
//     platform is the user's, so the outage is the link's);
//   - device_silent: the site's first polled device stops answering;
//   - counter_reset: the energy registers of the site's first smart meter
//     (else first device) with one restart at zero;
//   - clock_offset: needs the offset; see InjectClock.
func (f *simFaults) Inject(ctx context.Context, fault, site string) (func(context.Context) error, error) {
	s := (*Simulation)(f)
	ss, err := s.site(site)
	if err != nil {
		return nil, err
	}
	switch fault {
	case "platform_down":
		ss.linkOff.Store(true)
		return func(context.Context) error { ss.linkOff.Store(false); return nil }, nil
	case "device_silent":
		for _, d := range ss.devices {
			if d.prof.Protocol == profile.MQTT || d.cfg.Ledger {
				continue
			}
			s.log.Info("device silent", "site", site, "asset", d.cfg.Asset)
			d.silence()
			return func(context.Context) error { return s.startDevice(s.runCtx, ss, d) }, nil
		}
		return nil, fmt.Errorf("site %s has no polled device to silence", site)
	case "counter_reset":
		// A smart meter's register first: the fault case is about meters.
		for _, meters := range []bool{true, false} {
			for _, d := range ss.devices {
				if meters != (d.prof.AssetType == cim.SmartMeter) || !slices.ContainsFunc(sim.ChannelsOf(d.prof), func(ch sim.Channel) bool {
					q, ok := s.cat.Lookup(ch.Quantity)
					return ok && q.Kind == cim.Cumulative
				}) {
					continue
				}
				s.log.Info("counter reset", "site", site, "asset", d.cfg.Asset)
				d.mu.Lock()
				d.pending = true
				d.mu.Unlock()
				// A reset meter stays reset.
				return func(context.Context) error { return nil }, nil
			}
		}
		return nil, fmt.Errorf("site %s has no device with an energy register", site)
	case "clock_offset":
		return nil, errors.New("clock_offset needs the offset: call InjectClock")
	}
	return nil, fmt.Errorf("unknown fault %q", fault)
}

// InjectClock sets the site's gateway clock offset ahead of true time;
// undo sets it right. The devices keep true time.
func (f *simFaults) InjectClock(_ context.Context, site string, offset time.Duration) (func(context.Context) error, error) {
	s := (*Simulation)(f)
	ss, err := s.site(site)
	if err != nil {
		return nil, err
	}
	if offset <= 0 {
		return nil, fmt.Errorf("clock offset %v: want a positive duration", offset)
	}
	s.log.Info("gateway clock ahead", "site", site, "offset", offset)
	ss.clockOff.Store(int64(offset))
	return func(context.Context) error { ss.clockOff.Store(0); return nil }, nil
}

// StampedByGateway says whether the site's gateway stamps the asset's
// readings with its clock: not when the device's profile reads a time
// from its payload.
func (f *simFaults) StampedByGateway(site, asset string) bool {
	ss, err := (*Simulation)(f).site(site)
	if err != nil {
		return false
	}
	for _, d := range ss.devices {
		if d.cfg.Asset == asset {
			return !ownTime(d.prof)
		}
	}
	return false
}

// ownTime says whether a profile reads the device's own timestamp.
func ownTime(p *profile.Profile) bool {
	if p.MQTT != nil && slices.ContainsFunc(p.MQTT.Topics, func(t profile.MQTTTopic) bool { return t.Time != nil }) {
		return true
	}
	return p.HTTP != nil && slices.ContainsFunc(p.HTTP.Requests, func(r profile.HTTPRequest) bool { return r.Time != nil })
}

// Diagnose says what is wrong with the site's gateway link, and what the
// platform refused of its readings.
func (f *simFaults) Diagnose(site string) string {
	s := (*Simulation)(f)
	ss, err := s.site(site)
	if err != nil || ss.gw == nil {
		return ""
	}
	var parts []string
	if st := ss.gw.Status(); st.Uplink.State != "ok" && st.Uplink.State != "" {
		msg := "the gateway's uplink is " + st.Uplink.State
		if st.Uplink.LastError != "" {
			msg += ": " + st.Uplink.LastError
		}
		parts = append(parts, msg)
	}
	if n, last := ss.refused(); n > 0 {
		msg := fmt.Sprintf("the platform refused %d readings of the gateway", n)
		if last != "" {
			msg += ", the last: " + last
		}
		parts = append(parts, msg)
	}
	return strings.Join(parts, "; ")
}
