package httpjson

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/device"
	"github.com/gridlink/gridlink/profile"
	"github.com/gridlink/gridlink/sim"
)

// Document is the JSON document a simulated device serves for one request:
// a base document (a recorded reply, so that fields the profile does not
// read look real) with the profile's points set to the values the device
// holds. The HTTP and the Kasa simulators serve it. It is safe for
// concurrent use.
type Document struct {
	mu     sync.Mutex
	doc    any
	points []docPoint
	time   *timeSpec
	at     time.Time // the device time the document carries
}

// docPoint is one point of a simulated document.
type docPoint struct {
	point
	q    cim.Quantity
	held device.Value
}

// NewDocument builds a document from base (a JSON reply; nil for none) and
// a request's points. An optional point is served only when base has it:
// optional points describe other firmware shapes (Kasa HS110 versus
// KP115), and a device serves one shape. The other points start as base
// holds them, or at zero.
func NewDocument(base []byte, pts []profile.JSONPoint, tf *profile.TimeField, vars map[string]string, cat *cim.Catalogue) (*Document, error) {
	r, err := NewReader(pts, tf, vars)
	if err != nil {
		return nil, err
	}
	d := &Document{time: r.time}
	if base != nil {
		if d.doc, err = DecodeBody(base); err != nil {
			return nil, fmt.Errorf("base document: %w", err)
		}
	}
	for _, p := range r.points {
		q, ok := cat.Lookup(p.m.Quantity)
		if !ok {
			return nil, fmt.Errorf("path %s: quantity %q is not in the catalogue", p.text, p.m.Quantity)
		}
		raw, has := p.path.Get(d.doc)
		if p.m.Optional && !has {
			continue
		}
		dp := docPoint{point: p, q: q}
		v, skip, err := p.m.JSONValue(raw)
		if err != nil {
			return nil, fmt.Errorf("base document: path %s: %w", p.text, err)
		}
		if skip {
			// Missing, null or empty: the device holds no value yet.
			if err := d.set(&dp, initial(p.m, q)); err != nil {
				return nil, err
			}
		} else {
			dp.held = v
		}
		d.points = append(d.points, dp)
	}
	if d.time != nil {
		if d.at, err = d.time.read(d.doc); err != nil {
			return nil, fmt.Errorf("base document: %w", err)
		}
	}
	return d, nil
}

// initial is the canonical value a point starts at when base lacks it:
// zero, or the first state the mapping has a device text for.
func initial(m *profile.Mapping, q cim.Quantity) float64 {
	if len(m.States) == 0 {
		return 0
	}
	for i, name := range q.States {
		if m.StateText(name) != "" {
			return float64(i)
		}
	}
	return 0
}

// Update sets the points whose channel f has to f's values, stamps the
// document with f.Start when the profile locates a device time, and returns
// every value the document then holds, as a reader decodes them.
func (d *Document) Update(f sim.Frame) ([]device.Value, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range d.points {
		p := &d.points[i]
		v, ok := f.Value(p.m.Quantity, p.m.Phase)
		if !ok {
			continue
		}
		if err := d.set(p, v); err != nil {
			return nil, err
		}
	}
	if d.time != nil && !f.Start.IsZero() {
		var raw any
		t := f.Start.UTC()
		switch d.time.field.Format {
		case "unix_s":
			t = t.Truncate(time.Second)
			raw = float64(t.Unix())
		case "unix_ms":
			t = t.Truncate(time.Millisecond)
			raw = float64(t.UnixMilli())
		case "rfc3339":
			t = t.Truncate(time.Millisecond)
			raw = t.Format(time.RFC3339Nano)
		case "local":
			t = t.Truncate(time.Second)
			raw = t.Format("2006-01-02T15:04:05")
		}
		d.doc = d.time.path.Set(d.doc, raw)
		d.at = t
	}
	return d.heldLocked(), nil
}

// set holds the canonical value v at p: quantised as the JSON the device
// writes (the mapping's decimals), in the JSON type the base document uses
// at that path.
func (d *Document) set(p *docPoint, v float64) error {
	m := p.m
	existing, _ := p.path.Get(d.doc)
	var served any
	if len(p.q.States) > 0 && len(m.States) > 0 {
		if v != math.Trunc(v) || v < 0 || v >= float64(len(p.q.States)) {
			return fmt.Errorf("path %s: %g is not a state code of %s", p.text, v, p.q.Name)
		}
		name := p.q.States[int(v)]
		text := m.StateText(name)
		if text == "" {
			return fmt.Errorf("path %s: the profile has no device text for state %s of %s", p.text, name, p.q.Name)
		}
		served = text
		switch existing.(type) {
		case bool:
			if b, err := strconv.ParseBool(text); err == nil {
				served = b
			}
		case float64:
			if f, err := strconv.ParseFloat(text, 64); err == nil {
				served = f
			}
		}
		p.held = device.Value{Quantity: m.Quantity, Phase: m.Phase, Unit: m.Unit, State: name}
	} else {
		raw, held, err := m.Hold(p.q, v, m.Round)
		if err != nil {
			return fmt.Errorf("path %s: %w", p.text, err)
		}
		if math.IsNaN(raw) || math.IsInf(raw, 0) {
			return fmt.Errorf("path %s: %g cannot be written as JSON", p.text, raw)
		}
		switch existing.(type) {
		case bool:
			// A bool-coded value reads back as 1 or 0.
			served = raw != 0
			if raw != 0 {
				held = m.Value(1)
			} else {
				held = m.Value(0)
			}
		case string:
			served = strconv.FormatFloat(raw, 'f', -1, 64)
		default:
			served = raw
		}
		p.held = held
	}
	d.doc = p.path.Set(d.doc, served)
	return nil
}

// Held returns the values the document holds, in profile order.
func (d *Document) Held() []device.Value {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.heldLocked()
}

func (d *Document) heldLocked() []device.Value {
	out := make([]device.Value, 0, len(d.points))
	for _, p := range d.points {
		v := p.held
		if d.time != nil {
			v.Time = d.at
		}
		out = append(out, v)
	}
	return slices.Clip(out)
}

// JSON encodes the document as the device sends it.
func (d *Document) JSON() ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return json.Marshal(d.doc)
}

// Documents are the replies of one simulated device, in profile order.
type Documents []*Document

// Update sets what each document holds for this cycle and returns the
// values a poller reads back, in order.
func (ds Documents) Update(f sim.Frame) ([]device.Value, error) {
	var out []device.Value
	for _, d := range ds {
		vals, err := d.Update(f)
		if err != nil {
			return nil, err
		}
		out = append(out, vals...)
	}
	return out, nil
}

// Held returns the values the documents hold now, in order.
func (ds Documents) Held() []device.Value {
	var out []device.Value
	for _, d := range ds {
		out = append(out, d.Held()...)
	}
	return out
}
