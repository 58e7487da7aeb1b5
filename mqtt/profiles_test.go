package mqtt

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/device"
	"github.com/gridlink/gridlink/profile"
	"github.com/gridlink/gridlink/sim"
)

// testVars fills every placeholder a profile may use.
var testVars = map[string]string{
	"id":     "shellyplug-s-7C87CEB4A3C5",
	"node":   "nodeID_14",
	"topic":  "tasmota_A1B2C3",
	"portal": "7c386655e76b",
}

// frameFor makes a frame with a plausible value for every channel of p:
// inside the quantity's bounds, varied by cycle, and for states one the
// profile can send.
func frameFor(t *testing.T, cat *cim.Catalogue, p *profile.Profile, cycle int64) sim.Frame {
	t.Helper()
	f := sim.Frame{
		Cycle:  cycle,
		Start:  time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(cycle)*10*time.Second + 123*time.Millisecond),
		Values: map[sim.Channel]float64{},
	}
	for i, m := range p.Mappings() {
		q, _ := cat.Lookup(m.Quantity)
		var v float64
		switch {
		case len(q.States) > 0 && len(m.States) > 0:
			// Walk through the states the device can send.
			var idx []int
			for si, name := range q.States {
				if m.StateText(name) != "" {
					idx = append(idx, si)
				}
			}
			v = float64(idx[(int(cycle)+i)%len(idx)])
		case len(q.States) > 0:
			v = float64((int(cycle) + i) % len(q.States))
		default:
			lo, hi := q.Min, q.Max
			if lo == 0 && hi == 0 {
				lo, hi = -1000, 1000
			}
			lo, hi = math.Max(lo, -5000), math.Min(hi, 250000)
			frac := 0.137 + 0.05*float64(cycle%7) + 0.01*float64(i%5)
			v = lo + (hi-lo)*frac
		}
		f.Values[sim.Channel{Quantity: m.Quantity, Phase: m.Phase}] = v
	}
	return f
}

// TestProfilesRoundTrip runs every embedded mqtt profile's Simulator
// against its Subscriber through the embedded broker: what the subscriber
// emits is what the simulated device holds.
func TestProfilesRoundTrip(t *testing.T) {
	cat := cim.Default()
	set, err := profile.Embedded(cat)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range set.All() {
		if p.Protocol != profile.MQTT {
			continue
		}
		n++
		t.Run(p.Name, func(t *testing.T) {
			b, err := NewBroker(BrokerConfig{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.Start(); err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			cfg := device.Config{Asset: "a1", Profile: p.Name, Vars: testVars}
			// A keepalive (Venus) must reach the broker.
			keepalives := make(chan string, 16)
			if k := p.MQTT.Keepalive; k != nil {
				topic, err := Expand(k.Topic, testVars)
				if err != nil {
					t.Fatal(err)
				}
				u, err := b.Subscribe(topic, func(topic string, _ []byte) { keepalives <- topic })
				if err != nil {
					t.Fatal(err)
				}
				defer u()
			}
			r := startSubscriber(t, t.Context(), p, cfg, b)
			if p.MQTT.Keepalive != nil {
				select {
				case <-keepalives:
				case <-time.After(hang):
					t.Fatal("no keepalive published")
				}
			}
			s, err := NewSimulator(p, cfg, cat, b)
			if err != nil {
				t.Fatal(err)
			}
			if p.MQTT.Online != "" {
				if known, _ := r.sub.Online(); known {
					t.Fatal("online known before the device said so")
				}
				if err := s.SetOnline(t.Context(), true); err != nil {
					t.Fatal(err)
				}
				if known, online := r.sub.Online(); !known || !online {
					t.Fatalf("Online() = %v, %v after the device said true", known, online)
				}
			}
			for cycle := int64(1); cycle <= 3; cycle++ {
				held, err := s.Update(frameFor(t, cat, p, cycle))
				if err != nil {
					t.Fatal(err)
				}
				if len(held) == 0 {
					t.Fatal("simulator holds nothing")
				}
				// The inline broker delivers before Publish returns; the
				// channel has every message of the cycle.
				var got []device.Value
				for len(got) < len(held) {
					got = append(got, r.next(t)...)
				}
				compareValues(t, cat, held, got)
			}
			if n := r.sub.BadPayloads(); n != 0 {
				t.Errorf("%d bad payloads", n)
			}
		})
	}
	if n < 10 {
		t.Errorf("only %d mqtt profiles embedded, want the 10 pilot ones", n)
	}
}

// compareValues checks got against held, one for one, in order.
func compareValues(t *testing.T, cat *cim.Catalogue, held, got []device.Value) {
	t.Helper()
	if len(got) != len(held) {
		t.Fatalf("got %d values, want %d:\n got %+v\nwant %+v", len(got), len(held), got, held)
	}
	for i := range held {
		h, g := held[i], got[i]
		if h.Quantity != g.Quantity || h.Phase != g.Phase || h.State != g.State || !h.Time.Equal(g.Time) {
			t.Errorf("value %d: got %+v, want %+v", i, g, h)
			continue
		}
		if h.State == "" {
			if hv, gv := canonical(t, cat, h), canonical(t, cat, g); !near(hv, gv) {
				t.Errorf("%s%s: got %v (%g %s), want %v (%g %s)", h.Quantity, h.Phase, gv, g.Value, g.Unit, hv, h.Value, h.Unit)
			}
		}
	}
}

// TestSimulatorRefusesWildcards: a topic whose wildcard is not a var
// cannot be published.
func TestSimulatorRefusesWildcards(t *testing.T) {
	cat := cim.Default()
	p, err := profile.Parse([]byte(`name: wild
protocol: mqtt
mqtt:
  topics:
    - {topic: "zwave/+/49/0/Air_temperature", quantity: temperature}
`), "wild.yaml", cat)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewBroker(BrokerConfig{}, nil)
	defer b.Close()
	if _, err := NewSimulator(p, device.Config{}, cat, b); err == nil || !strings.Contains(err.Error(), "wildcards") {
		t.Fatalf("NewSimulator: %v, want a wildcard error", err)
	}
	// A var filled with a wildcard is just as unpublishable.
	p2 := embeddedProfile(t, "emonpi-emonhub")
	if _, err := NewSimulator(p2, device.Config{Vars: map[string]string{"node": "+"}}, cat, b); err == nil {
		t.Fatal("NewSimulator accepted node=+")
	}
	// The subscriber takes the wildcard.
	if _, err := NewSubscriber(p, device.Config{}, b, nil); err != nil {
		t.Fatal(err)
	}
}

// TestSubscriberUnknownVar names the var that is missing.
func TestSubscriberUnknownVar(t *testing.T) {
	b, _ := NewBroker(BrokerConfig{}, nil)
	defer b.Close()
	p := embeddedProfile(t, "shelly-plug-s-mqtt")
	_, err := NewSubscriber(p, device.Config{}, b, nil)
	if err == nil || !strings.Contains(err.Error(), `var "id"`) {
		t.Fatalf("NewSubscriber without vars.id: %v", err)
	}
	// emonhub's node has a default.
	if _, err := NewSubscriber(embeddedProfile(t, "emonpi-emonhub"), device.Config{}, b, nil); err != nil {
		t.Fatal(err)
	}
}

// TestSubscribeEndsWithBus: closing the broker ends Subscribe with an
// error, cancelling ctx ends it with nil.
func TestSubscribeEndsWithBus(t *testing.T) {
	p := embeddedProfile(t, "emonpi-emonhub")
	b, _ := NewBroker(BrokerConfig{}, nil)
	r := startSubscriber(t, t.Context(), p, device.Config{}, b)
	b.Close()
	select {
	case err := <-r.err:
		if err == nil {
			t.Fatal("Subscribe returned nil when the bus closed")
		}
	case <-time.After(hang):
		t.Fatal("Subscribe did not end with the bus")
	}

	b2, _ := NewBroker(BrokerConfig{}, nil)
	defer b2.Close()
	ctx, cancel := contextWithCancel(t)
	r2 := startSubscriber(t, ctx, p, device.Config{}, b2)
	cancel()
	select {
	case err := <-r2.err:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(hang):
		t.Fatal("Subscribe did not end with ctx")
	}
	// Nothing is delivered after Subscribe returned.
	if err := b2.Publish(t.Context(), "emon/emonpi/power1", []byte("5"), false); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-r2.values:
		t.Fatalf("emitted %v after Subscribe returned", v)
	default:
	}
}
