package mqtt

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// BrokerConfig configures the embedded broker.
type BrokerConfig struct {
	// Listen is the TCP address, e.g. ":1883" or "127.0.0.1:0"; empty
	// means no network listener (only the in-process Bus).
	Listen string
	// Users maps each username to its password. A client must present one
	// of them.
	Users map[string]string
	// ACL maps a username to the topic filters it may publish to; a user
	// without an entry may publish anywhere. Every user may subscribe to
	// every topic.
	ACL map[string][]string
	// AllowAnonymous lets clients in without credentials; it is honoured
	// only when Users is empty.
	AllowAnonymous bool
}

// Broker is the gateway's embedded MQTT broker (MQTT 3.1, 3.1.1 and 5, so
// Shelly Gen1 devices can connect). It is a Bus for the gateway's own
// connectors through mochi's inline client.
type Broker struct {
	cfg    BrokerConfig
	srv    *mochi.Server
	log    *slog.Logger
	nextID atomic.Int64

	mu      sync.Mutex
	started bool
	closed  bool
	done    chan struct{}
}

// NewBroker checks cfg and builds a broker; Start opens its listener.
func NewBroker(cfg BrokerConfig, log *slog.Logger) (*Broker, error) {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if len(cfg.Users) == 0 && !cfg.AllowAnonymous && cfg.Listen != "" {
		return nil, errors.New("mqtt broker: no users and allow_anonymous off: every client would be refused")
	}
	for user := range cfg.Users {
		if user == "" {
			return nil, errors.New("mqtt broker: users: empty username")
		}
	}
	for user, filters := range cfg.ACL {
		if _, ok := cfg.Users[user]; !ok {
			return nil, fmt.Errorf("mqtt broker: acl: user %q is not in users", user)
		}
		for _, f := range filters {
			if err := CheckFilter(f); err != nil {
				return nil, fmt.Errorf("mqtt broker: acl of %q: %w", user, err)
			}
		}
	}
	blog := log.With("component", "mqtt-broker")
	// Sized for a gateway on a Raspberry Pi Zero: devices publish and
	// rarely subscribe, so a client's queue of pending writes and the
	// in-flight window can be small (mochi's defaults are 8192 each), and
	// the $SYS statistics need not be refreshed every second.
	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumClientWritesPending = 256
	caps.MaximumInflight = 256
	srv := mochi.New(&mochi.Options{InlineClient: true, Logger: blog, Capabilities: caps, SysTopicResendInterval: 60})
	h := &authHook{
		users:     cfg.Users,
		acl:       cfg.ACL,
		anonymous: len(cfg.Users) == 0 && cfg.AllowAnonymous,
	}
	if err := srv.AddHook(h, nil); err != nil {
		return nil, fmt.Errorf("mqtt broker: add auth hook: %w", err)
	}
	return &Broker{cfg: cfg, srv: srv, log: blog, done: make(chan struct{})}, nil
}

// Start opens the listener and serves; it returns the bound address
// (host:port, useful with port 0), or "" when Listen is empty.
func (b *Broker) Start() (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return "", ErrClosed
	case b.started:
		return "", errors.New("mqtt broker: already started")
	}
	var addr string
	if b.cfg.Listen != "" {
		l := listeners.NewTCP(listeners.Config{ID: "tcp", Address: b.cfg.Listen})
		// AddListener binds the socket, so Address is the real port.
		if err := b.srv.AddListener(l); err != nil {
			return "", fmt.Errorf("mqtt broker: listen on %s: %w", b.cfg.Listen, err)
		}
		addr = l.Address()
	}
	if err := b.srv.Serve(); err != nil {
		return "", fmt.Errorf("mqtt broker: serve: %w", err)
	}
	b.started = true
	b.log.Info("mqtt broker listening", "addr", addr, "users", len(b.cfg.Users), "anonymous", len(b.cfg.Users) == 0 && b.cfg.AllowAnonymous)
	return addr, nil
}

// Close disconnects every client and stops the broker.
func (b *Broker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	close(b.done)
	return b.srv.Close()
}

// Done is closed when the broker is closed.
func (b *Broker) Done() <-chan struct{} { return b.done }

func (b *Broker) isClosed() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// Subscribe implements Bus through the broker's inline client.
func (b *Broker) Subscribe(filter string, fn func(topic string, payload []byte)) (func(), error) {
	if err := CheckFilter(filter); err != nil {
		return nil, err
	}
	if b.isClosed() {
		return nil, ErrClosed
	}
	id := int(b.nextID.Add(1))
	err := b.srv.Subscribe(filter, id, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		fn(pk.TopicName, pk.Payload)
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s: %w", filter, err)
	}
	var once sync.Once
	return func() {
		once.Do(func() { _ = b.srv.Unsubscribe(filter, id) })
	}, nil
}

// Publish implements Bus: it hands the message to every subscriber,
// inline ones before it returns.
func (b *Broker) Publish(ctx context.Context, topic string, payload []byte, retain bool) error {
	if err := CheckTopic(topic); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.isClosed() {
		return ErrClosed
	}
	if err := b.srv.Publish(topic, payload, retain, 0); err != nil {
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	return nil
}

// authHook checks credentials and the publish ACL.
type authHook struct {
	mochi.HookBase
	users     map[string]string
	acl       map[string][]string
	anonymous bool
}

// ID names the hook for mochi.
func (h *authHook) ID() string { return "gridlink-auth" }

// Provides tells mochi which events the hook handles.
func (h *authHook) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}

// OnConnectAuthenticate lets a client in with a known username and its
// password.
func (h *authHook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	if h.anonymous {
		return true
	}
	user := string(pk.Connect.Username)
	want, known := h.users[user]
	// Compare digests so that the time taken says nothing about the
	// password's length, and compare even for unknown users.
	got := sha256.Sum256(pk.Connect.Password)
	exp := sha256.Sum256([]byte(want))
	ok := subtle.ConstantTimeCompare(got[:], exp[:]) == 1 && known && pk.Connect.PasswordFlag
	if !ok {
		h.Log.Warn("mqtt client refused: bad username or password", "username", user, "client", cl.ID, "remote", cl.Net.Remote)
	}
	return ok
}

// OnACLCheck allows every read and the writes the user's ACL lists.
func (h *authHook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	if !write || h.anonymous {
		return true
	}
	user := string(cl.Properties.Username)
	filters, limited := h.acl[user]
	if !limited {
		return true
	}
	for _, f := range filters {
		if MatchTopic(f, topic) {
			return true
		}
	}
	h.Log.Warn("mqtt publish refused by acl", "username", user, "client", cl.ID, "topic", topic)
	return false
}
