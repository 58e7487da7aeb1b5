// Package profile holds device profiles: YAML data, one file per device
// model, that tell a protocol driver what to read (registers, topics, JSON
// paths), how to scale it and which catalogue quantity each value is.
// Protocol drivers are code; devices are data.
//
// The profiles of the pilot devices are embedded (profiles/*.yaml); users add
// their own from a folder. A profile is checked when it is loaded, against
// the quantity catalogue, and every error names the file, the line and the
// field.
package profile

import (
	"time"

	"github.com/gridlink/gridlink/cim"
)

// Protocol names a driver.
type Protocol string

// The protocols a profile may name.
const (
	Modbus  Protocol = "modbus"  // Modbus TCP, registers listed one by one
	SunSpec Protocol = "sunspec" // Modbus TCP with SunSpec model discovery
	MQTT    Protocol = "mqtt"    // values published by the device to a broker
	HTTP    Protocol = "http"    // JSON polled over HTTP or HTTPS
	Kasa    Protocol = "kasa"    // TP-Link Kasa smart-home protocol, TCP 9999
)

// Profile is one device model.
type Profile struct {
	Name      string        `yaml:"name"`  // unique, lower-case, e.g. shelly-plug-s-mqtt
	Title     string        `yaml:"title"` // e.g. "Shelly Plug S (Gen1) over MQTT"
	Vendor    string        `yaml:"vendor"`
	Model     string        `yaml:"model"`
	AssetType cim.AssetType `yaml:"asset_type"`
	Protocol  Protocol      `yaml:"protocol"`
	// Interval is the default time between polls (Modbus, HTTP, Kasa).
	Interval time.Duration `yaml:"interval"`
	// Notes tell an installer what to set up on the device, and the
	// provenance of the map.
	Notes string `yaml:"notes"`

	Modbus  *ModbusSpec  `yaml:"modbus"`
	SunSpec *SunSpecSpec `yaml:"sunspec"`
	MQTT    *MQTTSpec    `yaml:"mqtt"`
	HTTP    *HTTPSpec    `yaml:"http"`
	Kasa    *KasaSpec    `yaml:"kasa"`

	// Source is where the profile was loaded from ("embedded:x.yaml" or a
	// file path).
	Source string `yaml:"-"`
}

// ModbusSpec lists registers to read over Modbus TCP.
type ModbusSpec struct {
	UnitID int           `yaml:"unit_id"` // default 1
	Port   int           `yaml:"port"`    // default 502
	Points []ModbusPoint `yaml:"points"`
}

// ModbusPoint is one value held in one or more registers.
type ModbusPoint struct {
	Mapping  `yaml:",inline"`
	Register uint16 `yaml:"register"`
	// Table is "holding" (function 3, the default) or "input" (function 4).
	Table string `yaml:"table"`
	// Type: int16, uint16, int32, uint32, int64, uint64, float32, float64.
	Type string `yaml:"type"`
	// WordOrder of multi-register values: "high_first" (default) or
	// "low_first". ByteOrder within a register: "big" (default) or "little".
	WordOrder string `yaml:"word_order"`
	ByteOrder string `yaml:"byte_order"`
	// ScaleRegister, when set, is an int16 register holding a power-of-ten
	// exponent applied to the raw value (SunSpec's sunssf style).
	ScaleRegister *uint16 `yaml:"scale_register"`
	// UnitID overrides the spec's unit id (a Victron GX serves each device
	// under its own unit id).
	UnitID int `yaml:"unit_id"`
}

// Registers is how many 16-bit registers the point's type takes.
func (p *ModbusPoint) Registers() int {
	switch p.Type {
	case "int32", "uint32", "float32":
		return 2
	case "int64", "uint64", "float64":
		return 4
	}
	return 1
}

// SunSpecSpec reads SunSpec models found by discovery.
type SunSpecSpec struct {
	UnitID int `yaml:"unit_id"` // default 1
	Port   int `yaml:"port"`    // default 502
	// Base is the start of the SunSpec map; 0 means discover (40000, 0,
	// 50000).
	Base   int            `yaml:"base"`
	Points []SunSpecPoint `yaml:"points"`
}

// SunSpecPoint is a point of a SunSpec model by its model id and point name
// (e.g. model 103, point W). Its type and scale factor come from the model.
type SunSpecPoint struct {
	Mapping `yaml:",inline"`
	Model   int    `yaml:"model"`
	Point   string `yaml:"point"`
}

// MQTTSpec lists the topics a device publishes.
type MQTTSpec struct {
	Topics []MQTTTopic `yaml:"topics"`
	// Online is a topic whose payload tells whether the device is
	// connected (Shelly's LWT shellies/<id>/online true|false).
	Online string `yaml:"online"`
	// Keepalive, for brokers that publish only while asked (Victron Venus
	// OS: R/<portal>/keepalive at least every 60 s).
	Keepalive *MQTTKeepalive `yaml:"keepalive"`
	// Vars are default values of the topics' {name} placeholders; a
	// device's Config.Vars override them (emonhub's node: emonpi).
	Vars map[string]string `yaml:"vars"`
}

// MQTTTopic is one topic (a pattern with {vars} and the + and # wildcards)
// and the values in its payload.
type MQTTTopic struct {
	Topic string `yaml:"topic"`
	// Format of the payload: "plain" (a number or a state text, the
	// default), "json" (values at JSON paths) or "csv" (comma-separated
	// values; a point's path is its 0-based position).
	Format string `yaml:"format"`
	// Mapping of a plain payload.
	Mapping `yaml:",inline"`
	// Points of a json or csv payload.
	Points []JSONPoint `yaml:"points"`
	// Time is where the payload carries the device's timestamp.
	Time *TimeField `yaml:"time"`
}

// MQTTKeepalive is a message the gateway publishes periodically.
type MQTTKeepalive struct {
	Topic    string        `yaml:"topic"`
	Payload  string        `yaml:"payload"`
	Interval time.Duration `yaml:"interval"`
}

// JSONPoint is one value at a path of a JSON document (see Path).
type JSONPoint struct {
	Mapping `yaml:",inline"`
	Path    string `yaml:"path"`
}

// TimeField locates a device timestamp: its path and format ("unix_s",
// "unix_ms", "rfc3339", or "local" for RFC 3339 without a zone taken as
// UTC, as the Hue bridge writes).
type TimeField struct {
	Path   string `yaml:"path"`
	Format string `yaml:"format"`
}

// HTTPSpec polls JSON documents over HTTP or HTTPS.
type HTTPSpec struct {
	// Auth: "none" (default), "basic" (device username and password),
	// "bearer" (device token), or "login" (a login request whose cookies
	// the later requests carry).
	Auth  string     `yaml:"auth"`
	Login *HTTPLogin `yaml:"login"`
	// Requests are made in order at each poll.
	Requests []HTTPRequest `yaml:"requests"`
}

// HTTPLogin is a request that opens a session (Tesla Powerwall
// /api/login/Basic, TQ EM300 /start.php). Body may use {username},
// {password} and the device's vars.
type HTTPLogin struct {
	Method      string `yaml:"method"`
	Path        string `yaml:"path"`
	Body        string `yaml:"body"`
	ContentType string `yaml:"content_type"`
}

// HTTPRequest is one JSON document to fetch.
type HTTPRequest struct {
	Method string      `yaml:"method"` // default GET
	Path   string      `yaml:"path"`   // may use {vars}
	Points []JSONPoint `yaml:"points"`
	Time   *TimeField  `yaml:"time"`
	// Expired names a JSON path whose presence means the session ended
	// (TQ EM300 answers {"status":901}); the driver logs in again.
	Expired string `yaml:"expired"`
}

// KasaSpec lists commands sent over the Kasa protocol.
type KasaSpec struct {
	Port     int           `yaml:"port"` // default 9999
	Requests []KasaRequest `yaml:"requests"`
}

// KasaRequest is one JSON command and the values of its reply.
type KasaRequest struct {
	Command string      `yaml:"command"` // e.g. {"emeter":{"get_realtime":{}}}
	Points  []JSONPoint `yaml:"points"`
}

// Mappings lists every mapping of the profile, whatever its protocol, in
// file order.
func (p *Profile) Mappings() []*Mapping {
	var out []*Mapping
	if s := p.Modbus; s != nil {
		for i := range s.Points {
			out = append(out, &s.Points[i].Mapping)
		}
	}
	if s := p.SunSpec; s != nil {
		for i := range s.Points {
			out = append(out, &s.Points[i].Mapping)
		}
	}
	if s := p.MQTT; s != nil {
		for i := range s.Topics {
			t := &s.Topics[i]
			if len(t.Points) == 0 {
				out = append(out, &t.Mapping)
			}
			for j := range t.Points {
				out = append(out, &t.Points[j].Mapping)
			}
		}
	}
	if s := p.HTTP; s != nil {
		for i := range s.Requests {
			for j := range s.Requests[i].Points {
				out = append(out, &s.Requests[i].Points[j].Mapping)
			}
		}
	}
	if s := p.Kasa; s != nil {
		for i := range s.Requests {
			for j := range s.Requests[i].Points {
				out = append(out, &s.Requests[i].Points[j].Mapping)
			}
		}
	}
	return out
}
