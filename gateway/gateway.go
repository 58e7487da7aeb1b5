// Package gateway is the home energy management gateway (HEMS): it reads
// every configured device over its protocol at its own interval, maps each
// value into the common information model, queues it durably on local disk
// and forwards it to the platform. A device that fails never stops the
// others: it is marked unhealthy and retried with backoff. The status page
// shows each device's health, last values and errors, the queue and the
// uplink.
//
// Integrations 1, 2 and 4 of the seed: asset → HEMS, HEMS → platform, and
// community asset → platform (a gateway in front of community batteries,
// PV and transformer boxes).
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/device"
	"github.com/gridlink/gridlink/httpjson"
	"github.com/gridlink/gridlink/kasa"
	"github.com/gridlink/gridlink/modbus"
	"github.com/gridlink/gridlink/mqtt"
	"github.com/gridlink/gridlink/profile"
	"github.com/gridlink/gridlink/queue"
	"github.com/gridlink/gridlink/uplink"
)

// Options are a gateway's dependencies. Every field may be zero.
type Options struct {
	// Catalogue of quantities; nil means cim.Default().
	Catalogue *cim.Catalogue
	// Profiles; nil means the embedded ones plus Config.Profiles.
	Profiles *profile.Set
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer for Prometheus metrics; nil means a private registry,
	// served on the status listener's /metrics.
	Registerer prometheus.Registerer
	// Gatherer serves /metrics; nil means the private registry.
	Gatherer prometheus.Gatherer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Gateway runs the devices, the queue, the uplink and the status page.
type Gateway struct {
	cfg     Config
	cat     *cim.Catalogue
	log     *slog.Logger
	now     func() time.Time
	queue   *queue.Queue
	uplink  *uplink.Uplink
	broker  *mqtt.Broker
	clients map[string]*mqtt.Client
	runners []*runner
	// appender writes the devices' readings to the queue in batches.
	appender *appender
	met      *metrics
	gather   prometheus.Gatherer
	started  time.Time

	statusLn   net.Listener
	brokerAddr string
	signer     *ledgerSigner // nil when the gateway signs nothing
}

// Open prepares a gateway: it opens the queue, starts the embedded broker
// and the status listener, and builds every device's connector. A device
// whose connector cannot be built (a bad profile variable) is an error; a
// device that cannot be reached is not, it is retried once running.
func Open(ctx context.Context, cfg Config, opts Options) (*Gateway, error) {
	g := &Gateway{cfg: cfg, cat: opts.Catalogue, log: opts.Logger, now: opts.Now, clients: map[string]*mqtt.Client{}}
	if g.cat == nil {
		g.cat = cim.Default()
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.now == nil {
		g.now = time.Now
	}
	reg, gat := opts.Registerer, opts.Gatherer
	if reg == nil {
		r := prometheus.NewRegistry()
		reg, gat = r, r
	}
	if gat == nil {
		if rg, ok := reg.(prometheus.Gatherer); ok {
			gat = rg
		} else {
			gat = prometheus.NewRegistry() // /metrics then serves nothing
		}
	}
	g.gather = gat
	g.met = newMetrics(reg)
	set := opts.Profiles
	if set == nil {
		var err error
		if set, err = profile.Load(g.cat, cfg.Profiles); err != nil {
			return nil, fmt.Errorf("profiles: %w", err)
		}
	}
	key, err := cfg.Platform.key()
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			g.closeAll()
		}
	}()
	if g.signer, err = newLedgerSigner(cfg, g.cat); err != nil {
		return nil, err
	}
	var sign func([]cim.Reading) (string, error)
	if g.signer != nil {
		sign = g.signer.sign
		g.log.Info("signing the readings of ledger devices", "signer", g.signer.key.Name(), "devices", len(g.signer.assets))
	}
	if err := os.MkdirAll(cfg.Data, 0o750); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	g.queue, err = queue.Open(filepath.Join(cfg.Data, "queue"), queue.Options{MaxBytes: int64(cfg.Queue.MaxBytes), Logger: g.log.With("part", "queue")})
	if err != nil {
		return nil, fmt.Errorf("open queue: %w", err)
	}
	g.uplink, err = uplink.New(uplink.Config{
		URL: cfg.Platform.URL, Site: cfg.Site, Key: key, BatchSize: cfg.Platform.BatchSize,
		CAFile: cfg.Platform.CAFile, Registerer: reg,
		// One request a second at most while readings trickle in; retry
		// a platform that went away at least every 30 s.
		Linger: time.Second, MaxBackoff: 30 * time.Second,
		Sign: sign,
	}, g.queue, g.log.With("part", "uplink"))
	if err != nil {
		return nil, fmt.Errorf("uplink: %w", err)
	}
	if b := cfg.Broker; b != nil {
		users, acl := map[string]string{}, map[string][]string{}
		for _, u := range b.Users {
			users[u.Username] = u.Password
			if len(u.Topics) > 0 {
				acl[u.Username] = u.Topics
			}
		}
		g.broker, err = mqtt.NewBroker(mqtt.BrokerConfig{Listen: b.Listen, Users: users, ACL: acl}, g.log.With("part", "broker"))
		if err != nil {
			return nil, fmt.Errorf("mqtt broker: %w", err)
		}
		if g.brokerAddr, err = g.broker.Start(); err != nil {
			return nil, fmt.Errorf("mqtt broker on %s: %w", b.Listen, err)
		}
		g.log.Info("mqtt broker listening", "addr", g.brokerAddr, "users", len(users))
	}
	g.appender = newAppender(g.queue, g.uplink, cfg.Queue.AppendWindow)
	sink := g.appender
	topics := map[string]string{} // MQTT filter → asset, to catch two devices on one topic
	for i, dc := range cfg.Devices {
		p, found := set.Get(dc.Profile)
		if !found {
			return nil, fmt.Errorf("device %d (%s): profile %q is not known", i, dc.Asset, dc.Profile)
		}
		r := newRunner(dc, p, g.cat, sink, g.log, g.now, g.met)
		if err := g.connect(ctx, r); err != nil {
			return nil, fmt.Errorf("device %s (%s): %w", dc.Asset, dc.Profile, err)
		}
		g.runners = append(g.runners, r)
		if f, ok := r.sub.(interface{ Filters() []string }); ok {
			for _, t := range f.Filters() {
				key := dc.Address + " " + t
				if other, dup := topics[key]; dup {
					// Two Shelly devices left with the same id, say: each
					// would take the other's values.
					g.log.Warn("two devices subscribe to the same topic; check their vars", "topic", t, "asset", dc.Asset, "other", other)
				}
				topics[key] = dc.Asset
			}
		}
	}
	if cfg.Status.Listen != "off" {
		if g.statusLn, err = net.Listen("tcp", cfg.Status.Listen); err != nil {
			return nil, fmt.Errorf("status page: %w", err)
		}
	}
	ok = true
	return g, nil
}

// connect builds the device's connector for its profile's protocol.
func (g *Gateway) connect(ctx context.Context, r *runner) error {
	log := g.log.With("asset", r.cfg.Asset)
	var err error
	switch r.prof.Protocol {
	case profile.Modbus, profile.SunSpec:
		r.poller, err = modbus.NewPoller(r.prof, r.cfg, log)
	case profile.HTTP:
		r.poller, err = httpjson.NewPoller(r.prof, r.cfg, log)
	case profile.Kasa:
		r.poller, err = kasa.NewPoller(r.prof, r.cfg, log)
	case profile.MQTT:
		var bus mqtt.Bus
		if bus, err = g.bus(ctx, r.cfg); err == nil {
			r.sub, err = mqtt.NewSubscriber(r.prof, r.cfg, bus, log)
		}
		if c, ok := bus.(*mqtt.Client); ok {
			r.busErr = c.Err
		}
	default:
		err = fmt.Errorf("protocol %q has no connector", r.prof.Protocol)
	}
	return err
}

// bus returns the MQTT bus of a device: the embedded broker, or a client
// of an outside broker shared by the devices that name the same one.
func (g *Gateway) bus(ctx context.Context, dc device.Config) (mqtt.Bus, error) {
	if dc.Address == "" || dc.Address == "embedded" {
		if g.broker == nil {
			return nil, errors.New("no embedded broker configured")
		}
		return g.broker, nil
	}
	id := dc.Address + "\x00" + dc.Username
	if c, ok := g.clients[id]; ok {
		return c, nil
	}
	// Connect, not Dial: a broker that is down must not keep the gateway
	// from starting; its devices show it until it answers.
	c, err := mqtt.Connect(mqtt.ClientConfig{URL: dc.Address, Username: dc.Username, Password: dc.Password,
		ClientID: "gridlink-" + g.cfg.Site + "-" + fmt.Sprint(len(g.clients))}, g.log.With("broker", redactAddress(dc.Address)))
	if err != nil {
		return nil, fmt.Errorf("mqtt broker %s: %w", redactAddress(dc.Address), err)
	}
	g.clients[id] = c
	return c, nil
}

// StatusAddr is the status page's address, or "" when it is off.
func (g *Gateway) StatusAddr() string {
	if g.statusLn == nil {
		return ""
	}
	return g.statusLn.Addr().String()
}

// BrokerAddr is the embedded broker's address, or "".
func (g *Gateway) BrokerAddr() string { return g.brokerAddr }

// Run reads the devices and forwards their readings until ctx ends, then
// closes everything. Readings queued and not yet sent stay on disk for the
// next start.
func (g *Gateway) Run(ctx context.Context) error {
	defer g.closeAll()
	g.started = g.now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg, devices sync.WaitGroup
	wg.Go(func() { g.appender.run(ctx) })
	for _, r := range g.runners {
		devices.Go(func() { r.run(ctx) })
	}
	upErr := make(chan error, 1)
	wg.Go(func() { upErr <- g.uplink.Run(ctx) })
	var srv *http.Server
	if g.statusLn != nil {
		srv = &http.Server{Handler: g.Handler(), ReadHeaderTimeout: 5 * time.Second}
		wg.Go(func() {
			if err := srv.Serve(g.statusLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				g.log.Error("status page stopped", "err", err)
			}
		})
	}
	g.log.Info("gateway running", "site", g.cfg.Site, "devices", len(g.runners), "platform", g.cfg.Platform.URL, "status", g.StatusAddr())
	var err error
	select {
	case <-ctx.Done():
	case err = <-upErr:
		if err != nil {
			err = fmt.Errorf("uplink: %w", err)
		}
	}
	cancel()
	// The devices stop first; what they read is still written.
	devices.Wait()
	g.appender.close()
	if srv != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = srv.Shutdown(sctx)
		scancel()
	}
	wg.Wait()
	return err
}

func (g *Gateway) closeAll() {
	for _, c := range g.clients {
		c.Close()
	}
	g.clients = nil
	if g.broker != nil {
		g.broker.Close()
		g.broker = nil
	}
	if g.statusLn != nil {
		g.statusLn.Close()
	}
	if g.queue != nil {
		if err := g.queue.Close(); err != nil {
			g.log.Error("close queue", "err", err)
		}
		g.queue = nil
	}
}

// key returns the ingest key from the configuration or its file.
func (p PlatformConfig) key() (string, error) {
	if p.Key != "" {
		return p.Key, nil
	}
	b, err := os.ReadFile(p.KeyFile)
	if err != nil {
		return "", fmt.Errorf("platform key: %w", err)
	}
	k := strings.TrimSpace(string(b))
	if k == "" {
		return "", fmt.Errorf("platform key file %s is empty", p.KeyFile)
	}
	return k, nil
}

// redactAddress hides a password in an address shown or logged.
func redactAddress(a string) string {
	if u, err := url.Parse(a); err == nil && u.User != nil {
		return u.Redacted()
	}
	return a
}
