// Package device holds what every protocol connector of the gateway shares:
// the value a connector reads from a device before it is checked against the
// common information model, the settings of one device instance, and the two
// shapes of connector the gateway drives (polled and subscribed).
//
// Protocol drivers (modbus, mqtt, httpjson, kasa) implement these; the gateway
// schedules them. Nothing here does I/O.
package device

import (
	"context"
	"time"

	"github.com/gridlink/gridlink/cim"
)

// Value is one value read from a device, mapped to a catalogue quantity but
// not yet validated or converted to the quantity's canonical unit.
type Value struct {
	Quantity string
	Phase    cim.Phase
	Unit     string // the unit the value is in; "" means the canonical unit
	Value    float64
	// State is the catalogue state name for a State or Event quantity whose
	// device sends text; Value is then ignored.
	State string
	// Time is the device's own timestamp, when it gives one. The zero time
	// means the gateway stamps the value with its clock at read time.
	Time time.Time
}

// Config is one device instance of a gateway: which profile, where it is and
// how to reach it. Fields a protocol does not use are ignored by it.
type Config struct {
	// Asset is the platform asset id the device's readings belong to.
	Asset string `yaml:"asset"`
	// Profile names the device profile (profile.Profile.Name).
	Profile string `yaml:"profile"`
	// Address is host[:port] for Modbus and Kasa, a base URL for HTTP, and
	// for MQTT the broker ("embedded", or a URL such as tcp://host:1883).
	Address string `yaml:"address"`
	// UnitID overrides the profile's Modbus unit id when not zero.
	UnitID int `yaml:"unit_id"`
	// Interval between polls; zero means the profile's default.
	Interval time.Duration `yaml:"interval"`
	// Timeout of one poll; zero means the gateway's default.
	Timeout time.Duration `yaml:"timeout"`
	// Credentials: HTTP basic or login form, MQTT broker, bearer token.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	Token    string `yaml:"token"`
	// Vars fill the profile's {name} placeholders in topics, paths and
	// request bodies, e.g. {id: shellyplug-s-7C87CEB4A3C5}.
	Vars map[string]string `yaml:"vars"`
	// TLS: a PEM file of the CA that signed the device's certificate, or
	// the SHA-256 fingerprint (hex) of the certificate itself, for devices
	// with self-signed certificates such as the Tesla Powerwall gateway.
	CAFile      string `yaml:"ca_file"`
	Fingerprint string `yaml:"fingerprint"`
	// Insecure skips certificate verification altogether; use Fingerprint
	// where possible.
	Insecure bool `yaml:"insecure"`
	// Ledger marks a device whose readings the gateway signs for the
	// energy ledger; its asset must be a ledger asset on the platform.
	Ledger bool `yaml:"ledger"`
}

// Poller reads a device when asked: Modbus, HTTP JSON, Kasa. Poll must
// honour ctx's deadline. A Poller is used by one goroutine at a time.
type Poller interface {
	Poll(ctx context.Context) ([]Value, error)
	Close() error
}

// Subscriber receives values the device pushes: MQTT. Subscribe delivers
// values through emit until ctx ends or the subscription fails; the gateway
// calls it again, with backoff, after a failure.
type Subscriber interface {
	Subscribe(ctx context.Context, emit func([]Value)) error
}
