// Package chargepoint simulates an OCPP 1.6J charge point: a real
// WebSocket client of a central system that boots, sends heartbeats and
// connector status, runs charging sessions with a realistic charging curve
// and an energy register that only grows, keeps transaction messages in a
// queue while offline and replays them in order, answers the central
// system's commands, and can bend the protocol like real chargers do
// (Alfen, Wallbox, Huawei). Every meter value the central system
// acknowledged is kept as the truth, for tests that compare the platform
// with what the charger sent.
package chargepoint

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/lorenzodonini/ocpp-go/ocpp"
	"github.com/lorenzodonini/ocpp-go/ocpp1.6/certificates"
	"github.com/lorenzodonini/ocpp-go/ocpp1.6/core"
	"github.com/lorenzodonini/ocpp-go/ocpp1.6/extendedtriggermessage"
	"github.com/lorenzodonini/ocpp-go/ocpp1.6/firmware"
	"github.com/lorenzodonini/ocpp-go/ocpp1.6/localauth"
	"github.com/lorenzodonini/ocpp-go/ocpp1.6/logging"
	"github.com/lorenzodonini/ocpp-go/ocpp1.6/remotetrigger"
	"github.com/lorenzodonini/ocpp-go/ocpp1.6/reservation"
	"github.com/lorenzodonini/ocpp-go/ocpp1.6/securefirmware"
	"github.com/lorenzodonini/ocpp-go/ocpp1.6/security"
	"github.com/lorenzodonini/ocpp-go/ocpp1.6/smartcharging"
	"github.com/lorenzodonini/ocpp-go/ocppj"
)

// ChargePoint is one simulated charge point. Its methods are safe for
// concurrent use.
type ChargePoint struct {
	cfg    Config
	log    *slog.Logger
	tls    *tls.Config
	url    string
	cat    *cim.Catalogue
	parser *ocppj.Endpoint // parses and validates the central system's CALLs

	seq     atomic.Uint64
	running atomic.Bool

	wake    chan struct{} // ends a reconnect wait early
	hbReset chan struct{} // heartbeat interval changed
	signal  chan struct{} // outbox has a new entry

	mu           sync.Mutex
	rng          *rand.Rand
	live         *conn // connected, maybe not booted yet
	online       *conn // booted: messages may be sent
	offlineUntil time.Time
	reboot       bool
	heartbeat    time.Duration
	set          settings
	connectors   []*connector
	outbox       []*entry
	inflight     *entry
	drained      chan struct{} // closed and replaced when the outbox shrinks
	sent         []MeterValue
	txns         []Transaction
	boots        int
	bg           sync.WaitGroup
}

// settings are the configuration keys the central system may change.
type settings struct {
	sampleInterval  time.Duration
	sampled         []selector
	sampledRaw      string
	authorizeRemote bool
	txAttempts      int
	txRetry         time.Duration
}

// entry is one message in the outbox.
type entry struct {
	id      string
	action  string
	durable bool // transaction-related: kept while offline, retried
	queued  bool // had to wait for a connection
	tx      *txn // the transaction whose id the payload carries
	// build makes the payload at send time, when the transaction id is
	// known, and the meter values it reports.
	build    func(txID int64) (any, []MeterValue)
	onResult func(raw json.RawMessage)
	onFail   func(err error)
	done     chan callOutcome // for a caller that waits; buffered
	attempts int
}

// New makes a charge point from cfg; log may be nil.
func New(cfg Config, log *slog.Logger) (*ChargePoint, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log = log.With("chargepoint", cfg.ID)
	var tc *tls.Config
	if strings.HasPrefix(cfg.URL, "wss:") {
		if tc, err = cfg.tlsConfig(); err != nil {
			return nil, err
		}
	}
	parser := &ocppj.Endpoint{}
	parser.SetDialect(ocpp.V16)
	for _, p := range []*ocpp.Profile{core.Profile, localauth.Profile, firmware.Profile, reservation.Profile,
		remotetrigger.Profile, smartcharging.Profile, logging.Profile, security.Profile,
		extendedtriggermessage.Profile, certificates.Profile, securefirmware.Profile} {
		parser.AddProfile(p)
	}
	cp := &ChargePoint{
		cfg:       cfg,
		log:       log,
		tls:       tc,
		url:       strings.TrimRight(cfg.URL, "/") + "/" + url.PathEscape(cfg.ID),
		cat:       cim.Default(),
		parser:    parser,
		wake:      make(chan struct{}, 1),
		hbReset:   make(chan struct{}, 1),
		signal:    make(chan struct{}, 1),
		rng:       rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		heartbeat: cfg.HeartbeatInterval,
		drained:   make(chan struct{}),
	}
	def := "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage"
	if cfg.Has(QuirkAlfen) {
		def = "Energy.Active.Import.Register,Power.Active.Import,Current.Import.L1,Current.Import.L2,Current.Import.L3,Voltage.L1-N,Voltage.L2-N,Voltage.L3-N"
	}
	if cfg.SoC {
		def += ",SoC"
	}
	sel, err := parseSampledData(def, 0)
	if err != nil {
		return nil, err
	}
	cp.set = settings{
		sampleInterval: cfg.MeterValueInterval,
		sampled:        sel,
		sampledRaw:     def,
		txAttempts:     cfg.TransactionMessageAttempts,
		txRetry:        cfg.TransactionMessageRetryInterval,
	}
	reg := cfg.RegisterWh
	if reg == 0 {
		reg = math.Round((50_000+cp.rng.Float64()*1_950_000)*10) / 10
	}
	for i := range cfg.Connectors {
		cp.connectors = append(cp.connectors, &connector{
			id:          i + 1,
			status:      "Available",
			register:    reg,
			remoteStart: make(chan string, 1),
			stop:        make(chan string, 1),
		})
	}
	return cp, nil
}

// Config returns the configuration with defaults filled in.
func (cp *ChargePoint) Config() Config { return cp.cfg }

// Run connects to the central system, retrying with backoff while it is
// unreachable, and runs the charge point until ctx ends. It returns nil
// when ctx ends and an error only if it was already running.
func (cp *ChargePoint) Run(ctx context.Context) error {
	if !cp.running.CompareAndSwap(false, true) {
		return errors.New("charge point " + cp.cfg.ID + " is already running")
	}
	defer cp.running.Store(false)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for _, k := range cp.connectors {
		wg.Go(func() { cp.runConnector(ctx, k) })
	}
	cp.connectLoop(ctx)
	cancel()
	wg.Wait()
	cp.bg.Wait()
	return nil
}

// Disconnect drops the connection as a network failure would; the charger
// reconnects at once (with backoff if the central system is down).
func (cp *ChargePoint) Disconnect() {
	cp.mu.Lock()
	c := cp.live
	cp.mu.Unlock()
	if c != nil {
		c.close()
	}
}

// GoOffline drops the connection and stays offline for d (until GoOnline
// if sooner), queueing transaction messages meanwhile.
func (cp *ChargePoint) GoOffline(d time.Duration) {
	cp.mu.Lock()
	cp.offlineUntil = time.Now().Add(d)
	cp.mu.Unlock()
	cp.Disconnect()
}

// GoOnline ends an offline period started by GoOffline.
func (cp *ChargePoint) GoOnline() {
	cp.mu.Lock()
	cp.offlineUntil = time.Time{}
	cp.mu.Unlock()
	poke(cp.wake)
}

// Online reports whether the charger is connected and booted.
func (cp *ChargePoint) Online() bool {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.online != nil
}

// Queued returns how many transaction-related messages wait for delivery.
func (cp *ChargePoint) Queued() int {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	n := 0
	for _, e := range cp.outbox {
		if e.durable {
			n++
		}
	}
	return n
}

// Boots returns how many BootNotifications the central system accepted.
func (cp *ChargePoint) Boots() int {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.boots
}

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// sleep waits d or until woken; it reports false when ctx ended.
func sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-wake:
	}
	return true
}

// connectLoop keeps a connection to the central system until ctx ends.
func (cp *ChargePoint) connectLoop(ctx context.Context) {
	backoff := cp.cfg.ReconnectMin
	for ctx.Err() == nil {
		cp.mu.Lock()
		wait := time.Until(cp.offlineUntil)
		cp.mu.Unlock()
		if wait > 0 {
			if !sleep(ctx, wait, cp.wake) {
				return
			}
			continue
		}
		c, err := cp.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d := cp.jitter(backoff)
			cp.log.Warn("ocpp connect failed", "err", err, "retry_in", d)
			if !sleep(ctx, d, cp.wake) {
				return
			}
			backoff = min(2*backoff, cp.cfg.ReconnectMax)
			continue
		}
		backoff = cp.cfg.ReconnectMin
		cp.mu.Lock()
		offline := time.Now().Before(cp.offlineUntil)
		cp.mu.Unlock()
		if offline { // GoOffline while dialling
			c.close()
			continue
		}
		cp.log.Info("ocpp connected", "url", cp.url)
		err = cp.serve(ctx, c)
		cp.mu.Lock()
		reboot := cp.reboot
		cp.reboot = false
		cp.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		cp.log.Info("ocpp disconnected", "err", err, "reboot", reboot)
		if !reboot && !sleep(ctx, cp.jitter(cp.cfg.ReconnectMin), cp.wake) {
			return
		}
	}
}

// jitter spreads d by ±20 % so that chargers do not reconnect in step.
func (cp *ChargePoint) jitter(d time.Duration) time.Duration {
	cp.mu.Lock()
	f := 0.8 + 0.4*cp.rng.Float64()
	cp.mu.Unlock()
	return time.Duration(float64(d) * f)
}

func (cp *ChargePoint) nextID() string { return strconv.FormatUint(cp.seq.Add(1), 10) }

// serve runs one connection: boot, connector status, then the outbox and
// heartbeats until the connection ends.
func (cp *ChargePoint) serve(ctx context.Context, c *conn) error {
	cp.mu.Lock()
	cp.live = c
	cp.mu.Unlock()
	readDone, pingDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(readDone)
		c.readLoop(func(f frame) ([]byte, func()) { return cp.onCall(ctx, f) })
	}()
	go func() {
		defer close(pingDone)
		c.pings()
	}()
	defer func() {
		c.close()
		<-readDone
		<-pingDone
		cp.setOffline(c)
	}()
	stop := context.AfterFunc(ctx, c.close)
	defer stop()

	if err := cp.boot(ctx, c); err != nil {
		return err
	}
	cp.mu.Lock()
	cp.online = c
	cp.mu.Unlock()
	// After a (re)boot the central system learns each connector's state.
	for id := 0; id <= len(cp.connectors); id++ {
		if _, err := c.call(ctx, cp.nextID(), "StatusNotification", cp.statusPayload(id, cp.statusOf(id))); err != nil {
			var ce *CallError
			if !errors.As(err, &ce) {
				return err
			}
			cp.log.Warn("ocpp StatusNotification refused", "connector", id, "err", err)
		}
	}
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		cp.heartbeats(ctx, c)
	}()
	defer func() {
		c.close()
		<-hbDone
	}()
	return cp.pump(ctx, c)
}

// boot sends BootNotification until the central system accepts it.
func (cp *ChargePoint) boot(ctx context.Context, c *conn) error {
	for {
		raw, err := c.call(ctx, cp.nextID(), "BootNotification", cp.bootPayload())
		var ce *CallError
		var conf bootNotificationConf
		switch {
		case errors.As(err, &ce):
			cp.log.Warn("ocpp BootNotification refused", "err", err)
		case err != nil:
			return err
		default:
			if err := json.Unmarshal(raw, &conf); err != nil {
				cp.log.Warn("ocpp bad BootNotification answer", "err", err)
			}
		}
		if conf.Status == "Accepted" {
			cp.acceptBoot(conf)
			return nil
		}
		wait := cp.cfg.HeartbeatInterval
		if conf.Interval > 0 {
			wait = time.Duration(conf.Interval) * time.Second
		}
		cp.log.Info("ocpp boot not accepted", "status", conf.Status, "retry_in", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.closed:
			return errConnClosed
		case <-time.After(wait):
		}
	}
}

func (cp *ChargePoint) acceptBoot(conf bootNotificationConf) {
	cp.mu.Lock()
	cp.boots++
	if conf.Interval > 0 {
		cp.heartbeat = time.Duration(conf.Interval) * time.Second
	}
	cp.mu.Unlock()
	poke(cp.hbReset)
}

// bootPayload is the BootNotification of this charger's identity.
func (cp *ChargePoint) bootPayload() any {
	id := identities[""]
	for _, q := range cp.cfg.Quirks {
		id = identities[q]
	}
	if cp.cfg.Has(QuirkWallbox) {
		return wallboxBootReq{
			ChargePointSerialNumber: cp.cfg.Serial, ChargePointVendor: cp.cfg.Vendor,
			MeterType: id.meterType, ChargePointModel: cp.cfg.Model,
			ChargeBoxSerialNumber: cp.cfg.Serial, FirmwareVersion: cp.cfg.Firmware,
		}
	}
	return bootNotificationReq{
		ChargePointVendor: cp.cfg.Vendor, ChargePointModel: cp.cfg.Model,
		ChargePointSerialNumber: cp.cfg.Serial, ChargeBoxSerialNumber: id.box,
		FirmwareVersion: cp.cfg.Firmware, MeterType: id.meterType,
	}
}

// heartbeats sends a Heartbeat every interval while c lasts.
func (cp *ChargePoint) heartbeats(ctx context.Context, c *conn) {
	for {
		cp.mu.Lock()
		iv := cp.heartbeat
		cp.mu.Unlock()
		t := time.NewTimer(iv)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-c.closed:
			t.Stop()
			return
		case <-cp.hbReset:
			t.Stop()
		case <-t.C:
			_ = cp.enqueue(&entry{action: "Heartbeat", build: func(int64) (any, []MeterValue) { return heartbeatReq{}, nil }})
		}
	}
}

// setOffline forgets c; messages that are not transaction-related fail.
func (cp *ChargePoint) setOffline(c *conn) {
	cp.mu.Lock()
	if cp.live == c {
		cp.live = nil
	}
	if cp.online == c {
		cp.online = nil
	}
	cp.inflight = nil
	var failed []*entry
	kept := cp.outbox[:0]
	for _, e := range cp.outbox {
		if e.durable {
			e.queued = true
			kept = append(kept, e)
		} else {
			failed = append(failed, e)
		}
	}
	clear(cp.outbox[len(kept):])
	cp.outbox = kept
	close(cp.drained)
	cp.drained = make(chan struct{})
	cp.mu.Unlock()
	for _, e := range failed {
		e.fail(errOffline)
	}
}

func (e *entry) fail(err error) {
	if e.onFail != nil {
		e.onFail(err)
	}
	if e.done != nil {
		e.done <- callOutcome{err: err}
	}
}

// enqueue adds e to the outbox. A message that is not transaction-related
// is refused while offline.
func (cp *ChargePoint) enqueue(e *entry) error {
	e.id = cp.nextID()
	cp.mu.Lock()
	if !e.durable && cp.online == nil {
		cp.mu.Unlock()
		return errOffline
	}
	if !e.durable && e.action == "Heartbeat" {
		for _, o := range cp.outbox {
			if o.action == "Heartbeat" {
				cp.mu.Unlock()
				return nil // one is enough
			}
		}
	}
	e.queued = cp.online == nil
	cp.outbox = append(cp.outbox, e)
	var dropped *entry
	if e.durable && len(cp.outbox) > cp.cfg.QueueLimit {
		// A full queue loses the oldest sample, never a start or stop.
		for i, o := range cp.outbox {
			if o.action == "MeterValues" && o != cp.inflight {
				dropped = o
				cp.outbox = append(cp.outbox[:i], cp.outbox[i+1:]...)
				break
			}
		}
	}
	cp.mu.Unlock()
	if dropped != nil {
		cp.log.Warn("ocpp queue full, dropped oldest MeterValues", "limit", cp.cfg.QueueLimit)
		dropped.fail(errors.New("queue full"))
	}
	poke(cp.signal)
	return nil
}

// request sends a message that is not transaction-related and waits for
// its answer.
func (cp *ChargePoint) request(ctx context.Context, action string, payload any) (json.RawMessage, error) {
	e := &entry{action: action, done: make(chan callOutcome, 1),
		build: func(int64) (any, []MeterValue) { return payload, nil }}
	if err := cp.enqueue(e); err != nil {
		return nil, err
	}
	select {
	case o := <-e.done:
		return o.raw, o.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// remove takes e out of the outbox. Callers hold cp.mu.
func (cp *ChargePoint) remove(e *entry) {
	for i, o := range cp.outbox {
		if o == e {
			cp.outbox = append(cp.outbox[:i], cp.outbox[i+1:]...)
			close(cp.drained)
			cp.drained = make(chan struct{})
			return
		}
	}
}

// pump sends the outbox in order, one CALL at a time as OCPP-J requires,
// until the connection ends.
func (cp *ChargePoint) pump(ctx context.Context, c *conn) error {
	for {
		var e *entry
		for e == nil {
			cp.mu.Lock()
			if len(cp.outbox) > 0 {
				e = cp.outbox[0]
				cp.inflight = e
			}
			cp.mu.Unlock()
			if e != nil {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-c.closed:
				return errConnClosed
			case <-cp.signal:
			}
		}
		var txID int64
		if e.tx != nil {
			cp.mu.Lock()
			txID = e.tx.id
			ok := e.action == "StartTransaction" || e.tx.state == txStarted
			if !ok {
				cp.remove(e)
				cp.inflight = nil
			}
			cp.mu.Unlock()
			if !ok {
				cp.log.Warn("ocpp dropped message of a transaction the central system never started", "action", e.action, "connector", e.tx.connector)
				e.fail(errors.New("transaction not started"))
				continue
			}
		}
		payload, truth := e.build(txID)
		raw, err := c.call(ctx, e.id, e.action, payload)
		var ce *CallError
		switch {
		case err == nil:
			cp.mu.Lock()
			cp.remove(e)
			cp.inflight = nil
			for i := range truth {
				truth[i].Queued = e.queued
			}
			cp.sent = append(cp.sent, truth...)
			cp.mu.Unlock()
			if e.onResult != nil {
				e.onResult(raw)
			}
			if e.done != nil {
				e.done <- callOutcome{raw: raw}
			}
		case errors.As(err, &ce):
			cp.mu.Lock()
			attempts, retry := cp.set.txAttempts, cp.set.txRetry
			e.attempts++
			giveUp := !e.durable || e.attempts >= attempts
			if giveUp {
				cp.remove(e)
				cp.inflight = nil
			}
			cp.mu.Unlock()
			if giveUp {
				cp.log.Warn("ocpp message refused", "action", e.action, "attempts", e.attempts, "err", err)
				e.fail(err)
				continue
			}
			cp.log.Warn("ocpp transaction message refused, will retry", "action", e.action, "attempt", e.attempts, "err", err)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-c.closed:
				return errConnClosed
			case <-time.After(retry * time.Duration(e.attempts)):
			}
		case errors.Is(err, errTimeout):
			// The central system may have it; a durable message is sent
			// again on the next connection, which the OCPP spec allows.
			cp.log.Warn("ocpp no answer, reconnecting", "action", e.action, "err", err)
			return err
		default:
			return err
		}
	}
}

// statusOf returns the status of connector id (0: the whole charger).
func (cp *ChargePoint) statusOf(id int) string {
	if id == 0 {
		return "Available"
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.connectors[id-1].status
}

// statusPayload is a StatusNotification of connector id.
func (cp *ChargePoint) statusPayload(id int, status string) any {
	now := stamp(time.Now())
	if cp.cfg.Has(QuirkWallbox) {
		return wallboxStatusReq{VendorID: "com.wallbox", ConnectorID: id, ErrorCode: "NoError", Status: status, Timestamp: now}
	}
	return statusNotificationReq{ConnectorID: id, ErrorCode: "NoError", Status: status, Timestamp: now}
}

// setStatus changes connector k's status and tells the central system if
// online.
func (cp *ChargePoint) setStatus(k *connector, status string) {
	cp.mu.Lock()
	changed := k.status != status
	k.status = status
	cp.mu.Unlock()
	if !changed {
		return
	}
	cp.sendStatus(k.id, status)
}

func (cp *ChargePoint) sendStatus(id int, status string) {
	p := cp.statusPayload(id, status)
	_ = cp.enqueue(&entry{action: "StatusNotification", build: func(int64) (any, []MeterValue) { return p, nil }})
}
