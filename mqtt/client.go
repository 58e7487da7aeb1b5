package mqtt

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
)

// ClientConfig configures a connection to an external broker.
type ClientConfig struct {
	// URL of the broker: tcp:// or mqtt:// (port 1883 by default), ssl://,
	// tls:// or mqtts:// (port 8883 by default). Credentials in the URL
	// (tcp://user:password@host) fill Username and Password when those
	// are empty.
	URL      string
	Username string
	Password string
	// ClientID defaults to "gridlink-" and random hex.
	ClientID string
	// TLS configures ssl:// and tls:// connections; nil means the system
	// roots and the URL's host name.
	TLS *tls.Config
}

// Client is a connection to an external MQTT broker through paho.golang.
// paho.golang speaks MQTT 5 only: mosquitto 1.6 and later (emonPi images
// since 2019) and Venus OS's FlashMQ are fine, brokers that speak only
// 3.1.1 are not supported. The Client reconnects by itself, with backoff,
// and subscribes again after each reconnect (it asks for no persistent
// session, so the broker forgets subscriptions with the connection).
//
// Overlapping filters on one Client may deliver a message once per
// matching filter, as the broker sends it.
//
// The reconnect loop is ours rather than autopaho's: autopaho pulls in
// golang.org/x/net, which is not among the project's modules.
type Client struct {
	cfg    ClientConfig
	u      *url.URL
	tls    *tls.Config
	id     string
	url    string // for messages, password redacted
	log    *slog.Logger
	ctx    context.Context // the client's lifetime
	stop   context.CancelFunc
	done   chan struct{}
	closed atomic.Bool

	connected atomic.Bool
	// background clients (Connect) keep trying after a refusal too.
	background bool
	// lastErr is the last failed connection attempt's error, nil once up.
	lastErr atomic.Pointer[error]
	// v3 is set when the broker answered CONNECT with an MQTT 3 CONNACK.
	v3 atomic.Bool

	// opMu orders SUBSCRIBE and UNSUBSCRIBE on the wire.
	opMu   sync.Mutex
	mu     sync.Mutex
	cli    *paho.Client // nil while disconnected
	subs   map[uint64]*clientSub
	refs   map[string]int // subscriptions per filter
	nextID uint64
}

type clientSub struct {
	filter string
	fn     func(topic string, payload []byte)
}

// opTimeout guards CONNECT, SUBSCRIBE and UNSUBSCRIBE.
const opTimeout = 30 * time.Second

// keepAlive is the MQTT keepalive asked for, in seconds.
const keepAlive = 30

// Dial connects to a broker. It returns once the first connection is up;
// an error when the broker refuses the credentials or the protocol
// version, when its TLS certificate is not trusted, or when ctx ends
// first (a broker that is down is retried until then). Later disconnects are repaired in the
// background until Close.
func Dial(ctx context.Context, cfg ClientConfig, log *slog.Logger) (*Client, error) {
	c, err := newClient(cfg, log)
	if err != nil {
		return nil, err
	}
	first := make(chan error, 1)
	go c.run(first)
	select {
	case err := <-first:
		if err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("mqtt client %s: %w", c.url, err)
		}
		return c, nil
	case <-ctx.Done():
		_ = c.Close()
		return nil, fmt.Errorf("mqtt client %s: no connection: %w", c.url, ctx.Err())
	}
}

// Connect returns a client at once and connects in the background,
// retrying until Close, refusals included (at the longest backoff, since
// an operator may fix the broker's accounts): a gateway must start and
// read its other devices while a broker it subscribes to is down.
// Subscriptions made meanwhile are sent once the connection is up; Err
// tells why it is not.
func Connect(cfg ClientConfig, log *slog.Logger) (*Client, error) {
	c, err := newClient(cfg, log)
	if err != nil {
		return nil, err
	}
	c.background = true
	go c.run(make(chan error, 1))
	return c, nil
}

// Err returns why the client is not connected: the last connection
// attempt's error, or nil while connected.
func (c *Client) Err() error {
	if c.connected.Load() {
		return nil
	}
	if e := c.lastErr.Load(); e != nil {
		return *e
	}
	return errors.New("not connected yet")
}

func newClient(cfg ClientConfig, log *slog.Logger) (*Client, error) {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	u, tlsCfg, err := brokerURL(cfg)
	if err != nil {
		return nil, err
	}
	if u.User != nil {
		// tcp://user:password@host, as mosquitto_pub -L takes it.
		if cfg.Username == "" {
			cfg.Username = u.User.Username()
		}
		if p, ok := u.User.Password(); ok && cfg.Password == "" {
			cfg.Password = p
		}
		u.User = nil
	}
	id := cfg.ClientID
	if id == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		id = "gridlink-" + hex.EncodeToString(b[:])
	}
	life, stop := context.WithCancel(context.Background())
	c := &Client{
		cfg:  cfg,
		u:    u,
		tls:  tlsCfg,
		id:   id,
		url:  u.Redacted(),
		log:  log.With("component", "mqtt-client", "broker", u.Redacted()),
		ctx:  life,
		stop: stop,
		done: make(chan struct{}),
		subs: map[uint64]*clientSub{},
		refs: map[string]int{},
	}
	return c, nil
}

// refusal is a CONNECT the broker answered with a no.
type refusal struct{ err error }

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// run connects, waits for the connection to end, and connects again,
// until Close. It reports the outcome of the first connection on first.
func (c *Client) run(first chan<- error) {
	defer close(c.done)
	everUp := false
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(backoff(attempt)):
			case <-c.ctx.Done():
				return
			}
		}
		cli, err := c.connect()
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			c.log.Warn("mqtt connect failed", "attempt", attempt+1, "err", err)
			c.lastErr.Store(&err)
			var r *refusal
			if errors.As(err, &r) && c.background {
				// Retrying at once would not heal it: wait the longest.
				attempt = max(attempt, 16)
			}
			if !everUp && errors.As(err, &r) && !c.background {
				// Wrong credentials or protocol do not heal by retrying.
				first <- err
				return
			}
			continue
		}
		if !everUp {
			everUp = true
			first <- nil
		}
		c.mu.Lock()
		c.cli = cli
		c.mu.Unlock()
		c.connected.Store(true)
		c.log.Info("mqtt connected")
		c.resubscribe(cli)
		select {
		case <-cli.Done():
		case <-c.ctx.Done():
			c.connected.Store(false)
			_ = cli.Disconnect(&paho.Disconnect{ReasonCode: 0})
			return
		}
		c.connected.Store(false)
		c.mu.Lock()
		c.cli = nil
		c.mu.Unlock()
		c.log.Warn("mqtt connection lost; reconnecting")
		attempt = 0 // the next try waits the shortest backoff
	}
}

// backoff is the wait before connection attempt n (n ≥ 1): 0.5 s
// doubling to 30 s, with jitter so that gateways do not reconnect in step.
func backoff(n int) time.Duration {
	d := 500 * time.Millisecond << min(n-1, 6)
	d = min(d, 30*time.Second)
	return d/2 + mrand.N(d/2+1)
}

// connect makes one connection attempt.
func (c *Client) connect() (*paho.Client, error) {
	ctx, cancel := context.WithTimeout(c.ctx, opTimeout)
	defer cancel()
	conn, err := c.dial(ctx)
	if err != nil {
		err = fmt.Errorf("dial %s: %w", c.u.Host, err)
		var cv *tls.CertificateVerificationError
		if errors.As(err, &cv) {
			// An untrusted certificate is configuration, not weather.
			return nil, &refusal{fmt.Errorf("the broker's TLS certificate is not trusted (set the CA): %w", err)}
		}
		return nil, err
	}
	cli := paho.NewClient(paho.ClientConfig{
		ClientID:          c.id,
		Conn:              conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){c.onPublish},
		OnClientError: func(err error) {
			c.log.Debug("mqtt connection error", "err", err)
		},
		OnServerDisconnect: func(d *paho.Disconnect) {
			c.log.Warn("mqtt broker disconnected us", "reason", d.ReasonCode)
		},
	})
	cp := &paho.Connect{
		ClientID:   c.id,
		KeepAlive:  keepAlive,
		CleanStart: true,
	}
	if c.cfg.Username != "" {
		cp.Username, cp.UsernameFlag = c.cfg.Username, true
	}
	if c.cfg.Password != "" {
		cp.Password, cp.PasswordFlag = []byte(c.cfg.Password), true
	}
	ca, err := cli.Connect(ctx, cp)
	switch {
	case c.v3.Load():
		return nil, &refusal{errors.New("the broker does not speak MQTT 5 (unsupported protocol version): gridlink's client (paho.golang) is MQTT 5 only; use mosquitto ≥ 1.6, or point the devices at the gateway's embedded broker")}
	case ca != nil && ca.ReasonCode >= 0x80:
		return nil, &refusal{connackError(ca)}
	case err != nil:
		return nil, fmt.Errorf("connect: %w", err)
	}
	return cli, nil
}

// connackError words a refused CONNACK.
func connackError(ca *paho.Connack) error {
	reason := ""
	if ca.Properties != nil && ca.Properties.ReasonString != "" {
		reason = ": " + ca.Properties.ReasonString
	}
	switch ca.ReasonCode {
	case 0x84:
		return fmt.Errorf("the broker refused MQTT 5 (unsupported protocol version, reason 0x84)%s: gridlink's client (paho.golang) is MQTT 5 only; use mosquitto ≥ 1.6, or point the devices at the gateway's embedded broker", reason)
	case 0x86, 0x87:
		return fmt.Errorf("the broker refused the username or password (reason %#x)%s", ca.ReasonCode, reason)
	}
	return fmt.Errorf("the broker refused the connection (reason %#x)%s", ca.ReasonCode, reason)
}

// dial opens the network connection and watches the first bytes the
// broker sends, to recognise one that answers in MQTT 3.
func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	var (
		conn net.Conn
		err  error
	)
	if c.tls != nil {
		d := tls.Dialer{Config: c.tls}
		conn, err = d.DialContext(ctx, "tcp", c.u.Host)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", c.u.Host)
	}
	if err != nil {
		return nil, err
	}
	c.v3.Store(false)
	// paho writes from several goroutines; tls.Conn is not safe for that.
	return packets.NewThreadSafeConn(&sniffConn{Conn: conn, v3: &c.v3}), nil
}

// brokerURL checks the URL and picks the TLS settings.
func brokerURL(cfg ClientConfig) (*url.URL, *tls.Config, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		// url's error quotes the URL, which may hold a password.
		return nil, nil, errors.New("mqtt broker url: want scheme://host[:port], e.g. tcp://192.168.1.10:1883")
	}
	if u.Host == "" {
		return nil, nil, fmt.Errorf("mqtt broker url %q: want scheme://host[:port], e.g. tcp://192.168.1.10:1883", u.Redacted())
	}
	var port string
	var tlsCfg *tls.Config
	switch strings.ToLower(u.Scheme) {
	case "tcp", "mqtt":
		port = "1883"
	case "ssl", "tls", "mqtts":
		port = "8883"
		tlsCfg = cfg.TLS
		if tlsCfg == nil {
			tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if tlsCfg.ServerName == "" {
			tlsCfg = tlsCfg.Clone()
			tlsCfg.ServerName = u.Hostname()
		}
	default:
		return nil, nil, fmt.Errorf("mqtt broker url %q: scheme %q: want tcp, mqtt, ssl, tls or mqtts", u.Redacted(), u.Scheme)
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	return u, tlsCfg, nil
}

// sniffConn records whether the first packet read is an MQTT 3 CONNACK
// (remaining length 2, no properties), which an MQTT 5 CONNACK never is.
type sniffConn struct {
	net.Conn
	v3   *atomic.Bool
	head []byte
	seen bool
}

// Read passes data through, looking at the first four bytes.
func (s *sniffConn) Read(p []byte) (int, error) {
	n, err := s.Conn.Read(p)
	if !s.seen {
		s.head = append(s.head, p[:min(n, 4-len(s.head))]...)
		if len(s.head) >= 2 {
			s.seen = len(s.head) == 4 || s.head[1] != 2
			if s.head[0] == 0x20 && s.head[1] == 2 && len(s.head) == 4 && s.head[3] != 0 {
				s.v3.Store(true)
			}
		}
	}
	return n, err
}

// Connected reports whether the connection is up now.
func (c *Client) Connected() bool { return c.connected.Load() }

// Done is closed when the client has shut down.
func (c *Client) Done() <-chan struct{} { return c.done }

// ErrNotConnected is returned by Publish while the connection is down.
var ErrNotConnected = errors.New("mqtt: not connected to the broker")

// current returns the live connection, or nil.
func (c *Client) current() *paho.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cli
}

// Close disconnects and stops reconnecting.
func (c *Client) Close() error {
	c.closed.Store(true)
	c.stop()
	<-c.done
	return nil
}

// Subscribe implements Bus. While the connection is down the subscription
// is recorded and made when it comes back.
func (c *Client) Subscribe(filter string, fn func(topic string, payload []byte)) (func(), error) {
	if err := CheckFilter(filter); err != nil {
		return nil, err
	}
	if c.closed.Load() {
		return nil, ErrClosed
	}
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	c.subs[id] = &clientSub{filter: filter, fn: fn}
	c.refs[filter]++
	c.mu.Unlock()

	remove := func() {
		c.opMu.Lock()
		defer c.opMu.Unlock()
		c.mu.Lock()
		delete(c.subs, id)
		c.refs[filter]--
		last := c.refs[filter] == 0
		if last {
			delete(c.refs, filter)
		}
		cli := c.cli
		c.mu.Unlock()
		if last && cli != nil {
			ctx, cancel := context.WithTimeout(c.ctx, opTimeout)
			defer cancel()
			if _, err := cli.Unsubscribe(ctx, &paho.Unsubscribe{Topics: []string{filter}}); err != nil && c.ctx.Err() == nil {
				c.log.Debug("mqtt unsubscribe failed", "filter", filter, "err", err)
			}
		}
	}
	if err := c.subscribeNow(filter); err != nil {
		remove()
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(remove) }, nil
}

// subscribeNow sends SUBSCRIBE if the connection is up. A refusal is an
// error; a connection lost meanwhile is not (resubscribe repairs it).
func (c *Client) subscribeNow(filter string) error {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	cli := c.current()
	if cli == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, opTimeout)
	defer cancel()
	sa, err := cli.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}})
	switch {
	case sa != nil && len(sa.Reasons) > 0 && sa.Reasons[0] >= 0x80:
		// paho returns the SUBACK with its error when the broker refused.
		return fmt.Errorf("the broker refused the subscription to %s (reason %#x)", filter, sa.Reasons[0])
	case err != nil:
		c.log.Warn("mqtt subscribe not acknowledged; retried on reconnect", "filter", filter, "err", err)
	}
	return nil
}

// resubscribe subscribes to every filter on a new connection.
func (c *Client) resubscribe(cli *paho.Client) {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	c.mu.Lock()
	opts := make([]paho.SubscribeOptions, 0, len(c.refs))
	for f := range c.refs {
		opts = append(opts, paho.SubscribeOptions{Topic: f, QoS: 1})
	}
	c.mu.Unlock()
	if len(opts) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, opTimeout)
	defer cancel()
	sa, err := cli.Subscribe(ctx, &paho.Subscribe{Subscriptions: opts})
	if sa == nil {
		// The connection broke; the next one subscribes again.
		c.log.Warn("mqtt resubscribe failed", "filters", len(opts), "err", err)
		return
	}
	for i, r := range sa.Reasons {
		if r >= 0x80 && i < len(opts) {
			c.log.Error("mqtt broker refused a subscription", "filter", opts[i].Topic, "reason", r)
		}
	}
	c.log.Debug("mqtt subscribed", "filters", len(opts))
}

// onPublish hands a message to every subscription whose filter matches.
func (c *Client) onPublish(pr paho.PublishReceived) (bool, error) {
	topic := pr.Packet.Topic
	c.mu.Lock()
	var fns []func(string, []byte)
	for _, s := range c.subs {
		if MatchTopic(s.filter, topic) {
			fns = append(fns, s.fn)
		}
	}
	c.mu.Unlock()
	for _, fn := range fns {
		fn(topic, pr.Packet.Payload)
	}
	return true, nil
}

// Publish implements Bus with QoS 1: it returns once the broker has the
// message. It fails at once while the connection is down.
func (c *Client) Publish(ctx context.Context, topic string, payload []byte, retain bool) error {
	if err := CheckTopic(topic); err != nil {
		return err
	}
	if c.closed.Load() {
		return ErrClosed
	}
	cli := c.current()
	if cli == nil {
		return fmt.Errorf("publish to %s: %w", topic, ErrNotConnected)
	}
	pr, err := cli.Publish(ctx, &paho.Publish{Topic: topic, Payload: payload, QoS: 1, Retain: retain})
	switch {
	case pr != nil && pr.ReasonCode >= 0x80:
		return fmt.Errorf("publish to %s: the broker refused it (reason %#x)", topic, pr.ReasonCode)
	case err != nil:
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	return nil
}
