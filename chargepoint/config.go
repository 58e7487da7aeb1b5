package chargepoint

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// Quirk names a way a real charger bends OCPP 1.6J that the simulator can
// reproduce.
type Quirk string

// The quirk modes.
const (
	// QuirkAlfen: Alfen NG9xx identity; every MeterValues carries an extra
	// sampled value without measurand and with the non-spec context
	// "CurrentMax" (lbbrhzn/ocpp #361); MeterValuesSampledData takes at
	// most 9 entries.
	QuirkAlfen Quirk = "alfen"
	// QuirkWallbox: Wallbox Pulsar identity; BootNotification with empty
	// iccid/imsi/meterSerialNumber and meterType "Internal NON compliant";
	// StatusNotification with vendorId "com.wallbox" and empty info and
	// vendorErrorCode.
	QuirkWallbox Quirk = "wallbox"
	// QuirkEmptyVendor: chargePointVendor "" like Huawei chargers
	// (evcc #32170), which strict validators refuse.
	QuirkEmptyVendor Quirk = "empty-vendor"
)

// Session scripts one charging session on a connector.
type Session struct {
	// Connector is the connector the EV plugs into (1-based; 0 means 1).
	Connector int
	// After is how long after the previous session on this connector ended
	// (or after Run started) the EV plugs in, in wall time.
	After time.Duration
	// Duration is how long the EV stays plugged in (wall time). Zero with
	// EnergyWh zero: until a RemoteStopTransaction or Reset.
	Duration time.Duration
	// EnergyWh is the energy the EV takes before it stops drawing power
	// (SuspendedEV); zero: until its battery is full.
	EnergyWh float64
	// PowerW is the most the EV draws; zero: the charger's MaxPowerW.
	PowerW float64
	// IDTag is the RFID tag presented; "" means Config.IDTags[0].
	IDTag string
	// SoC is the battery's state of charge at plug-in in percent (default
	// 20); CapacityWh its capacity (default 60 kWh).
	SoC, CapacityWh float64
}

// SessionPlan is a script of charging sessions. Sessions of one connector
// run in order; connectors run in parallel.
type SessionPlan []Session

// Config describes one simulated charge point.
type Config struct {
	// ID is the charge point identity, the last path element of its URL
	// and the basic-auth user name.
	ID string
	// Asset is the asset the central system files this charger's readings
	// under (its registration's asset; default ID). The truth names it, so
	// that a test compares the platform's values of that asset: the OCPP
	// identity is one namespace on a central system, asset ids are per
	// site.
	Asset string
	// URL is the central system's base URL (ws:// or wss://); the charger
	// connects to URL + "/" + ID.
	URL string
	// Password enables OCPP security profile 1 (ws://) or 2 (wss://):
	// HTTP basic auth with user ID.
	Password string
	// CAFile is a PEM file of CAs to trust for wss:// (default: system
	// roots); Insecure skips certificate verification.
	CAFile   string
	Insecure bool

	// Identity for BootNotification; defaults depend on the quirk mode.
	Vendor, Model, Serial, Firmware string

	// Connectors is the number of connectors (default 1).
	Connectors int
	// MeterValueInterval is MeterValueSampleInterval (default 10 s; may be
	// below a second in tests, then the configuration key reads as a
	// decimal).
	MeterValueInterval time.Duration
	// HeartbeatInterval is used until the central system returns one in
	// BootNotification (default 60 s).
	HeartbeatInterval time.Duration
	// MaxPowerW is the charger's power limit (default 11000); Phases the
	// number of phases it charges on (default 3); VoltageV the nominal
	// phase voltage (default 230).
	MaxPowerW float64
	Phases    int
	VoltageV  float64
	// RegisterWh is the energy register at start (default: drawn from
	// Seed between 50 kWh and 2 MWh).
	RegisterWh float64
	// SoC adds the EV's state of charge to the sampled measurands (as DC
	// and ISO 15118 chargers report it).
	SoC bool
	// Seed makes the random session plan and noise reproducible.
	Seed uint64
	// IDTags are the RFID tags random sessions present (default one tag).
	IDTags []string
	// Quirks turns on quirk modes.
	Quirks []Quirk

	// Plan scripts sessions. Nil: random sessions drawn from Seed (arrival
	// gaps of mean MeanIdle, realistic EVs); an empty non-nil plan: no
	// sessions except those the central system starts remotely.
	Plan SessionPlan
	// MeanIdle is the mean gap between random sessions (default 2 h).
	MeanIdle time.Duration
	// Speed runs session physics (energy, state of charge, random session
	// lengths and gaps) that many times faster than wall time (default
	// 1); protocol intervals are not scaled.
	Speed float64

	// ReconnectMin and ReconnectMax bound the reconnect backoff (defaults
	// 1 s and 60 s).
	ReconnectMin, ReconnectMax time.Duration
	// PingInterval is how often the charger sends a WebSocket ping (the
	// OCPP key WebSocketPingInterval; default 54 s, negative: never), so
	// that a central system that expects pings keeps the connection; a
	// connection that answers nothing for twice as long is dropped.
	PingInterval time.Duration
	// CallTimeout is how long a request waits for its answer before the
	// connection is considered broken (default 30 s).
	CallTimeout time.Duration
	// TransactionMessageAttempts and TransactionMessageRetryInterval are
	// the OCPP keys of the same names: how often a transaction-related
	// message the central system answers with a CALLERROR is tried
	// (default 3) and the wait before retry n, times n (default 10 s).
	TransactionMessageAttempts      int
	TransactionMessageRetryInterval time.Duration
	// QueueLimit bounds the messages kept while offline (default 10000);
	// beyond it the oldest MeterValues go first.
	QueueLimit int
}

// identity holds the BootNotification defaults of a quirk mode.
type identity struct{ vendor, model, serial, box, firmware, meterType string }

var identities = map[Quirk]identity{
	QuirkAlfen:       {"Alfen BV", "NG910-60023", "ace0100201", "CKcharger", "4.15.7-4054", ""},
	QuirkWallbox:     {"Wall Box Chargers", "PLP1-0-2-3", "386285", "386285", "6.4.14", "Internal NON compliant"},
	QuirkEmptyVendor: {"", "SCharger-7KS-S0", "HW2109000001", "", "V100R001C10", ""},
	"":               {"Wall Box Chargers", "PLP1-0-2-4", "912345", "", "6.7.38", ""},
}

// Has reports whether quirk q is on.
func (c *Config) Has(q Quirk) bool { return slices.Contains(c.Quirks, q) }

// withDefaults checks c and fills in defaults.
func (c Config) withDefaults() (Config, error) {
	if c.ID == "" {
		return c, errors.New("charge point config: empty ID")
	}
	if strings.ContainsAny(c.ID, "/?#") || len(c.ID) > 48 {
		return c, fmt.Errorf("charge point config: ID %q must be at most 48 characters without / ? #", c.ID)
	}
	c.Asset = cmpOr(c.Asset, c.ID)
	u, err := url.Parse(c.URL)
	if err != nil {
		return c, fmt.Errorf("charge point config: URL %q: %w", c.URL, err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return c, fmt.Errorf("charge point config: URL %q: scheme must be ws or wss", c.URL)
	}
	if u.Host == "" {
		return c, fmt.Errorf("charge point config: URL %q has no host", c.URL)
	}
	for _, q := range c.Quirks {
		if _, ok := identities[q]; !ok || q == "" {
			return c, fmt.Errorf("charge point config: unknown quirk %q (known: alfen, wallbox, empty-vendor)", q)
		}
	}
	id := identities[""]
	for _, q := range c.Quirks {
		id = identities[q]
	}
	if c.Vendor == "" && !c.Has(QuirkEmptyVendor) {
		c.Vendor = id.vendor
	}
	if c.Has(QuirkEmptyVendor) {
		c.Vendor = ""
	}
	c.Model = cmpOr(c.Model, id.model)
	c.Serial = cmpOr(c.Serial, id.serial)
	c.Firmware = cmpOr(c.Firmware, id.firmware)
	if c.Connectors == 0 {
		c.Connectors = 1
	}
	if c.Connectors < 0 || c.Connectors > 64 {
		return c, fmt.Errorf("charge point config: Connectors %d not in 1..64", c.Connectors)
	}
	if c.MeterValueInterval == 0 {
		c.MeterValueInterval = 10 * time.Second
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = time.Minute
	}
	if c.MaxPowerW == 0 {
		c.MaxPowerW = 11000
	}
	if c.Phases == 0 {
		c.Phases = 3
	}
	if c.VoltageV == 0 {
		c.VoltageV = 230
	}
	switch {
	case c.MeterValueInterval < 0:
		return c, fmt.Errorf("charge point config: MeterValueInterval %v is negative", c.MeterValueInterval)
	case !(c.MaxPowerW > 0) || math.IsInf(c.MaxPowerW, 0):
		return c, fmt.Errorf("charge point config: MaxPowerW %g must be positive", c.MaxPowerW)
	case c.Phases != 1 && c.Phases != 3:
		return c, fmt.Errorf("charge point config: Phases %d must be 1 or 3", c.Phases)
	case !(c.VoltageV > 0):
		return c, fmt.Errorf("charge point config: VoltageV %g must be positive", c.VoltageV)
	case c.RegisterWh < 0 || math.IsNaN(c.RegisterWh):
		return c, fmt.Errorf("charge point config: RegisterWh %g is negative", c.RegisterWh)
	}
	if len(c.IDTags) == 0 {
		c.IDTags = []string{"04E91C5A2B6F80"}
	}
	for _, t := range c.IDTags {
		if t == "" || len(t) > 20 {
			return c, fmt.Errorf("charge point config: id tag %q must have 1 to 20 characters", t)
		}
	}
	for i, s := range c.Plan {
		if s.Connector < 0 || s.Connector > c.Connectors {
			return c, fmt.Errorf("charge point config: plan session %d: connector %d not in 1..%d", i, s.Connector, c.Connectors)
		}
		if s.After < 0 || s.Duration < 0 || s.EnergyWh < 0 || s.PowerW < 0 || s.SoC < 0 || s.SoC > 100 || s.CapacityWh < 0 {
			return c, fmt.Errorf("charge point config: plan session %d: negative value or SoC above 100", i)
		}
		if len(s.IDTag) > 20 {
			return c, fmt.Errorf("charge point config: plan session %d: id tag %q longer than 20", i, s.IDTag)
		}
	}
	if c.MeanIdle <= 0 {
		c.MeanIdle = 2 * time.Hour
	}
	if c.Speed <= 0 || math.IsInf(c.Speed, 0) || math.IsNaN(c.Speed) {
		c.Speed = 1
	}
	if c.ReconnectMin <= 0 {
		c.ReconnectMin = time.Second
	}
	if c.ReconnectMax < c.ReconnectMin {
		c.ReconnectMax = max(60*time.Second, c.ReconnectMin)
	}
	if c.PingInterval == 0 {
		c.PingInterval = 54 * time.Second
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 30 * time.Second
	}
	if c.TransactionMessageAttempts <= 0 {
		c.TransactionMessageAttempts = 3
	}
	if c.TransactionMessageRetryInterval <= 0 {
		c.TransactionMessageRetryInterval = 10 * time.Second
	}
	if c.QueueLimit <= 0 {
		c.QueueLimit = 10000
	}
	return c, nil
}

// tlsConfig builds the TLS client configuration for wss://.
func (c *Config) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.Insecure} //nolint:gosec // Insecure is an explicit test option.
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("charge point config: CAFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("charge point config: CAFile %s holds no PEM certificate", c.CAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
