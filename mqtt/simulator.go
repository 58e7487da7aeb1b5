package mqtt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/device"
	"github.com/gridlink/gridlink/profile"
	"github.com/gridlink/gridlink/sim"
)

// Simulator plays an MQTT device: each Update publishes, on its Bus, the
// payloads the device would publish for one measuring cycle, laid out as
// its profile says. The bus is the simulator's transport: the gateway's
// embedded Broker in-process, or a Client connected to it.
type Simulator struct {
	bus    Bus
	topics []*simTopic
	online string // filled online topic, "" when none

	mu       sync.Mutex
	eventCnt int
}

// simTopic is one topic the simulator publishes, with what it holds.
type simTopic struct {
	topic  string
	t      *profile.MQTTTopic
	format string
	points []*simPoint
	time   *timeField
	// event topics (button presses) publish only in cycles whose frame
	// holds the event.
	event bool
}

// simPoint is one value of a topic and its quantity.
type simPoint struct {
	m     *profile.Mapping
	q     cim.Quantity
	path  profile.Path
	index int
	// what the device holds: a raw number or a state text.
	raw  float64
	text string
	held device.Value
}

// NewSimulator prepares the device's topics with their vars filled; a
// topic that still holds a wildcard cannot be published and is an error.
func NewSimulator(p *profile.Profile, cfg device.Config, cat *cim.Catalogue, bus Bus) (*Simulator, error) {
	if p == nil || p.Protocol != profile.MQTT || p.MQTT == nil {
		return nil, errors.New("mqtt simulator: profile is not an mqtt profile")
	}
	if bus == nil || cat == nil {
		return nil, fmt.Errorf("mqtt simulator for %s: needs a bus and a catalogue", p.Name)
	}
	vars := mergeVars(p.MQTT.Vars, cfg.Vars)
	s := &Simulator{bus: bus}
	for i := range p.MQTT.Topics {
		t := &p.MQTT.Topics[i]
		topic, err := Expand(t.Topic, vars)
		if err == nil {
			err = CheckTopic(topic)
		}
		if err != nil {
			return nil, fmt.Errorf("mqtt simulator for %s: mqtt.topics[%d]: %w", p.Name, i, err)
		}
		d, err := newDecoder(t, topic)
		if err != nil {
			return nil, fmt.Errorf("mqtt simulator for %s: mqtt.topics[%d]: %w", p.Name, i, err)
		}
		st := &simTopic{topic: topic, t: t, format: d.format, time: d.time}
		mappings := []*profile.Mapping{&t.Mapping}
		if d.format != "plain" {
			mappings = mappings[:0]
			for _, pt := range d.points {
				mappings = append(mappings, pt.m)
			}
		}
		for j, m := range mappings {
			q, ok := cat.Lookup(m.Quantity)
			if !ok {
				return nil, fmt.Errorf("mqtt simulator for %s: mqtt.topics[%d]: quantity %q is not in the catalogue", p.Name, i, m.Quantity)
			}
			sp := &simPoint{m: m, q: q}
			if d.format != "plain" {
				sp.path, sp.index = d.points[j].path, d.points[j].index
			}
			if q.Kind == cim.Event {
				st.event = true
			}
			// Until a frame says otherwise the device holds zero (state
			// 0 for state quantities).
			if err := sp.hold(0); err != nil {
				return nil, fmt.Errorf("mqtt simulator for %s: mqtt.topics[%d]: %w", p.Name, i, err)
			}
			st.points = append(st.points, sp)
		}
		s.topics = append(s.topics, st)
	}
	if p.MQTT.Online != "" {
		t, err := Expand(p.MQTT.Online, vars)
		if err == nil {
			err = CheckTopic(t)
		}
		if err != nil {
			return nil, fmt.Errorf("mqtt simulator for %s: mqtt.online: %w", p.Name, err)
		}
		s.online = t
	}
	return s, nil
}

// hold sets what the device holds for the true value v (canonical unit,
// or the state index).
func (sp *simPoint) hold(v float64) error {
	m := sp.m
	if len(sp.q.States) > 0 && len(m.States) > 0 {
		i := int(math.Round(v))
		if i < 0 || i >= len(sp.q.States) {
			return fmt.Errorf("%s: state index %g out of range 0..%d", m.Quantity, v, len(sp.q.States)-1)
		}
		name := sp.q.States[i]
		text := stateText(m, name)
		if text == "" {
			return fmt.Errorf("%s: state %q has no device text in the profile", m.Quantity, name)
		}
		sp.text = text
		sp.held = device.Value{Quantity: m.Quantity, Phase: m.Phase, Unit: m.Unit, State: name}
		return nil
	}
	quantise := m.Round
	if len(sp.q.States) > 0 {
		// A state sent as its number.
		quantise = math.Round
	}
	raw, held, err := m.Hold(sp.q, v, quantise)
	if err != nil {
		return err
	}
	if math.IsNaN(raw) || math.IsInf(raw, 0) {
		return fmt.Errorf("%s: value %g is not finite on the wire", m.Quantity, v)
	}
	sp.raw, sp.text, sp.held = raw, "", held
	return nil
}

// stateText is Mapping.StateText made deterministic where several device
// texts mean one state (Shelly's "off" and "overpower"): the text that is
// the state's own name, else the first in sort order.
func stateText(m *profile.Mapping, name string) string {
	if m.States[name] == name {
		return name
	}
	var texts []string
	for text, n := range m.States {
		if n == name {
			texts = append(texts, text)
		}
	}
	if len(texts) == 0 {
		return ""
	}
	slices.Sort(texts)
	return texts[0]
}

// value is the JSON value of the point.
func (sp *simPoint) value() any {
	if sp.text == "" {
		return sp.raw
	}
	// Numeric and boolean state texts (Z-Wave's 8 = motion, true = on)
	// go out as JSON numbers and bools, as the devices send them.
	if b, err := strconv.ParseBool(sp.text); err == nil && (sp.text == "true" || sp.text == "false") {
		return b
	}
	if f, err := strconv.ParseFloat(sp.text, 64); err == nil {
		return f
	}
	return sp.text
}

// wire is the point as text.
func (sp *simPoint) wire() string {
	if sp.text != "" {
		return sp.text
	}
	return strconv.FormatFloat(sp.raw, 'f', -1, 64)
}

// Topics lists the topics the simulator publishes.
func (s *Simulator) Topics() []string {
	out := make([]string, 0, len(s.topics))
	for _, t := range s.topics {
		out = append(out, t.topic)
	}
	return out
}

// SetOnline publishes the device's online topic (retained, as Shelly
// does), when its profile has one.
func (s *Simulator) SetOnline(ctx context.Context, online bool) error {
	if s.online == "" {
		return nil
	}
	return s.bus.Publish(ctx, s.online, []byte(strconv.FormatBool(online)), true)
}

// Update publishes the device's payloads for frame f and returns the
// values the device then holds. A channel missing from the frame keeps
// its previous value; an event topic publishes only when the frame holds
// its event.
func (s *Simulator) Update(f sim.Frame) ([]device.Value, error) {
	// A broker that stops answering must not hang the simulation.
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	return s.UpdateContext(ctx, f)
}

// UpdateContext is Update with a context for the publishes.
func (s *Simulator) UpdateContext(ctx context.Context, f sim.Frame) ([]device.Value, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []device.Value
	for _, t := range s.topics {
		fresh := false
		for _, sp := range t.points {
			v, ok := f.Value(sp.m.Quantity, sp.m.Phase)
			if !ok {
				continue
			}
			if err := sp.hold(v); err != nil {
				return out, fmt.Errorf("topic %s: %w", t.topic, err)
			}
			fresh = true
		}
		if t.event && !fresh {
			continue
		}
		payload, at, err := s.payload(t, f.Start)
		if err != nil {
			return out, fmt.Errorf("topic %s: %w", t.topic, err)
		}
		if err := s.bus.Publish(ctx, t.topic, payload, false); err != nil {
			return out, err
		}
		for _, sp := range t.points {
			v := sp.held
			v.Time = at
			out = append(out, v)
		}
	}
	return out, nil
}

// payload builds a topic's message and the device time it carries.
func (s *Simulator) payload(t *simTopic, start time.Time) ([]byte, time.Time, error) {
	switch t.format {
	case "plain":
		return []byte(t.points[0].wire()), time.Time{}, nil
	case "csv":
		n := 0
		for _, sp := range t.points {
			n = max(n, sp.index+1)
		}
		var at time.Time
		var stamp string
		stamped := t.time != nil && !start.IsZero()
		if stamped {
			n = max(n, t.time.index+1)
			var v any
			v, at = timeValue(t.time.field.Format, start)
			stamp = fmt.Sprint(v)
		}
		fields := make([]string, n)
		for i := range fields {
			fields[i] = "0"
		}
		for _, sp := range t.points {
			fields[sp.index] = sp.wire()
		}
		if stamped {
			fields[t.time.index] = stamp
		}
		return []byte(strings.Join(fields, ",")), at, nil
	}
	var doc any = map[string]any{}
	for _, sp := range t.points {
		doc = sp.path.Set(doc, sp.value())
	}
	var at time.Time
	if t.time != nil && !start.IsZero() {
		var v any
		v, at = timeValue(t.time.field.Format, start)
		doc = t.time.path.Set(doc, v)
	}
	if t.t.Points != nil && isButton(t) {
		// Shelly counts presses alongside the event.
		s.eventCnt++
		if m, ok := doc.(map[string]any); ok {
			m["event_cnt"] = s.eventCnt
		}
	}
	b, err := json.Marshal(doc)
	return b, at, err
}

// isButton reports a Shelly-style input_event payload.
func isButton(t *simTopic) bool {
	return t.event && len(t.points) == 1 && t.points[0].path.String() == "event"
}

// timeValue is the device's time stamp of start in format, and the time
// it reads back as.
func timeValue(format string, start time.Time) (any, time.Time) {
	start = start.UTC()
	switch format {
	case "unix_s":
		t := start.Truncate(time.Second)
		return t.Unix(), t
	case "unix_ms":
		t := start.Truncate(time.Millisecond)
		return t.UnixMilli(), t
	case "local":
		t := start.Truncate(time.Second)
		return t.Format("2006-01-02T15:04:05"), t
	default: // rfc3339
		t := start.Truncate(time.Millisecond)
		return t.Format(time.RFC3339Nano), t
	}
}
