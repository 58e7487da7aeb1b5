//go:build !edge

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/gridlink/gridlink/itc"
)

// rebindFor bounds how long a restart waits for the API's or the OCPP
// central system's port to be free again.
const rebindFor = 15 * time.Second

// demoPlatform is the demo's platform and its HTTP server, which the
// fault case platform_down stops and starts again: the same data
// directory, API address and OCPP address, so that gateways, chargers and
// the runner find it where it was.
type demoPlatform struct {
	cfg serveConfig // OCPPListen is pinned after the first start
	// life is the context the platform runs under (its ledger sealer):
	// a restart comes from a fault's undo, whose context is short.
	life   context.Context
	logger *slog.Logger
	// serveErr reports a server that stopped by itself; a stop asked for
	// is not reported.
	serveErr chan error

	mu       sync.Mutex
	plat     *runningPlatform // nil while stopped
	srv      *http.Server
	addr     string // the API's host:port, pinned after the first start
	stopped  time.Time
	restarts []demoOutage
}

// demoOutage is one stop and start of the platform.
type demoOutage struct {
	Stopped, Started time.Time
}

// startDemoPlatform starts the platform with cfg and serves its API on
// cfg.Listen (port 0 picks one, kept for the restarts). A nil logger
// discards.
func startDemoPlatform(ctx context.Context, cfg serveConfig, logger *slog.Logger) (*demoPlatform, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &demoPlatform{cfg: cfg, life: ctx, logger: logger, addr: cfg.Listen, serveErr: make(chan error, 1)}
	if err := d.start(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// Base is the API's base URL.
func (d *demoPlatform) Base() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return "http://" + d.addr
}

// OCPPAddr is the OCPP central system's host:port.
func (d *demoPlatform) OCPPAddr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg.OCPPListen
}

// Running returns the running platform, nil while it is stopped. Do not
// keep it past a fault: a restart replaces it.
func (d *demoPlatform) Running() *runningPlatform {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.plat
}

// Err reports a server that stopped by itself.
func (d *demoPlatform) Err() <-chan error { return d.serveErr }

// Outages lists the stops and starts so far.
func (d *demoPlatform) Outages() []demoOutage {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]demoOutage(nil), d.restarts...)
}

// State says, for the progress line, that the platform is down (since
// when) or came back in the last half minute; "" otherwise.
func (d *demoPlatform) State() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.plat == nil {
		return "platform stopped at " + d.stopped.Format(time.TimeOnly)
	}
	if n := len(d.restarts); n > 0 && time.Since(d.restarts[n-1].Started) < 30*time.Second {
		o := d.restarts[n-1]
		return fmt.Sprintf("platform started again at %s (down %v)", o.Started.Format(time.TimeOnly), o.Started.Sub(o.Stopped).Round(100*time.Millisecond))
	}
	return ""
}

// Start starts the stopped platform again; ctx bounds the wait for its
// ports. Starting a running platform does nothing.
func (d *demoPlatform) Start(ctx context.Context) error {
	d.mu.Lock()
	running := d.plat != nil
	d.mu.Unlock()
	if running {
		return nil
	}
	if err := d.start(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	o := demoOutage{Stopped: d.stopped, Started: time.Now()}
	d.restarts = append(d.restarts, o)
	d.mu.Unlock()
	d.logger.Info("platform started again", "api", d.Base(), "ocpp", d.OCPPAddr(), "down_for", o.Started.Sub(o.Stopped).Round(time.Millisecond))
	return nil
}

// start opens the platform and serves it. Only Start and
// startDemoPlatform call it, never two at once: the fault injector is
// driven by one runner.
func (d *demoPlatform) start(ctx context.Context) error {
	d.mu.Lock()
	cfg, addr := d.cfg, d.addr
	d.mu.Unlock()
	ln, err := listenRetry(ctx, "the platform's API", addr)
	if err != nil {
		return err
	}
	var plat *runningPlatform
	err = retryInUse(ctx, "the OCPP central system", cfg.OCPPListen, func() (err error) {
		plat, err = startPlatform(d.life, cfg, io.Discard, d.logger)
		return err
	})
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: plat.api, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(d.logger.Handler(), slog.LevelWarn)}
	d.mu.Lock()
	d.plat, d.srv = plat, srv
	d.addr = ln.Addr().String()
	// Chargers reconnect to the URL they were given: the port stays.
	d.cfg.OCPPListen = plat.ocppAddr
	d.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			select {
			case d.serveErr <- err:
			default:
			}
		}
	}()
	return nil
}

// Stop stops the platform as an outage would: the API and its live
// streams, the HTTP server, then what runningPlatform.Close closes (the
// OCPP central system, the ledger, the store). Stopping a stopped
// platform does nothing.
func (d *demoPlatform) Stop(ctx context.Context) error {
	d.mu.Lock()
	plat, srv := d.plat, d.srv
	d.plat, d.srv = nil, nil
	if plat != nil {
		d.stopped = time.Now()
	}
	d.mu.Unlock()
	if plat == nil {
		return nil
	}
	plat.api.Close() // ends the live streams, which Shutdown would wait for
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		srv.Close()
		err = fmt.Errorf("stop the platform's HTTP server: %w", err)
	}
	plat.Close()
	d.logger.Info("platform stopped", "api", d.Base(), "ocpp", d.OCPPAddr())
	return err
}

// Close stops the platform for good.
func (d *demoPlatform) Close() {
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d.Stop(sctx)
}

// listenRetry listens on addr, retrying for up to rebindFor while the
// address is still in use (a port just closed).
func listenRetry(ctx context.Context, what, addr string) (net.Listener, error) {
	var ln net.Listener
	err := retryInUse(ctx, what, addr, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	return ln, nil
}

// retryInUse calls f until it succeeds or fails other than with the
// address in use, for up to rebindFor and while ctx lasts.
func retryInUse(ctx context.Context, what, addr string, f func() error) error {
	start := time.Now()
	wait := 50 * time.Millisecond
	for {
		err := f()
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) {
			return err
		}
		if time.Since(start)+wait > rebindFor {
			return fmt.Errorf("%s: %s still in use after %v: %w", what, addr, rebindFor, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %s in use: %w", what, addr, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// demoFaults is the demo's fault injector: platform_down really stops
// the platform, its undo starts it again; every other fault goes to the
// simulation's injector, whose optional parts it forwards.
type demoFaults struct {
	sim  itc.FaultInjector
	plat *demoPlatform
	log  *slog.Logger // nil discards
}

func (f *demoFaults) logger() *slog.Logger {
	if f.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return f.log
}

var (
	_ itc.ClockInjector = (*demoFaults)(nil)
	_ itc.Diagnoser     = (*demoFaults)(nil)
)

// Inject does the fault.
func (f *demoFaults) Inject(ctx context.Context, fault, site string) (func(context.Context) error, error) {
	if fault != itc.FaultPlatformDown {
		return f.sim.Inject(ctx, fault, site)
	}
	// The platform is every site's: its outage is theirs too.
	log := f.logger()
	log.Info("platform_down: stopping the platform", "site", site)
	if err := f.plat.Stop(ctx); err != nil {
		// Stop has closed everything all the same: the platform is down.
		log.Warn("platform_down: stop", "err", err)
	}
	return func(ctx context.Context) error {
		log.Info("platform_down undone: starting the platform", "site", site)
		if err := f.plat.Start(ctx); err != nil {
			return fmt.Errorf("start the platform again: %w", err)
		}
		return nil
	}, nil
}

// InjectClock forwards to the simulation's injector.
func (f *demoFaults) InjectClock(ctx context.Context, site string, offset time.Duration) (func(context.Context) error, error) {
	ci, ok := f.sim.(itc.ClockInjector)
	if !ok {
		return nil, errors.New("the simulation cannot set a gateway's clock")
	}
	return ci.InjectClock(ctx, site, offset)
}

// StampedByGateway forwards to the simulation's injector; without one
// every asset counts as stamped by the gateway, as the runner assumes.
func (f *demoFaults) StampedByGateway(site, asset string) bool {
	if ci, ok := f.sim.(itc.ClockInjector); ok {
		return ci.StampedByGateway(site, asset)
	}
	return true
}

// Diagnose forwards to the simulation's injector, and says when the
// platform is down.
func (f *demoFaults) Diagnose(site string) string {
	msg := ""
	if d, ok := f.sim.(itc.Diagnoser); ok {
		msg = d.Diagnose(site)
	}
	if f.plat.Running() == nil {
		s := f.plat.State()
		if msg != "" {
			msg += "; "
		}
		msg += s
	}
	return msg
}
