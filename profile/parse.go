package profile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/internal/yamlpos"
	"go.yaml.in/yaml/v3"
)

// MaxFileSize bounds a profile file; real ones are a few kilobytes.
const MaxFileSize = 1 << 20

// Error is one problem at one place of a profile file.
type Error = yamlpos.Error

var (
	nameRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)
	yamlErr = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
)

// Parse decodes and checks one profile. It reports every problem it finds,
// joined, each an *Error.
func Parse(data []byte, file string, cat *cim.Catalogue) (*Profile, error) {
	if len(data) > MaxFileSize {
		return nil, &Error{File: file, Msg: fmt.Sprintf("larger than %d bytes", MaxFileSize)}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, syntaxError(file, err)
	}
	var p Profile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: file, Msg: "empty file"}
		}
		return nil, syntaxError(file, err)
	}
	p.Source = file
	c := checker{file: file, root: &root}
	c.profile(&p, cat)
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	return &p, nil
}

func syntaxError(file string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		errs := make([]error, 0, len(te.Errors))
		for _, m := range te.Errors {
			errs = append(errs, lineError(file, m))
		}
		return errors.Join(errs...)
	}
	return lineError(file, err.Error())
}

func lineError(file, msg string) *Error {
	if m := yamlErr.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: n, Msg: m[2]}
	}
	return &Error{File: file, Msg: strings.TrimPrefix(msg, "yaml: ")}
}

// checker collects the problems of one profile.
type checker struct {
	file string
	root *yaml.Node
	errs []error
}

// fail records a problem at a field given as a path of keys and indices.
func (c *checker) fail(msg string, path ...any) {
	c.errs = append(c.errs, &Error{File: c.file, Line: yamlpos.Line(c.root, path...), Field: yamlpos.Field(path...), Msg: msg})
}

func (c *checker) profile(p *Profile, cat *cim.Catalogue) {
	if !nameRE.MatchString(p.Name) {
		c.fail(fmt.Sprintf("%q: want 1-64 lower-case letters, digits and dashes", p.Name), "name")
	}
	if p.AssetType != "" {
		if _, err := cim.ParseAssetType(string(p.AssetType)); err != nil {
			c.fail(err.Error(), "asset_type")
		}
	}
	if p.Interval < 0 {
		c.fail("negative interval", "interval")
	}
	sections := map[Protocol]bool{
		Modbus: p.Modbus != nil, SunSpec: p.SunSpec != nil, MQTT: p.MQTT != nil,
		HTTP: p.HTTP != nil, Kasa: p.Kasa != nil,
	}
	has, known := sections[p.Protocol]
	switch {
	case !known:
		c.fail(fmt.Sprintf("%q: want modbus, sunspec, mqtt, http or kasa", p.Protocol), "protocol")
		return
	case !has:
		c.fail(fmt.Sprintf("protocol %s needs a %s section", p.Protocol, p.Protocol), "protocol")
		return
	}
	for proto, present := range sections {
		if present && proto != p.Protocol {
			c.fail(fmt.Sprintf("section %s does not belong to protocol %s", proto, p.Protocol), string(proto))
		}
	}
	switch p.Protocol {
	case Modbus:
		c.modbus(p.Modbus, cat)
	case SunSpec:
		c.sunspec(p.SunSpec, cat)
	case MQTT:
		c.mqtt(p.MQTT, cat)
	case HTTP:
		c.http(p.HTTP, cat)
	case Kasa:
		c.kasa(p.Kasa, cat)
	}
}

func (c *checker) mapping(m *Mapping, cat *cim.Catalogue, path ...any) {
	if m.Quantity == "" {
		c.fail("missing quantity", path...)
		return
	}
	if err := m.check(cat); err != nil {
		c.fail(err.Error(), append(path, "quantity")...)
	}
}

func (c *checker) unitID(id int, path ...any) {
	if id < 0 || id > 255 {
		c.fail(fmt.Sprintf("unit id %d: want 0 to 255", id), path...)
	}
}

func (c *checker) port(port int, path ...any) {
	if port < 0 || port > 65535 {
		c.fail(fmt.Sprintf("port %d: want 1 to 65535", port), path...)
	}
}

func (c *checker) modbus(s *ModbusSpec, cat *cim.Catalogue) {
	c.unitID(s.UnitID, "modbus", "unit_id")
	c.port(s.Port, "modbus", "port")
	if len(s.Points) == 0 {
		c.fail("no points", "modbus", "points")
	}
	for i := range s.Points {
		pt := &s.Points[i]
		at := []any{"modbus", "points", i}
		c.mapping(&pt.Mapping, cat, at...)
		c.unitID(pt.UnitID, append(at, "unit_id")...)
		switch pt.Table {
		case "", "holding", "input":
		default:
			c.fail(fmt.Sprintf("%q: want holding or input", pt.Table), append(at, "table")...)
		}
		switch pt.Type {
		case "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64":
		default:
			c.fail(fmt.Sprintf("%q: want int16, uint16, int32, uint32, int64, uint64, float32 or float64", pt.Type), append(at, "type")...)
		}
		switch pt.WordOrder {
		case "", "high_first", "low_first":
		default:
			c.fail(fmt.Sprintf("%q: want high_first or low_first", pt.WordOrder), append(at, "word_order")...)
		}
		switch pt.ByteOrder {
		case "", "big", "little":
		default:
			c.fail(fmt.Sprintf("%q: want big or little", pt.ByteOrder), append(at, "byte_order")...)
		}
		if int(pt.Register)+pt.Registers() > 65536 {
			c.fail(fmt.Sprintf("register %d with %d words runs past 65535", pt.Register, pt.Registers()), append(at, "register")...)
		}
	}
}

func (c *checker) sunspec(s *SunSpecSpec, cat *cim.Catalogue) {
	c.unitID(s.UnitID, "sunspec", "unit_id")
	c.port(s.Port, "sunspec", "port")
	if s.Base < 0 || s.Base > 65535 {
		c.fail(fmt.Sprintf("base %d: want 0 to 65535", s.Base), "sunspec", "base")
	}
	if len(s.Points) == 0 {
		c.fail("no points", "sunspec", "points")
	}
	for i := range s.Points {
		pt := &s.Points[i]
		at := []any{"sunspec", "points", i}
		c.mapping(&pt.Mapping, cat, at...)
		if pt.Model <= 0 || pt.Model >= 0xFFFF {
			c.fail(fmt.Sprintf("model %d: want a SunSpec model id", pt.Model), append(at, "model")...)
		}
		if pt.Point == "" {
			c.fail("missing point name", append(at, "point")...)
		}
	}
}

func (c *checker) jsonPoints(pts []JSONPoint, cat *cim.Catalogue, at ...any) {
	if len(pts) == 0 {
		c.fail("no points", append(at, "points")...)
	}
	for i := range pts {
		here := append(append([]any{}, at...), "points", i)
		c.mapping(&pts[i].Mapping, cat, here...)
		if _, err := ParsePath(pts[i].Path); err != nil {
			c.fail(err.Error(), append(here, "path")...)
		}
	}
}

func (c *checker) timeField(t *TimeField, at ...any) {
	if t == nil {
		return
	}
	switch t.Format {
	case "unix_s", "unix_ms", "rfc3339", "local":
	default:
		c.fail(fmt.Sprintf("%q: want unix_s, unix_ms, rfc3339 or local", t.Format), append(at, "time", "format")...)
	}
	if _, err := ParsePath(t.Path); err != nil {
		c.fail(err.Error(), append(at, "time", "path")...)
	}
}

func (c *checker) mqtt(s *MQTTSpec, cat *cim.Catalogue) {
	if len(s.Topics) == 0 {
		c.fail("no topics", "mqtt", "topics")
	}
	for i := range s.Topics {
		t := &s.Topics[i]
		at := []any{"mqtt", "topics", i}
		if err := checkTopic(t.Topic); err != nil {
			c.fail(err.Error(), append(at, "topic")...)
		}
		switch t.Format {
		case "", "plain":
			if len(t.Points) > 0 {
				c.fail("a plain payload is one value: put its mapping on the topic, not points", append(at, "points")...)
			}
			c.mapping(&t.Mapping, cat, at...)
		case "json", "csv":
			if t.Mapping.Quantity != "" {
				c.fail("a "+t.Format+" payload lists its values under points", append(at, "quantity")...)
			}
			c.jsonPoints(t.Points, cat, at...)
		default:
			c.fail(fmt.Sprintf("%q: want plain, json or csv", t.Format), append(at, "format")...)
		}
		c.timeField(t.Time, at...)
	}
	if s.Online != "" {
		if err := checkTopic(s.Online); err != nil {
			c.fail(err.Error(), "mqtt", "online")
		}
	}
	if k := s.Keepalive; k != nil {
		if k.Topic == "" || strings.ContainsAny(k.Topic, "+#") {
			c.fail("keepalive needs a topic without wildcards", "mqtt", "keepalive", "topic")
		}
		if k.Interval <= 0 {
			c.fail("keepalive needs a positive interval", "mqtt", "keepalive", "interval")
		}
	}
}

// checkTopic checks an MQTT topic filter: + and # only as whole levels, #
// only last.
func checkTopic(t string) error {
	if t == "" {
		return errors.New("empty topic")
	}
	levels := strings.Split(t, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return fmt.Errorf("topic %q: # must be the whole last level", t)
		}
		if strings.Contains(l, "+") && l != "+" {
			return fmt.Errorf("topic %q: + must be a whole level", t)
		}
	}
	return nil
}

func (c *checker) http(s *HTTPSpec, cat *cim.Catalogue) {
	switch s.Auth {
	case "", "none", "basic", "bearer":
		if s.Login != nil {
			c.fail("a login section needs auth: login", "http", "login")
		}
	case "login":
		if s.Login == nil || s.Login.Path == "" {
			c.fail("auth login needs a login section with a path", "http", "auth")
		}
	default:
		c.fail(fmt.Sprintf("%q: want none, basic, bearer or login", s.Auth), "http", "auth")
	}
	if len(s.Requests) == 0 {
		c.fail("no requests", "http", "requests")
	}
	for i := range s.Requests {
		r := &s.Requests[i]
		at := []any{"http", "requests", i}
		if !strings.HasPrefix(r.Path, "/") {
			c.fail(fmt.Sprintf("%q: want a path starting with /", r.Path), append(at, "path")...)
		}
		switch r.Method {
		case "", "GET", "POST":
		default:
			c.fail(fmt.Sprintf("%q: want GET or POST", r.Method), append(at, "method")...)
		}
		c.jsonPoints(r.Points, cat, at...)
		c.timeField(r.Time, at...)
		if r.Expired != "" {
			if _, err := ParsePath(r.Expired); err != nil {
				c.fail(err.Error(), append(at, "expired")...)
			}
		}
	}
}

func (c *checker) kasa(s *KasaSpec, cat *cim.Catalogue) {
	c.port(s.Port, "kasa", "port")
	if len(s.Requests) == 0 {
		c.fail("no requests", "kasa", "requests")
	}
	for i := range s.Requests {
		r := &s.Requests[i]
		at := []any{"kasa", "requests", i}
		if !strings.HasPrefix(strings.TrimSpace(r.Command), "{") {
			c.fail("want a JSON object command such as {\"emeter\":{\"get_realtime\":{}}}", append(at, "command")...)
		}
		c.jsonPoints(r.Points, cat, at...)
	}
}
