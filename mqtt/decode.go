package mqtt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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
	field *profile.TimeField
	path  profile.Path
	index int
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
		tf := &timeField{field: t.Time}
		var err error
		if d.format == "csv" {
			tf.index, err = csvIndex(t.Time.Path)
		} else {
			tf.path, err = profile.ParsePath(t.Time.Path)
		}
		if err != nil {
			return nil, fmt.Errorf("topic %s: time: %w", t.Topic, err)
		}
		switch tf.field.Format {
		case "unix_s", "unix_ms", "rfc3339", "local":
		default:
			return nil, fmt.Errorf("topic %s: time format %q: want unix_s, unix_ms, rfc3339 or local", t.Topic, tf.field.Format)
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
	v, skip, err := d.topic.Mapping.JSONValue(s)
	if err != nil || skip {
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
		raw, _ := d.time.path.Get(doc)
		t, err := d.time.parse(raw)
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
		v, skip, err := p.m.JSONValue(raw)
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
		var raw any // missing: nil
		if d.time.index < len(fields) {
			raw = fields[d.time.index]
		}
		t, err := d.time.parse(raw)
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
		v, skip, err := p.m.JSONValue(f)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("position %d: %w", p.index, err))
		case !skip:
			v.Time = at
			out = append(out, v)
		}
	}
	return out, errors.Join(errs...)
}

// parse reads the device's time from raw (nil when the payload lacks the
// field). A payload of a topic that names a time field must carry one: a
// missing time, or one the device leaves empty (null, 0, "", "none"), is an
// error, and the values keep the zero time so that the gateway stamps them.
func (t *timeField) parse(raw any) (time.Time, error) {
	tm, ok, err := t.field.Parse(raw)
	if err != nil {
		return time.Time{}, err
	}
	if !ok {
		return time.Time{}, errors.New("missing")
	}
	return tm, nil
}
