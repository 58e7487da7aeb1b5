package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/device"
	"github.com/gridlink/gridlink/httpjson"
	"github.com/gridlink/gridlink/kasa"
	"github.com/gridlink/gridlink/modbus"
	"github.com/gridlink/gridlink/mqtt"
	"github.com/gridlink/gridlink/profile"
	"github.com/gridlink/gridlink/sim"
)

// captureSink keeps what the gateway would queue.
type captureSink struct {
	mu sync.Mutex
	rs []cim.Reading
	ch chan struct{}
}

func (s *captureSink) Append(rs []cim.Reading) error {
	s.mu.Lock()
	s.rs = append(s.rs, rs...)
	s.mu.Unlock()
	select {
	case s.ch <- struct{}{}:
	default:
	}
	return nil
}

func (s *captureSink) take() []cim.Reading {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.rs
	s.rs = nil
	return rs
}

// testVars gives every {var} of a profile a value.
func testVars(p *profile.Profile) map[string]string {
	vars := map[string]string{}
	for _, name := range p.Placeholders() {
		vars[name] = name + "-1"
	}
	return vars
}

// TestProfilesAgainstSimulators runs every shipped profile against its
// simulator on the real protocol, through the gateway's own path (the
// connector, the information model's validation and unit conversion): for
// three measuring cycles, what the gateway would queue is exactly what the
// simulated device held.
func TestProfilesAgainstSimulators(t *testing.T) {
	cat := cim.Default()
	set, err := profile.Embedded(cat)
	if err != nil {
		t.Fatal(err)
	}
	broker, err := mqtt.NewBroker(mqtt.BrokerConfig{Listen: "127.0.0.1:0", Users: map[string]string{"user": "password-123"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := broker.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })
	g := &Gateway{cat: cat, log: slog.New(slog.DiscardHandler), broker: broker, clients: map[string]*mqtt.Client{}}
	for _, p := range set.All() {
		t.Run(p.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			cfg := device.Config{Asset: "t/" + p.Name, Profile: p.Name, Username: "user", Password: "password-123", Token: "token-123", Vars: testVars(p)}
			update, addr := startSimulator(t, p, cfg, cat, broker)
			cfg.Address = addr
			sink := &captureSink{ch: make(chan struct{}, 1)}
			r := newRunner(cfg, p, cat, sink, g.log, time.Now, newMetrics(promRegistry()))
			if err := g.connect(ctx, r); err != nil {
				t.Fatal(err)
			}
			if r.sub != nil {
				subCtx, stop := context.WithCancel(ctx)
				done := make(chan struct{})
				go func() { r.run(subCtx); close(done) }()
				defer func() { stop(); <-done }()
				time.Sleep(100 * time.Millisecond) // let the subscription reach the broker
			}
			model := sim.NewModel(sim.ModelConfig{Seed: 3, Cycle: time.Second, Channels: sim.ChannelsOf(p), Catalogue: cat})
			start := time.Now().Truncate(time.Second)
			for k := range 3 {
				frame := model.Frame(start.Add(time.Duration(k) * time.Second))
				held, err := update(frame)
				if err != nil {
					t.Fatalf("cycle %d: simulator: %v", k, err)
				}
				want := canonical(t, cat, held)
				var got map[string]float64
				if r.poller != nil {
					vals, err := r.poller.Poll(ctx)
					if err != nil {
						t.Fatalf("cycle %d: poll: %v", k, err)
					}
					r.deliver(vals, time.Now())
					got = keyed(sink.take())
				} else {
					got = map[string]float64{}
					for len(got) < len(want) {
						select {
						case <-sink.ch:
							for k, v := range keyed(sink.take()) {
								got[k] = v
							}
						case <-ctx.Done():
							t.Fatalf("cycle %d: got %d of %d values over MQTT: %v", k, len(got), len(want), got)
						}
					}
				}
				for key, w := range want {
					g, ok := got[key]
					if !ok {
						t.Errorf("cycle %d: %s: held %v, the gateway read nothing", k, key, w)
						continue
					}
					if math.Abs(g-w) > 1e-6*math.Max(1, math.Abs(w)) {
						t.Errorf("cycle %d: %s: held %v, the gateway read %v", k, key, w, g)
					}
				}
			}
		})
	}
}

// startSimulator starts the simulator of a profile and returns its update
// function and the address the gateway reaches it at.
func startSimulator(t *testing.T, p *profile.Profile, cfg device.Config, cat *cim.Catalogue, broker *mqtt.Broker) (func(sim.Frame) ([]device.Value, error), string) {
	t.Helper()
	type server interface {
		Update(sim.Frame) ([]device.Value, error)
		Start(string) (string, error)
		Close() error
	}
	var s server
	var err error
	switch p.Protocol {
	case profile.Modbus, profile.SunSpec:
		s, err = modbus.NewSimulator(p, cfg, cat)
	case profile.HTTP:
		s, err = httpjson.NewSimulator(p, cfg, cat)
	case profile.Kasa:
		s, err = kasa.NewSimulator(p, cfg, cat)
	case profile.MQTT:
		m, err := mqtt.NewSimulator(p, cfg, cat, broker)
		if err != nil {
			t.Fatal(err)
		}
		return m.Update, "embedded"
	default:
		t.Fatalf("protocol %s has no simulator", p.Protocol)
	}
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if p.Protocol == profile.HTTP {
		addr = "http://" + addr
	}
	return s.Update, addr
}

// canonical converts held device values to canonical units, keyed by
// quantity and phase.
func canonical(t *testing.T, cat *cim.Catalogue, vals []device.Value) map[string]float64 {
	t.Helper()
	r := &runner{cfg: device.Config{Asset: "x"}, cat: cat}
	out := map[string]float64{}
	for _, v := range vals {
		rd, err := r.reading(v, time.Now())
		if err != nil {
			t.Fatalf("held value %+v: %v", v, err)
		}
		out[fmt.Sprint(rd.Quantity, " ", rd.Phase)] = rd.Value
	}
	return out
}

func keyed(rs []cim.Reading) map[string]float64 {
	out := map[string]float64{}
	for _, r := range rs {
		out[fmt.Sprint(r.Quantity, " ", r.Phase)] = r.Value
	}
	return out
}
