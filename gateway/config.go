package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/device"
	"github.com/gridlink/gridlink/internal/yamlpos"
	"github.com/gridlink/gridlink/profile"
)

// Config is a gateway's configuration file (hems.yaml): the site it serves,
// where the platform is, where the queue lives, and its devices.
type Config struct {
	// Site is the platform site id the readings belong to.
	Site string `yaml:"site"`
	// Data is the directory of the durable queue. Default ./gateway-data.
	Data     string         `yaml:"data"`
	Platform PlatformConfig `yaml:"platform"`
	Queue    QueueConfig    `yaml:"queue"`
	Status   StatusConfig   `yaml:"status"`
	// Broker, when set, runs an MQTT broker inside the gateway that
	// devices such as Shelly and Tasmota publish to; an MQTT device whose
	// address is "embedded" (or empty) listens there.
	Broker *BrokerConfig `yaml:"broker"`
	// Profiles is a directory of user profiles (*.yaml), added to the
	// embedded ones; a user profile replaces an embedded one of its name.
	Profiles string          `yaml:"profiles"`
	Devices  []device.Config `yaml:"devices"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `yaml:"log_level"`
	// Ledger, when set, signs the readings of the devices marked
	// `ledger: true` for the platform's energy ledger.
	Ledger *LedgerConfig `yaml:"ledger"`
}

// LedgerConfig is the gateway's signing key for the energy ledger.
type LedgerConfig struct {
	// Key is the file of the note private key that `gridlink ledger
	// keygen` wrote; its public key is registered as a signer of the site
	// on the platform.
	Key string `yaml:"key"`
}

// PlatformConfig says where readings go.
type PlatformConfig struct {
	// URL is the platform's base URL, e.g. https://cdmp.example.org.
	URL string `yaml:"url"`
	// Key is the site's ingest key; KeyFile names a file holding it (the
	// safer choice: it keeps the key out of the configuration).
	Key     string `yaml:"key"`
	KeyFile string `yaml:"key_file"`
	// CAFile is a PEM file of the CA that signed the platform's
	// certificate; empty means the system roots.
	CAFile string `yaml:"ca_file"`
	// BatchSize is the most readings per request. Default 5000.
	BatchSize int `yaml:"batch_size"`
}

// QueueConfig bounds the store-and-forward queue.
type QueueConfig struct {
	// MaxBytes bounds the queue on disk ("64MiB", "1GB", or bytes);
	// when full the oldest readings are dropped and counted. Default 64MiB.
	MaxBytes ByteSize `yaml:"max_bytes"`
	// AppendWindow is how long the readings of all devices are gathered
	// before they are written to the queue with one fsync. Default 200ms.
	AppendWindow time.Duration `yaml:"append_window"`
}

// StatusConfig is the local status page.
type StatusConfig struct {
	// Listen is the address of /status, /metrics and /healthz. Default
	// 127.0.0.1:8090; "off" turns the page off.
	Listen string `yaml:"listen"`
	// Profiling serves Go's profiles under /debug/pprof/. Off by default:
	// a gateway that does not record memory profiles saves about 1.5 MB.
	Profiling bool `yaml:"profiling"`
}

// BrokerConfig is the embedded MQTT broker.
type BrokerConfig struct {
	// Listen is the broker's address. Default :1883.
	Listen string `yaml:"listen"`
	// Users are the devices' credentials; each device logs in with its own.
	Users []BrokerUser `yaml:"users"`
}

// BrokerUser is one MQTT login of the embedded broker. Topics, when given,
// limit what it may publish (filters with + and #).
type BrokerUser struct {
	Username string   `yaml:"username"`
	Password string   `yaml:"password"`
	Topics   []string `yaml:"topics"`
}

// ByteSize is a size in bytes written as a number or with a unit.
type ByteSize int64

var sizeRE = regexp.MustCompile(`^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$`)

// UnmarshalYAML reads 67108864, "64MiB", "500MB" or "1GiB".
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	m := sizeRE.FindStringSubmatch(n.Value)
	if m == nil {
		return fmt.Errorf("line %d: size %q: want bytes or a number with B, KB, MB, GB, KiB, MiB or GiB", n.Line, n.Value)
	}
	f, _ := strconv.ParseFloat(m[1], 64)
	mult := map[string]float64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[m[2]]
	*b = ByteSize(f * mult)
	return nil
}

// ConfigError is one problem at one place of a configuration file.
type ConfigError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *ConfigError) Error() string {
	s := e.File
	if e.Line > 0 {
		s += ":" + strconv.Itoa(e.Line)
	}
	s += ": "
	if e.Field != "" {
		s += e.Field + ": "
	}
	return s + e.Msg
}

// Defaults of the configuration.
const (
	DefaultData      = "./gateway-data"
	DefaultStatus    = "127.0.0.1:8090"
	DefaultBroker    = ":1883"
	DefaultBatchSize = 5000
	DefaultQueueMax  = 64 << 20
	DefaultInterval  = 10 * time.Second
	// MinInterval is the shortest poll interval a device may have.
	MinInterval = 100 * time.Millisecond
)

// ReadConfig reads and checks a configuration file: every problem is
// reported, each with its line and field. The profiles it names are checked
// against set (nil: not checked).
func ReadConfig(path string, set *profile.Set) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return ParseConfig(data, path, set)
}

// ParseConfig is ReadConfig on bytes; file names them in errors.
func ParseConfig(data []byte, file string, set *profile.Set) (Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Config{}, configSyntax(file, err)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return Config{}, &ConfigError{File: file, Msg: "empty file"}
		}
		return Config{}, configSyntax(file, err)
	}
	c.fillDefaults()
	var errs []error
	fail := func(msg string, path ...any) {
		errs = append(errs, &ConfigError{File: file, Line: yamlpos.Line(&root, path...), Field: yamlpos.Field(path...), Msg: msg})
	}
	c.check(set, fail)
	return c, errors.Join(errs...)
}

var lineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func configSyntax(file string, err error) error {
	msgs := []string{err.Error()}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	var errs []error
	for _, m := range msgs {
		e := &ConfigError{File: file, Msg: strings.TrimPrefix(m, "yaml: ")}
		if g := lineRE.FindStringSubmatch(m); g != nil {
			e.Line, _ = strconv.Atoi(g[1])
			e.Msg = g[2]
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

func (c *Config) fillDefaults() {
	if c.Data == "" {
		c.Data = DefaultData
	}
	if c.Status.Listen == "" {
		c.Status.Listen = DefaultStatus
	}
	if c.Platform.BatchSize == 0 {
		c.Platform.BatchSize = DefaultBatchSize
	}
	if c.Queue.MaxBytes == 0 {
		c.Queue.MaxBytes = DefaultQueueMax
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.Broker != nil && c.Broker.Listen == "" {
		c.Broker.Listen = DefaultBroker
	}
}

var siteRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

func (c *Config) check(set *profile.Set, fail func(string, ...any)) {
	if !siteRE.MatchString(c.Site) {
		fail(fmt.Sprintf("%q: want the platform's site id (lower-case letters, digits, - and _)", c.Site), "site")
	}
	if u, err := url.Parse(c.Platform.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fail(fmt.Sprintf("%q: want the platform's base URL, http:// or https://", c.Platform.URL), "platform", "url")
	}
	if (c.Platform.Key == "") == (c.Platform.KeyFile == "") {
		fail("give exactly one of key and key_file (the site's ingest key)", "platform")
	}
	if c.Platform.BatchSize < 1 || c.Platform.BatchSize > 100000 {
		fail(fmt.Sprintf("%d: want 1 to 100000", c.Platform.BatchSize), "platform", "batch_size")
	}
	if c.Queue.AppendWindow < 0 || c.Queue.AppendWindow > 5*time.Second {
		fail(fmt.Sprintf("%v: want 0 (the default, 200ms) to 5s", c.Queue.AppendWindow), "queue", "append_window")
	}
	if c.Queue.MaxBytes < 1<<20 {
		fail(fmt.Sprintf("%d bytes: want at least 1MiB", c.Queue.MaxBytes), "queue", "max_bytes")
	}
	if c.Status.Listen != "off" {
		if _, _, err := net.SplitHostPort(c.Status.Listen); err != nil {
			fail(fmt.Sprintf("%q: want host:port or off", c.Status.Listen), "status", "listen")
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		fail(fmt.Sprintf("%q: want debug, info, warn or error", c.LogLevel), "log_level")
	}
	if b := c.Broker; b != nil {
		if _, _, err := net.SplitHostPort(b.Listen); err != nil {
			fail(fmt.Sprintf("%q: want host:port", b.Listen), "broker", "listen")
		}
		if len(b.Users) == 0 {
			fail("no users: each device logs in to the broker with its own username and password", "broker", "users")
		}
		seen := map[string]bool{}
		for i, u := range b.Users {
			switch {
			case u.Username == "":
				fail("missing username", "broker", "users", i)
			case seen[u.Username]:
				fail(fmt.Sprintf("username %q appears twice", u.Username), "broker", "users", i, "username")
			case len(u.Password) < 8:
				fail("password shorter than 8 characters", "broker", "users", i, "password")
			}
			seen[u.Username] = true
		}
	}
	if len(c.Devices) == 0 {
		fail("no devices", "devices")
	}
	if c.Ledger != nil {
		if c.Ledger.Key == "" {
			fail("missing key: the file `gridlink ledger keygen --out FILE` wrote", "ledger", "key")
		} else if _, err := ReadLedgerKey(c.Ledger.Key); err != nil {
			fail(err.Error(), "ledger", "key")
		}
		if !slices.ContainsFunc(c.Devices, func(d device.Config) bool { return d.Ledger }) {
			fail("no device has ledger: true, so there is nothing to sign", "ledger")
		}
	}
	assets := map[string]int{}
	for i := range c.Devices {
		d := &c.Devices[i]
		if err := cim.CheckAssetID(d.Asset); err != nil {
			fail(err.Error(), "devices", i, "asset")
		} else if j, dup := assets[d.Asset]; dup {
			fail(fmt.Sprintf("asset %q is also device %d", d.Asset, j), "devices", i, "asset")
		}
		assets[d.Asset] = i
		if d.Interval != 0 && d.Interval < MinInterval {
			fail(fmt.Sprintf("%v: want at least %v", d.Interval, MinInterval), "devices", i, "interval")
		}
		if d.UnitID < 0 || d.UnitID > 255 {
			fail(fmt.Sprintf("%d: want 0 to 255", d.UnitID), "devices", i, "unit_id")
		}
		if d.Ledger && c.Ledger == nil {
			fail("the device's readings are signed for the ledger: the gateway needs a ledger section with its key", "devices", i, "ledger")
		}
		if set == nil {
			continue
		}
		p, ok := set.Get(d.Profile)
		if !ok {
			fail(fmt.Sprintf("profile %q is not known (gridlink sim --list shows the profiles)", d.Profile), "devices", i, "profile")
			continue
		}
		if p.Protocol == profile.MQTT {
			if (d.Address == "" || d.Address == "embedded") && c.Broker == nil {
				fail("an MQTT device on the embedded broker needs a broker section", "devices", i, "address")
			}
		} else if d.Address == "" {
			fail("missing address of the device", "devices", i, "address")
		}
	}
}
