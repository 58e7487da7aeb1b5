package mqtt

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gridlink/gridlink/device"
	"github.com/gridlink/gridlink/profile"
)

// Subscriber receives one device's values from a Bus, as its profile lays
// them out. NewSubscriber returns one.
type Subscriber struct {
	profile   string
	asset     string
	bus       Bus
	log       *slog.Logger
	decoders  []*decoder
	online    string // filled online topic, "" when the profile has none
	keepalive *keepalive

	// state of the online topic: 0 not seen yet, 1 offline, 2 online.
	onlineState atomic.Int32
	bad         atomic.Uint64
}

// keepalive is a message published while subscribed.
type keepalive struct {
	topic    string
	payload  []byte
	interval time.Duration
}

// NewSubscriber builds the connector of one MQTT device: the profile's
// topics with their {vars} filled from the profile's defaults and
// cfg.Vars. The result is a *Subscriber (see Online and BadPayloads).
func NewSubscriber(p *profile.Profile, cfg device.Config, bus Bus, log *slog.Logger) (device.Subscriber, error) {
	if p == nil || p.Protocol != profile.MQTT || p.MQTT == nil {
		return nil, fmt.Errorf("mqtt subscriber: profile is not an mqtt profile")
	}
	if bus == nil {
		return nil, fmt.Errorf("mqtt subscriber for %s: no bus", p.Name)
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	vars := mergeVars(p.MQTT.Vars, cfg.Vars)
	s := &Subscriber{profile: p.Name, asset: cfg.Asset, bus: bus}
	s.log = log.With("profile", p.Name, "asset", cfg.Asset)
	for i := range p.MQTT.Topics {
		t := &p.MQTT.Topics[i]
		filter, err := Expand(t.Topic, vars)
		if err != nil {
			return nil, fmt.Errorf("profile %s: mqtt.topics[%d]: %w", p.Name, i, err)
		}
		d, err := newDecoder(t, filter)
		if err != nil {
			return nil, fmt.Errorf("profile %s: mqtt.topics[%d]: %w", p.Name, i, err)
		}
		s.decoders = append(s.decoders, d)
	}
	if p.MQTT.Online != "" {
		t, err := Expand(p.MQTT.Online, vars)
		if err != nil {
			return nil, fmt.Errorf("profile %s: mqtt.online: %w", p.Name, err)
		}
		s.online = t
	}
	if k := p.MQTT.Keepalive; k != nil {
		t, err := Expand(k.Topic, vars)
		if err == nil {
			err = CheckTopic(t)
		}
		if err != nil {
			return nil, fmt.Errorf("profile %s: mqtt.keepalive: %w", p.Name, err)
		}
		if k.Interval <= 0 {
			return nil, fmt.Errorf("profile %s: mqtt.keepalive: interval %s: want a positive interval", p.Name, k.Interval)
		}
		s.keepalive = &keepalive{topic: t, payload: []byte(k.Payload), interval: k.Interval}
	}
	return s, nil
}

// Filters lists the topic filters the subscriber subscribes to.
func (s *Subscriber) Filters() []string {
	var out []string
	seen := map[string]bool{}
	add := func(f string) {
		if f != "" && !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	add(s.online)
	for _, d := range s.decoders {
		add(d.filter)
	}
	return out
}

// Online reports what the device's online topic (Shelly's last will) said
// last: known is false until a message came.
func (s *Subscriber) Online() (known, online bool) {
	switch s.onlineState.Load() {
	case 1:
		return true, false
	case 2:
		return true, true
	}
	return false, false
}

// BadPayloads counts the messages that could not be decoded in full.
func (s *Subscriber) BadPayloads() uint64 { return s.bad.Load() }

// Subscribe subscribes to the device's topics and delivers its values
// through emit, one call per message, never two at once. It publishes the
// keepalive, if the profile has one, right after subscribing and then at
// its interval. It returns nil when ctx ends and an error when the bus
// fails or closes.
func (s *Subscriber) Subscribe(ctx context.Context, emit func([]device.Value)) error {
	var (
		mu   sync.Mutex
		done bool
	)
	deliver := func(topic string, payload []byte) {
		vals := s.handle(topic, payload)
		if len(vals) == 0 {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !done {
			emit(vals)
		}
	}
	var unsubs []func()
	defer func() {
		for _, u := range unsubs {
			u()
		}
		// Wait for a delivery in progress; none starts after this.
		mu.Lock()
		done = true
		mu.Unlock()
	}()
	for _, f := range s.Filters() {
		u, err := s.bus.Subscribe(f, deliver)
		if err != nil {
			return fmt.Errorf("subscribe to %s: %w", f, err)
		}
		unsubs = append(unsubs, u)
	}
	var busDone <-chan struct{}
	if d, ok := s.bus.(doner); ok {
		busDone = d.Done()
	}
	var tick <-chan time.Time
	if k := s.keepalive; k != nil {
		s.sendKeepalive(ctx)
		t := time.NewTicker(k.interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-busDone:
			return ErrClosed
		case <-tick:
			s.sendKeepalive(ctx)
		}
	}
}

func (s *Subscriber) sendKeepalive(ctx context.Context) {
	k := s.keepalive
	pctx, cancel := context.WithTimeout(ctx, k.interval)
	defer cancel()
	if err := s.bus.Publish(pctx, k.topic, k.payload, false); err != nil && ctx.Err() == nil {
		// The bus reconnects by itself; the next tick tries again.
		s.log.Warn("mqtt keepalive not sent", "topic", k.topic, "err", err)
	}
}

// handle decodes one message; bad payloads are logged and counted.
func (s *Subscriber) handle(topic string, payload []byte) []device.Value {
	if s.online != "" && MatchTopic(s.online, topic) {
		switch strings.TrimSpace(string(payload)) {
		case "true", "1", "online":
			s.onlineState.Store(2)
		case "false", "0", "offline":
			s.onlineState.Store(1)
		default:
			s.bad.Add(1)
			s.log.Warn("mqtt online topic: want true or false", "topic", topic, "payload", excerpt(payload))
		}
		return nil
	}
	for _, d := range s.decoders {
		if !MatchTopic(d.filter, topic) {
			continue
		}
		vals, err := d.decode(payload)
		if err != nil {
			s.bad.Add(1)
			s.log.Warn("mqtt bad payload", "topic", topic, "payload", excerpt(payload), "err", err)
		}
		return vals
	}
	return nil
}
