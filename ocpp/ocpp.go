// Package ocpp is gridlink's OCPP 1.6J central system: charging points
// connect to it over WebSocket (path /ocpp/{chargePointId}, subprotocol
// ocpp1.6) with HTTP basic auth (OCPP security profile 1, or 2 over TLS); it
// answers their core-profile messages, turns status notifications and meter
// values into CIM readings, keeps charging sessions, and sends them the
// operator's commands.
//
// The protocol layer is github.com/lorenzodonini/ocpp-go (ocppj message
// handling and validation) on top of this package's own WebSocket server
// (ws.go), which binds host:port, replaces a charger's stale connection when
// it reconnects, bounds message size and logs every raw frame. Where the
// platform keeps its data is behind the interfaces of Deps.
package ocpp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sort"
	"sync"
	"time"

	ocpp16 "github.com/lorenzodonini/ocpp-go/ocpp1.6"
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

	"github.com/gridlink/gridlink/cim"
)

// Config holds the central system's settings. Zero values mean the defaults
// named on each field.
type Config struct {
	// Path is the URL path prefix; a charger connects to Path+{id}.
	// Default "/ocpp/".
	Path string
	// HeartbeatInterval is the interval given to chargers in the
	// BootNotification answer. Default 300 s.
	HeartbeatInterval time.Duration
	// CertFile and KeyFile, both set, make the listener TLS (OCPP security
	// profile 2: basic auth over TLS). Empty means plain ws:// (profile 1).
	CertFile, KeyFile string
	// MaxMessageBytes bounds one incoming frame; a larger CALL is answered
	// with a FormationViolation CALLERROR and the connection stays up.
	// Default 64 KiB.
	MaxMessageBytes int64
	// IdleTimeout closes a connection that has sent nothing (not even a
	// WebSocket ping) for this long. Default 3 × HeartbeatInterval.
	IdleTimeout time.Duration
	// CallTimeout bounds a command to a charger when the caller's context
	// has no deadline. Default 30 s.
	CallTimeout time.Duration
	// StoreTimeout bounds the Deps calls made while answering one message.
	// Default 10 s.
	StoreTimeout time.Duration
	// DataTransferVendors are the vendor ids whose DataTransfer messages
	// are answered Accepted; all others get UnknownVendorId. Either way the
	// message is only logged.
	DataTransferVendors []string
}

func (c Config) withDefaults() Config {
	if c.Path == "" {
		c.Path = "/ocpp/"
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 300 * time.Second
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 64 << 10
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 3 * c.HeartbeatInterval
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 30 * time.Second
	}
	if c.StoreTimeout <= 0 {
		c.StoreTimeout = 10 * time.Second
	}
	return c
}

// ChargePoint is a registered charger: an asset of a site.
type ChargePoint struct {
	ID    string // the OCPP charge point identity, the last path element of its URL
	Site  string
	Asset string // the asset its readings belong to; "" means ID
	// PasswordSHA256 is the SHA-256 of the charger's basic-auth password.
	// The zero value means no password is set: the charger is refused.
	PasswordSHA256 [32]byte
}

// Registry knows the registered chargers.
type Registry interface {
	// ChargePoint returns the charger with the given id; found is false
	// for an unknown id.
	ChargePoint(ctx context.Context, id string) (cp ChargePoint, found bool, err error)
}

// Sink takes the readings the chargers send. When Write returns nil the
// readings must be durable: the charger's message is acknowledged after it.
// Chargers resend unacknowledged messages with the same timestamps, so the
// sink must treat a reading it already holds as a no-op.
type Sink interface {
	Write(ctx context.Context, site string, rs []cim.Reading) error
}

// Session is one charging transaction.
type Session struct {
	Site          string
	ChargePoint   string
	Connector     int
	TransactionID int64
	IDTag         string
	// Start is the zero time when the StartTransaction was never seen
	// (a StopTransaction for an unknown transaction).
	Start, Stop time.Time
	// MeterStart and MeterStop are the energy register at start and stop, Wh.
	MeterStart, MeterStop float64
	// Reason is the StopTransaction reason ("Local" when the charger gave none).
	Reason string
	// EnergyWh is MeterStop − MeterStart; zero while the session runs or
	// when the start register is unknown.
	EnergyWh float64
}

// Sessions stores charging sessions.
type Sessions interface {
	// PutSession inserts or replaces the session identified by its site,
	// charge point and transaction id.
	PutSession(ctx context.Context, s Session) error
}

// SessionLookup may also be implemented by a Sessions store. With it, a
// StopTransaction for a session started on another platform node (or
// before a restart) is matched to its start.
type SessionLookup interface {
	Session(ctx context.Context, site, chargePoint string, transactionID int64) (s Session, found bool, err error)
}

// IDTags authorizes RFID tags.
type IDTags interface {
	Authorize(ctx context.Context, site, idTag string) (bool, error)
}

// Deps are what the central system needs from the platform.
type Deps struct {
	Registry Registry // required
	Sink     Sink     // required
	// Sessions may be nil: sessions are then only kept in memory while open.
	Sessions Sessions
	// IDTags may be nil: every tag is then accepted (free charging).
	IDTags IDTags
	// Catalogue may be nil: cim.Default().
	Catalogue *cim.Catalogue
	Logger    *slog.Logger     // nil discards
	Now       func() time.Time // nil means time.Now
}

// BootNotification is what a charger said about itself when it booted.
type BootNotification struct {
	Time                    time.Time // when the central system received it
	Vendor, Model           string
	ChargePointSerialNumber string
	ChargeBoxSerialNumber   string
	FirmwareVersion         string
	ICCID, IMSI             string
	MeterType, MeterSerial  string
}

// ConnectorStatus is the last StatusNotification of one connector
// (connector 0 is the whole charger).
type ConnectorStatus struct {
	Connector       int
	Status          string // OCPP ChargePointStatus, e.g. "Charging"
	ErrorCode       string // OCPP ChargePointErrorCode, e.g. "NoError"
	Info            string
	VendorID        string
	VendorErrorCode string
	Time            time.Time
}

// ConfigKey is one configuration key of a charger.
type ConfigKey struct {
	Key      string
	Value    string // "" when the charger gave no value
	Readonly bool
}

// Configuration is what a charger answered to GetConfiguration, merged
// over its earlier answers.
type Configuration struct {
	Time    time.Time // of the last answer
	Keys    []ConfigKey
	Unknown []string // keys the charger said it does not know (last answer)
}

// ErrNotConnected is returned by commands to a charger that is not connected.
var ErrNotConnected = errors.New("charge point not connected")

// CentralSystem is the OCPP 1.6J central system.
type CentralSystem struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	now  func() time.Time
	cat  *cim.Catalogue

	ws       *wsServer
	endpoint *ocppj.Server
	cs       ocpp16.CentralSystem

	// ctx ends when the central system closes; handlers derive from it.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	chargers  map[string]*charger
	started   bool
	closed    bool
	serveDone chan struct{}
}

// New builds a central system; Start makes it listen.
func New(cfg Config, deps Deps) (*CentralSystem, error) {
	if deps.Registry == nil {
		return nil, errors.New("ocpp: Deps.Registry is required")
	}
	if deps.Sink == nil {
		return nil, errors.New("ocpp: Deps.Sink is required")
	}
	cfg = cfg.withDefaults()
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("ocpp: CertFile and KeyFile must be given together")
	}
	if len(cfg.Path) == 0 || cfg.Path[0] != '/' || cfg.Path[len(cfg.Path)-1] != '/' {
		return nil, fmt.Errorf("ocpp: path %q must start and end with /", cfg.Path)
	}
	registerLenientValidation()
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	cat := deps.Catalogue
	if cat == nil {
		cat = cim.Default()
	}
	for _, name := range []string{"ev_session_state", "ev_error_code", "ev_energy_register", "ev_session_energy"} {
		if _, ok := cat.Lookup(name); !ok {
			return nil, fmt.Errorf("ocpp: catalogue lacks quantity %q", name)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &CentralSystem{
		cfg: cfg, deps: deps, log: log, now: now, cat: cat,
		ctx: ctx, cancel: cancel,
		chargers:  map[string]*charger{},
		serveDone: make(chan struct{}),
	}
	c.ws = newWSServer(wsOptions{
		log:          log,
		prefix:       cfg.Path,
		softLimit:    cfg.MaxMessageBytes,
		idle:         cfg.IdleTimeout,
		authenticate: c.authenticate,
		rewrite:      c.rewriteFrame,
	})
	dispatcher := ocppj.NewDefaultServerDispatcher(ocppj.NewFIFOQueueMap(0))
	dispatcher.SetTimeout(cfg.CallTimeout)
	// The same profiles as ocpp16's default endpoint, so that every OCPP
	// 1.6 action is known: an action without a handler is answered
	// NotSupported, an unknown one NotImplemented.
	c.endpoint = ocppj.NewServer(c.ws, dispatcher, nil,
		core.Profile, localauth.Profile, firmware.Profile, reservation.Profile,
		remotetrigger.Profile, smartcharging.Profile, logging.Profile, security.Profile,
		extendedtriggermessage.Profile, certificates.Profile, securefirmware.Profile)
	c.endpoint.SetInvalidMessageHook(c.invalidMessage)
	c.cs = ocpp16.NewCentralSystem(c.endpoint, c.ws)
	c.cs.SetCoreHandler(&coreHandler{c: c})
	c.cs.SetNewChargePointHandler(func(ch ocpp16.ChargePointConnection) {
		c.log.Info("charge point connected", "charge_point", ch.ID(), "remote", ch.RemoteAddr().String())
	})
	c.cs.SetChargePointDisconnectedHandler(func(ch ocpp16.ChargePointConnection) {
		c.log.Info("charge point disconnected", "charge_point", ch.ID())
	})
	return c, nil
}

// Start listens on addr (host:port; port 0 picks a free port) and serves
// chargers until Close. It returns the address it listens on.
func (c *CentralSystem) Start(addr string) (string, error) {
	c.mu.Lock()
	if c.started || c.closed {
		c.mu.Unlock()
		return "", errors.New("ocpp: central system already started or closed")
	}
	c.started = true
	c.mu.Unlock()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("ocpp: listen %s: %w", addr, err)
	}
	if err := c.ws.setListener(ln, c.cfg.CertFile, c.cfg.KeyFile); err != nil {
		ln.Close()
		return "", fmt.Errorf("ocpp: %w", err)
	}
	go func() {
		defer close(c.serveDone)
		// Blocks until Close; the arguments are ignored by wsServer,
		// which serves the listener bound above.
		c.cs.Start(0, "")
	}()
	<-c.ws.started
	bound := ln.Addr().String()
	c.log.Info("OCPP central system listening", "addr", bound, "path", c.cfg.Path+"{chargePointId}",
		"tls", c.cfg.CertFile != "")
	return bound, nil
}

// Close disconnects every charger and stops listening.
func (c *CentralSystem) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	started := c.started
	c.mu.Unlock()
	c.cancel()
	if started {
		// Close the connections first and let ocppj hear of every
		// disconnection while its dispatcher still runs: ocpp-go v0.19.0
		// stops the dispatcher before the server, and a Stop that comes
		// while client deletions wait for its bounded queue deadlocks
		// (seen with 10,000 chargers leaving at once).
		c.ws.Stop()
		c.cs.Stop()
		<-c.serveDone
	}
	return nil
}

// Connected lists the ids of the connected chargers, sorted.
func (c *CentralSystem) Connected() []string {
	ids := c.ws.connectedIDs()
	sort.Strings(ids)
	return ids
}

// BootNotification returns the last BootNotification of a charger.
func (c *CentralSystem) BootNotification(id string) (BootNotification, bool) {
	ch := c.lookup(id)
	if ch == nil {
		return BootNotification{}, false
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.boot == nil {
		return BootNotification{}, false
	}
	return *ch.boot, true
}

// Connectors returns the last status of each connector of a charger, by
// connector number.
func (c *CentralSystem) Connectors(id string) []ConnectorStatus {
	ch := c.lookup(id)
	if ch == nil {
		return nil
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	out := make([]ConnectorStatus, 0, len(ch.connectors))
	for _, s := range ch.connectors {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b ConnectorStatus) int { return a.Connector - b.Connector })
	return out
}

// Configuration returns a charger's configuration as last read with
// GetConfiguration.
func (c *CentralSystem) Configuration(id string) (Configuration, bool) {
	ch := c.lookup(id)
	if ch == nil {
		return Configuration{}, false
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.config == nil {
		return Configuration{}, false
	}
	cfg := *ch.config
	cfg.Keys = slices.Clone(cfg.Keys)
	cfg.Unknown = slices.Clone(cfg.Unknown)
	return cfg, true
}

// charger is what the central system keeps about one charger across its
// connections.
type charger struct {
	mu         sync.Mutex
	cp         ChargePoint
	boot       *BootNotification
	connectors map[int]ConnectorStatus
	config     *Configuration
	lastTx     int64
	// aliases maps the stand-ins of transaction ids too large for ocpp-go's
	// float64 parsing back to the real ids (see rewriteFrame).
	aliases   map[int]int64
	nextAlias int
	// open holds the sessions started here and not yet stopped.
	open map[int64]*Session
	// starts remembers recent StartTransactions, so that a charger
	// resending one whose answer it lost gets the same transaction id.
	starts []startRecord
}

type startRecord struct {
	connector  int
	idTag      string
	meterStart int
	time       time.Time
	tx         int64
}

// lookup returns the charger record, or nil.
func (c *CentralSystem) lookup(id string) *charger {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.chargers[id]
}

// remember records (or refreshes) a charger that passed authentication.
func (c *CentralSystem) remember(cp ChargePoint) {
	if cp.Asset == "" {
		cp.Asset = cp.ID
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := c.chargers[cp.ID]
	if ch == nil {
		ch = &charger{connectors: map[int]ConnectorStatus{}, aliases: map[int]int64{}, open: map[int64]*Session{}}
		c.chargers[cp.ID] = ch
	}
	ch.mu.Lock()
	ch.cp = cp
	ch.mu.Unlock()
}
