package mqtt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/gridlink/gridlink/device"
	"github.com/gridlink/gridlink/profile"
)

// MaxPayload bounds the payload a decoder reads; device payloads are at
// most a few kilobytes (a Shelly /status JSON).
const MaxPayload = 256 << 10

// decoder reads the payload of one profile topic.
type decoder struct {
	filter string // the topic with its vars filled
	topic  *profile.MQTTTopic
	format string // plain, json or csv
	points []point
	time   *timeField
}

// point is one value of a json or csv payload.
type point struct {
	m     *profile.Mapping
	path  profile.Path
	index int // csv position
}

// timeField is where a payload carries the device's clock.
type timeField struct {
	path   profile.Path
	index  int
	format string
}

// newDecoder prepares the decoding of one profile topic whose filter is
// already expanded.
func newDecoder(t *profile.MQTTTopic, filter string) (*decoder, error) {
	d := &decoder{filter: filter, topic: t, format: t.Format}
	if d.format == "" {
		d.format = "plain"
	}
	switch d.format {
	case "plain":
		if t.Time != nil {
			return nil, fmt.Errorf("topic %s: a plain payload carries no time field", t.Topic)
		}
		return d, nil
	case "json", "csv":
	default:
		return nil, fmt.Errorf("topic %s: format %q: want plain, json or csv", t.Topic, t.Format)
	}
	for i := range t.Points {
		p := point{m: &t.Points[i].Mapping}
		var err error
		if d.format == "csv" {
			p.index, err = csvIndex(t.Points[i].Path)
		} else {
			p.path, err = profile.ParsePath(t.Points[i].Path)
		}
		if err != nil {
			return nil, fmt.Errorf("topic %s: point %d (%s): %w", t.Topic, i, t.Points[i].Quantity, err)
		}
		d.points = append(d.points, p)
	}
	if t.Time != nil {
		tf := &timeField{format: t.Time.Format}
		var err error
		if d.format == "csv" {
			tf.index, err = csvIndex(t.Time.Path)
		} else {
			tf.path, err = profile.ParsePath(t.Time.Path)
		}
		if err != nil {
			return nil, fmt.Errorf("topic %s: time: %w", t.Topic, err)
		}
		switch tf.format {
		case "unix_s", "unix_ms", "rfc3339", "local":
		default:
			return nil, fmt.Errorf("topic %s: time format %q: want unix_s, unix_ms, rfc3339 or local", t.Topic, tf.format)
		}
		d.time = tf
	}
	return d, nil
}

func csvIndex(s string) (int, error) {
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || i > 1023 {
		return 0, fmt.Errorf("csv path %q: want a 0-based position 0..1023", s)
	}
	return i, nil
}

// decode reads one payload. It returns the values it could read and an
// error naming every value it could not; an empty payload (Venus: the
// device is gone) and null decode to no values and no error.
func (d *decoder) decode(payload []byte) ([]device.Value, error) {
	if len(payload) > MaxPayload {
		return nil, fmt.Errorf("payload of %d bytes is larger than %d", len(payload), MaxPayload)
	}
	s := strings.TrimSpace(string(payload))
	if s == "" || s == "null" {
		return nil, nil
	}
	switch d.format {
	case "json":
		return d.decodeJSON([]byte(s))
	case "csv":
		return d.decodeCSV(s)
	}
	v, err := textValue(&d.topic.Mapping, s)
	if err != nil {
		return nil, err
	}
	return []device.Value{v}, nil
}

func (d *decoder) decodeJSON(payload []byte) ([]device.Value, error) {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("payload is not JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("payload holds more than one JSON value")
	}
	var (
		out  []device.Value
		errs []error
	)
	var at time.Time
	if d.time != nil {
		raw, ok := d.time.path.Get(doc)
		t, err := parseTime(raw, ok, d.time.format)
		if err != nil {
			errs = append(errs, fmt.Errorf("time at %s: %w", d.time.path, err))
		}
		at = t
	}
	for _, p := range d.points {
		raw, ok := p.path.Get(doc)
		if !ok {
			if !p.m.Optional {
				errs = append(errs, fmt.Errorf("%s: no value at %s", p.m.Quantity, p.path))
			}
			continue
		}
		v, skip, err := jsonValue(p.m, raw)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s at %s: %w", p.m.Quantity, p.path, err))
		case !skip:
			v.Time = at
			out = append(out, v)
		}
	}
	return out, errors.Join(errs...)
}

func (d *decoder) decodeCSV(s string) ([]device.Value, error) {
	fields := strings.Split(s, ",")
	var (
		out  []device.Value
		errs []error
	)
	var at time.Time
	if d.time != nil {
		var (
			raw any
			ok  = d.time.index < len(fields)
		)
		if ok {
			raw = strings.TrimSpace(fields[d.time.index])
		}
		t, err := parseTime(raw, ok, d.time.format)
		if err != nil {
			errs = append(errs, fmt.Errorf("time at position %d: %w", d.time.index, err))
		}
		at = t
	}
	for _, p := range d.points {
		if p.index >= len(fields) {
			if !p.m.Optional {
				errs = append(errs, fmt.Errorf("%s: no value at position %d of %d", p.m.Quantity, p.index, len(fields)))
			}
			continue
		}
		f := strings.TrimSpace(fields[p.index])
		if f == "" || f == "null" {
			continue
		}
		v, err := textValue(p.m, f)
		if err != nil {
			errs = append(errs, fmt.Errorf("position %d: %w", p.index, err))
			continue
		}
		v.Time = at
		out = append(out, v)
	}
	return out, errors.Join(errs...)
}

// textValue reads a number or a state text; true and false count as 1
// and 0 where the mapping lists no states.
func textValue(m *profile.Mapping, s string) (device.Value, error) {
	if len(m.States) == 0 {
		switch s {
		case "true":
			return checked(m.Value(1))
		case "false":
			return checked(m.Value(0))
		}
	}
	v, err := m.TextValue(s)
	if err != nil {
		return device.Value{}, err
	}
	return checked(v)
}

// jsonValue reads one JSON value: a number, a numeric string, a bool or a
// state text. skip is set for null (Venus OS: invalid) and "".
func jsonValue(m *profile.Mapping, raw any) (v device.Value, skip bool, err error) {
	switch x := raw.(type) {
	case nil:
		return device.Value{}, true, nil
	case float64:
		if len(m.States) > 0 {
			v, err = m.TextValue(strconv.FormatFloat(x, 'f', -1, 64))
			return v, false, err
		}
		v, err = checked(m.Value(x))
		return v, false, err
	case bool:
		if len(m.States) > 0 {
			v, err = m.TextValue(strconv.FormatBool(x))
			return v, false, err
		}
		n := 0.0
		if x {
			n = 1
		}
		v, err = checked(m.Value(n))
		return v, false, err
	case string:
		x = strings.TrimSpace(x)
		if x == "" {
			// No value, as null (a Shelly Button1 waking without a press
			// sends an empty event).
			return device.Value{}, true, nil
		}
		v, err = textValue(m, x)
		return v, false, err
	default:
		return device.Value{}, false, fmt.Errorf("want a number, a string or a bool, got %s", jsonKind(raw))
	}
}

// checked refuses values that are not finite after scaling.
func checked(v device.Value) (device.Value, error) {
	if v.State == "" && (math.IsNaN(v.Value) || math.IsInf(v.Value, 0)) {
		return device.Value{}, fmt.Errorf("%s: value is not finite", v.Quantity)
	}
	return v, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%T", v)
}

// Plausible device clocks: a time outside is a misread field, not a
// reading from 1970 or 2300.
var (
	minTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// localLayouts are the zone-less forms devices write (Tasmota, Hue).
var localLayouts = []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"}

// parseTime reads a device timestamp.
func parseTime(raw any, ok bool, format string) (time.Time, error) {
	if !ok || raw == nil {
		return time.Time{}, errors.New("missing")
	}
	var t time.Time
	switch format {
	case "unix_s", "unix_ms":
		var n float64
		switch x := raw.(type) {
		case float64:
			n = x
		case string:
			f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("%q is not a number", clip(x))
			}
			n = f
		default:
			return time.Time{}, fmt.Errorf("want a number, got %s", jsonKind(raw))
		}
		if format == "unix_ms" {
			n /= 1000
		}
		// Range-check before converting: float to int64 of a huge value
		// is undefined.
		if !(n >= float64(minTime.Unix()) && n <= float64(maxTime.Unix())) {
			return time.Time{}, fmt.Errorf("%v is not a plausible %s time", raw, format)
		}
		sec := math.Floor(n)
		// Keep milliseconds exact: unix_ms 1548683523859 must not come
		// back as …858999.
		ms := math.Round((n - sec) * 1000)
		t = time.Unix(int64(sec), int64(ms)*int64(time.Millisecond)).UTC()
	case "rfc3339", "local":
		s, isStr := raw.(string)
		if !isStr {
			return time.Time{}, fmt.Errorf("want a string, got %s", jsonKind(raw))
		}
		var err error
		if format == "rfc3339" {
			t, err = time.Parse(time.RFC3339Nano, s)
		} else {
			for _, layout := range localLayouts {
				if t, err = time.ParseInLocation(layout, s, time.UTC); err == nil {
					break
				}
			}
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is not a %s time", clip(s), format)
		}
		t = t.UTC()
		if t.Before(minTime) || t.After(maxTime) {
			return time.Time{}, fmt.Errorf("%q is not a plausible time", clip(s))
		}
	default:
		return time.Time{}, fmt.Errorf("unknown time format %q", format)
	}
	return t, nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
