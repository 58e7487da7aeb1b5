package ocpp

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/lorenzodonini/ocpp-go/ocpp"
	"github.com/lorenzodonini/ocpp-go/ocpp1.6/types"
	"github.com/lorenzodonini/ocpp-go/ocppj"
	"github.com/lorenzodonini/ocpp-go/ws"
)

// wsServer implements ocpp-go's ws.WsServer. ocpp-go's own server binds
// ":port" only, refuses a charger's reconnection while its old socket
// lingers, sets no read limit, and blocks its request dispatcher (all
// chargers) when one charger's send queue is full. This one binds the
// listener it is given, replaces the old connection, answers oversized and
// malformed frames with a CALLERROR, never blocks in Write, and logs every
// raw frame at debug level.
type wsServer struct {
	log          *slog.Logger
	prefix       string
	softLimit    int64
	hardLimit    int64
	idle         time.Duration
	writeWait    time.Duration
	authenticate func(r *http.Request, id string) error
	rewrite      func(id string, data []byte) []byte
	upgrader     websocket.Upgrader

	// Set by ocppj before serving (ocppj.Server.Start), read by the
	// connection goroutines started after.
	onMessage    func(ws.Channel, []byte) error
	onConnect    func(ws.Channel)
	onDisconnect func(ws.Channel)
	discMu       sync.Mutex // serialises onDisconnect; see cleanup
	checkClient  func(string, *http.Request) bool

	started chan struct{}
	errC    chan error

	mu      sync.Mutex
	ln      net.Listener
	srv     *http.Server
	conns   map[string]*wsConn
	stopped bool
	wg      sync.WaitGroup // one per registered connection
}

type wsOptions struct {
	log          *slog.Logger
	prefix       string
	softLimit    int64
	idle         time.Duration
	authenticate func(r *http.Request, id string) error
	rewrite      func(id string, data []byte) []byte
}

// sendQueue is how many frames may wait for one charger's socket. A charger
// sends one CALL at a time, so the queue only fills when its socket stalls.
const sendQueue = 64

func newWSServer(o wsOptions) *wsServer {
	s := &wsServer{
		log:       o.log,
		prefix:    o.prefix,
		softLimit: o.softLimit,
		// Frames above the soft limit are read and discarded so that
		// the CALL can be answered; beyond the hard limit the socket
		// is closed (1009) instead.
		hardLimit:    max(16*o.softLimit, 1<<20),
		idle:         o.idle,
		writeWait:    10 * time.Second,
		authenticate: o.authenticate,
		rewrite:      o.rewrite,
		started:      make(chan struct{}),
		conns:        map[string]*wsConn{},
	}
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		Subprotocols:     []string{types.V16Subprotocol},
	}
	return s
}

// setListener gives the server its listener, wrapped in TLS when a
// certificate is given. It must be called before Start.
func (s *wsServer) setListener(ln net.Listener, certFile, keyFile string) error {
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return fmt.Errorf("load TLS certificate %s: %w", certFile, err)
		}
		ln = tls.NewListener(ln, &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return nil
}

// Start serves the listener given to setListener; port and path are
// ignored (ocppj passes what ocpp16.CentralSystem.Start got).
func (s *wsServer) Start(_ int, _ string) {
	s.mu.Lock()
	srv, ln := s.srv, s.ln
	s.mu.Unlock()
	close(s.started)
	if srv == nil {
		s.log.Error("OCPP WebSocket server started without a listener")
		return
	}
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("OCPP WebSocket server stopped", "err", err)
	}
}

// Stop closes the listener and every connection, and waits for the
// connections' cleanup.
func (s *wsServer) Stop() {
	s.mu.Lock()
	s.stopped = true
	srv := s.srv
	conns := make([]*wsConn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
	for _, c := range conns {
		c.close(websocket.CloseGoingAway, "central system shutting down")
	}
	s.wg.Wait()
}

// StopConnection closes one charger's connection.
func (s *wsServer) StopConnection(id string, closeError websocket.CloseError) error {
	c := s.conn(id)
	if c == nil {
		return fmt.Errorf("no connection of charge point %q", id)
	}
	c.close(closeError.Code, closeError.Text)
	return nil
}

// Errors returns a channel that is never written: errors are logged.
func (s *wsServer) Errors() <-chan error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.errC == nil {
		s.errC = make(chan error)
	}
	return s.errC
}

func (s *wsServer) SetMessageHandler(h func(ws ws.Channel, data []byte) error) { s.onMessage = h }
func (s *wsServer) SetNewClientHandler(h func(ws ws.Channel))                  { s.onConnect = h }
func (s *wsServer) SetDisconnectedClientHandler(h func(ws ws.Channel))         { s.onDisconnect = h }
func (s *wsServer) SetCheckClientHandler(h func(id string, r *http.Request) bool) {
	s.checkClient = h
}

// SetTimeoutConfig takes the write timeout; the read side uses the idle
// timeout of Config.
func (s *wsServer) SetTimeoutConfig(c ws.ServerTimeoutConfig) {
	if c.WriteWait > 0 {
		s.writeWait = c.WriteWait
	}
}

// AddSupportedSubprotocol is called by ocpp16 with "ocpp1.6", which the
// upgrader already offers.
func (s *wsServer) AddSupportedSubprotocol(p string) {
	if !slices.Contains(s.upgrader.Subprotocols, p) {
		s.upgrader.Subprotocols = append(s.upgrader.Subprotocols, p)
	}
}

// SetBasicAuthHandler is not used: authentication needs the charge point
// id as well, see wsOptions.authenticate.
func (s *wsServer) SetBasicAuthHandler(func(username, password string) bool) {}

func (s *wsServer) SetCheckOriginHandler(h func(r *http.Request) bool) { s.upgrader.CheckOrigin = h }

// Addr is the bound address, or nil before setListener.
func (s *wsServer) Addr() *net.TCPAddr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	a, _ := s.ln.Addr().(*net.TCPAddr)
	return a
}

// Connections returns nil: ocpp-go's *ws.WebSocket cannot be built
// outside its package, and ocppj does not call this.
func (s *wsServer) Connections(string) *ws.WebSocket { return nil }

// Write queues a frame for a charger without blocking: ocppj calls it from
// the dispatcher goroutine that serves every charger.
func (s *wsServer) Write(id string, data []byte) error {
	c := s.conn(id)
	if c == nil {
		return fmt.Errorf("write to charge point %q: %w", id, ErrNotConnected)
	}
	return c.send(data)
}

// conn returns a charger's connection once ocppj knows it (onConnect has
// returned), or nil.
func (s *wsServer) conn(id string) *wsConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.conns[id]; c != nil && c.ready.Load() {
		return c
	}
	return nil
}

func (s *wsServer) connectedIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.conns))
	for id, c := range s.conns {
		if c.ready.Load() {
			ids = append(ids, id)
		}
	}
	return ids
}

// chargePointID takes the id from the URL path: the percent-decoded path
// element after the prefix. OCPP limits the identity to 48 characters.
func (s *wsServer) chargePointID(u *url.URL) (string, error) {
	raw := u.EscapedPath()
	if !strings.HasPrefix(raw, s.prefix) {
		return "", fmt.Errorf("path %q is not under %s", u.Path, s.prefix)
	}
	id, err := url.PathUnescape(strings.TrimPrefix(raw, s.prefix))
	switch {
	case err != nil:
		return "", fmt.Errorf("charge point id in path %q: %w", raw, err)
	case id == "":
		return "", errors.New("no charge point id in the path")
	case len(id) > 48 || strings.ContainsAny(id, "/") || !utf8.ValidString(id):
		return "", fmt.Errorf("charge point id %q: want at most 48 characters, no /", id)
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("charge point id %q: control character", id)
		}
	}
	return id, nil
}

// ServeHTTP is the WebSocket handshake: path, subprotocol, credentials,
// then the upgrade; it then reads the connection until it ends.
func (s *wsServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, err := s.chargePointID(r.URL)
	if err != nil {
		s.log.Warn("OCPP handshake refused", "remote", r.RemoteAddr, "reason", err.Error())
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		http.Error(w, "WebSocket upgrade required", http.StatusBadRequest)
		return
	}
	// Chargers must ask for ocpp1.6; one that asks for nothing is let in
	// (it costs nothing), one that asks only for others is not.
	if offered := websocket.Subprotocols(r); len(offered) > 0 && !slices.Contains(offered, types.V16Subprotocol) {
		s.log.Warn("OCPP handshake refused", "charge_point", id, "remote", r.RemoteAddr,
			"reason", "unsupported subprotocols", "offered", strings.Join(offered, ","))
		http.Error(w, "unsupported subprotocol, want ocpp1.6", http.StatusBadRequest)
		return
	}
	if err := s.authenticate(r, id); err != nil {
		s.log.Warn("OCPP handshake refused", "charge_point", id, "remote", r.RemoteAddr, "reason", err.Error())
		w.Header().Set("WWW-Authenticate", `Basic realm="gridlink OCPP", charset="UTF-8"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if s.checkClient != nil && !s.checkClient(id, r) {
		s.log.Warn("OCPP handshake refused", "charge_point", id, "remote", r.RemoteAddr, "reason", "client check")
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.log.Warn("OCPP WebSocket upgrade failed", "charge_point", id, "remote", r.RemoteAddr, "err", err)
		return
	}
	if websocket.Subprotocols(r) == nil {
		s.log.Warn("charge point asked for no subprotocol; assuming ocpp1.6", "charge_point", id)
	}
	c := &wsConn{
		id:         id,
		conn:       conn,
		tls:        r.TLS,
		out:        make(chan []byte, sendQueue),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
		done:       make(chan struct{}),
	}
	// A charger that reconnects while its old socket still looks alive
	// (typical after a network change) replaces it: the old connection
	// is closed and fully cleaned up before the new one is announced, so
	// that ocppj's per-charger state is not torn down under the new one.
	for {
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			_ = conn.Close()
			return
		}
		old := s.conns[id]
		if old == nil {
			s.conns[id] = c
			s.wg.Add(1)
			s.mu.Unlock()
			break
		}
		s.mu.Unlock()
		s.log.Info("charge point reconnected; closing its previous connection", "charge_point", id)
		old.close(websocket.ClosePolicyViolation, "replaced by a newer connection")
		<-old.done
	}
	go s.writeLoop(c)
	if s.onConnect != nil {
		s.onConnect(c)
	}
	c.ready.Store(true)
	s.readLoop(c)
}

func (s *wsServer) readLoop(c *wsConn) {
	defer s.cleanup(c)
	c.conn.SetReadLimit(s.hardLimit)
	extend := func() { _ = c.conn.SetReadDeadline(time.Now().Add(s.idle)) }
	c.conn.SetPingHandler(func(data string) error {
		extend()
		err := c.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(s.writeWait))
		if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil
			}
			return err
		}
		return nil
	})
	c.conn.SetPongHandler(func(string) error { extend(); return nil })
	for {
		extend()
		_, r, err := c.conn.NextReader()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) &&
				!errors.Is(err, net.ErrClosed) {
				s.log.Info("charge point connection ended", "charge_point", c.id, "reason", err.Error())
			}
			return
		}
		data, size, err := readBounded(r, s.softLimit)
		if err != nil {
			s.log.Warn("charge point connection ended", "charge_point", c.id, "reason", err.Error())
			return
		}
		if size > s.softLimit {
			s.log.Warn("OCPP frame too large", "charge_point", c.id, "bytes", size, "limit", s.softLimit)
			s.answerBroken(c, data, ocppj.FormatViolationV16,
				fmt.Sprintf("message of %d bytes exceeds the limit of %d bytes", size, s.softLimit))
			continue
		}
		if s.log.Enabled(context.Background(), slog.LevelDebug) {
			s.log.Debug("OCPP frame", "charge_point", c.id, "dir", "in", "frame", string(data))
		}
		// ocppj cannot answer JSON it cannot parse, since it cannot find
		// the message id; a readable prefix often holds it.
		if !json.Valid(data) {
			s.log.Warn("OCPP frame is not valid JSON", "charge_point", c.id, "frame", truncate(data, 200))
			s.answerBroken(c, data, ocppj.FormatViolationV16, "message is not valid JSON")
			continue
		}
		if s.rewrite != nil {
			data = s.rewrite(c.id, data)
		}
		if s.onMessage != nil {
			// ocppj answers what it refuses itself; the error is only
			// for the log.
			if err := s.onMessage(c, data); err != nil {
				s.log.Debug("OCPP message refused", "charge_point", c.id, "err", err)
			}
		}
	}
}

// answerBroken answers a CALL that cannot be handled with a CALLERROR, if
// the frame's start shows it is a CALL and gives its id.
func (s *wsServer) answerBroken(c *wsConn, prefix []byte, code ocpp.ErrorCode, desc string) {
	typ, id, ok := frameID(prefix)
	if !ok || typ != 2 {
		return
	}
	if err := c.send(callErrorFrame(id, string(code), desc)); err != nil {
		s.log.Warn("OCPP CALLERROR not sent", "charge_point", c.id, "err", err)
	}
}

func (s *wsServer) writeLoop(c *wsConn) {
	defer close(c.writerDone)
	for {
		select {
		case data := <-c.out:
			if s.log.Enabled(context.Background(), slog.LevelDebug) {
				s.log.Debug("OCPP frame", "charge_point", c.id, "dir", "out", "frame", string(data))
			}
			_ = c.conn.SetWriteDeadline(time.Now().Add(s.writeWait))
			if err := c.conn.WriteMessage(websocket.TextMessage, data); err != nil {
				s.log.Info("write to charge point failed; closing", "charge_point", c.id, "err", err)
				_ = c.conn.Close() // ends the read loop, which cleans up
				return
			}
		case <-c.closing:
			_ = c.conn.WriteControl(websocket.CloseMessage, c.closeMsg, time.Now().Add(s.writeWait))
			_ = c.conn.Close()
			return
		}
	}
}

// cleanup runs once per connection, after its read loop.
func (s *wsServer) cleanup(c *wsConn) {
	c.close(websocket.CloseNormalClosure, "")
	<-c.writerDone
	_ = c.conn.Close()
	if s.onDisconnect != nil {
		// One departure at a time. ocpp-go v0.19.0's dispatcher holds its
		// RWMutex for reading while it queues a client's deletion on a
		// 20-slot channel, and then takes the same mutex for writing to
		// clear the client's pending request; its pump needs the mutex for
		// reading to empty the channel. With many chargers leaving at once
		// (a network blip; 10,000 in the benchmark) a waiting writer stops
		// the pump and everything deadlocks. Serialised, a deletion never
		// waits on a full channel while a writer is queued.
		s.discMu.Lock()
		s.onDisconnect(c)
		s.discMu.Unlock()
	}
	// Only now free the slot: a replacing connection waits for done, and
	// a third one must not slip in before ocppj has forgotten this one.
	s.mu.Lock()
	if s.conns[c.id] == c {
		delete(s.conns, c.id)
	}
	s.mu.Unlock()
	close(c.done)
	s.wg.Done()
}

// wsConn is one charger's WebSocket; it implements ws.Channel.
type wsConn struct {
	id         string
	conn       *websocket.Conn
	tls        *tls.ConnectionState
	out        chan []byte
	ready      atomic.Bool // ocppj knows the connection
	closeOnce  sync.Once
	closeMsg   []byte // written before closing is closed
	closing    chan struct{}
	writerDone chan struct{}
	done       chan struct{} // closed after cleanup
}

func (c *wsConn) ID() string                               { return c.id }
func (c *wsConn) RemoteAddr() net.Addr                     { return c.conn.RemoteAddr() }
func (c *wsConn) TLSConnectionState() *tls.ConnectionState { return c.tls }

func (c *wsConn) close(code int, text string) {
	c.closeOnce.Do(func() {
		c.closeMsg = websocket.FormatCloseMessage(code, text)
		close(c.closing)
	})
}

var errConnClosing = errors.New("connection closing")

func (c *wsConn) send(data []byte) error {
	select {
	case <-c.closing:
		return fmt.Errorf("write to charge point %q: %w", c.id, errConnClosing)
	default:
	}
	select {
	case c.out <- data:
		return nil
	case <-c.closing:
		return fmt.Errorf("write to charge point %q: %w", c.id, errConnClosing)
	default:
		return fmt.Errorf("write to charge point %q: send queue full", c.id)
	}
}

// readBounded reads a frame of at most limit bytes. A longer frame is read
// to its end and discarded; its first bytes (enough for the message id) and
// full size are returned.
func readBounded(r io.Reader, limit int64) (data []byte, size int64, err error) {
	data, err = io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, 0, err
	}
	if int64(len(data)) <= limit {
		return data, int64(len(data)), nil
	}
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		return nil, 0, err
	}
	return data[:min(len(data), 512)], int64(len(data)) + n, nil
}

// frameID reads the message type and id from the start of an OCPP-J frame,
// which may be truncated or broken further on.
func frameID(prefix []byte) (typ int, id string, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(prefix))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('[') {
		return 0, "", false
	}
	t, err := dec.Token()
	if err != nil {
		return 0, "", false
	}
	n, isNum := t.(json.Number)
	if !isNum {
		return 0, "", false
	}
	switch n.String() {
	case "2":
		typ = 2
	case "3":
		typ = 3
	case "4":
		typ = 4
	default:
		return 0, "", false
	}
	t, err = dec.Token()
	if err != nil {
		return 0, "", false
	}
	id, isStr := t.(string)
	if !isStr || id == "" || len(id) > 36 {
		// OCPP-J message ids are at most 36 characters.
		return 0, "", false
	}
	return typ, id, true
}

func callErrorFrame(id, code, desc string) []byte {
	b, _ := json.Marshal([]any{4, id, code, desc, struct{}{}})
	return b
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}
