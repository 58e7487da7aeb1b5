package chargepoint

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// subprotocol is the WebSocket subprotocol of OCPP 1.6J.
const subprotocol = "ocpp1.6"

// maxFrame is the largest frame the charger reads; a central system has
// no reason to send more.
const maxFrame = 1 << 20

var (
	errConnClosed = errors.New("connection closed")
	errTimeout    = errors.New("no answer from the central system")
)

// callOutcome is the answer to a CALL: a CALLRESULT payload or a
// CALLERROR.
type callOutcome struct {
	raw json.RawMessage
	err error
}

// conn is one WebSocket connection to the central system.
type conn struct {
	ws      *websocket.Conn
	log     *slog.Logger
	timeout time.Duration
	ping    time.Duration // ping interval; <= 0: none

	wmu sync.Mutex // serialises writes, as gorilla/websocket requires

	mu      sync.Mutex
	waiting map[string]chan callOutcome

	closed chan struct{}
	once   sync.Once
}

// dial opens a connection to the central system.
func (cp *ChargePoint) dial(ctx context.Context) (*conn, error) {
	d := websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: 15 * time.Second,
		Subprotocols:     []string{subprotocol},
		TLSClientConfig:  cp.tls,
	}
	h := http.Header{}
	if cp.cfg.Password != "" {
		// OCPP security profiles 1 and 2: the charge point identity is
		// the user name.
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cp.cfg.ID+":"+cp.cfg.Password)))
	}
	ws, resp, err := d.DialContext(ctx, cp.url, h)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("connect to %s: %w (HTTP %s)", cp.url, err, resp.Status)
		}
		return nil, fmt.Errorf("connect to %s: %w", cp.url, err)
	}
	if ws.Subprotocol() != subprotocol {
		_ = ws.Close()
		return nil, fmt.Errorf("connect to %s: central system chose subprotocol %q, want %q", cp.url, ws.Subprotocol(), subprotocol)
	}
	ws.SetReadLimit(maxFrame)
	return &conn{
		ws:      ws,
		log:     cp.log,
		timeout: cp.cfg.CallTimeout,
		ping:    cp.cfg.PingInterval,
		waiting: map[string]chan callOutcome{},
		closed:  make(chan struct{}),
	}, nil
}

// close closes the connection; it is safe to call more than once.
func (c *conn) close() {
	c.once.Do(func() {
		close(c.closed)
		_ = c.ws.Close()
	})
}

// write sends one frame.
func (c *conn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.log.Debug("ocpp send", "frame", string(b))
	_ = c.ws.SetWriteDeadline(time.Now().Add(15 * time.Second))
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		c.close()
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}

// call sends a CALL and waits for its CALLRESULT or CALLERROR.
func (c *conn) call(ctx context.Context, id, action string, payload any) (json.RawMessage, error) {
	b, err := callFrame(id, action, payload)
	if err != nil {
		return nil, err
	}
	ch := make(chan callOutcome, 1)
	c.mu.Lock()
	c.waiting[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiting, id)
		c.mu.Unlock()
	}()
	if err := c.write(b); err != nil {
		return nil, fmt.Errorf("send %s: %w", action, err)
	}
	t := time.NewTimer(c.timeout)
	defer t.Stop()
	select {
	case o := <-ch:
		return o.raw, o.err
	case <-c.closed:
		return nil, fmt.Errorf("%s: %w", action, errConnClosed)
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, fmt.Errorf("%s after %v: %w", action, c.timeout, errTimeout)
	}
}

// pings sends WebSocket pings until the connection ends.
func (c *conn) pings() {
	if c.ping <= 0 {
		return
	}
	t := time.NewTicker(c.ping)
	defer t.Stop()
	for {
		select {
		case <-c.closed:
			return
		case <-t.C:
			// WriteControl may run concurrently with other writes.
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(15*time.Second)); err != nil {
				c.close()
				return
			}
		}
	}
}

// readLoop reads frames until the connection fails, answering the central
// system's CALLs with onCall and routing answers to waiting calls.
func (c *conn) readLoop(onCall func(f frame) (resp []byte, after func())) {
	defer c.close()
	alive := func() {
		if c.ping > 0 {
			_ = c.ws.SetReadDeadline(time.Now().Add(2*c.ping + 10*time.Second))
		}
	}
	c.ws.SetPongHandler(func(string) error { alive(); return nil })
	for {
		alive()
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			select {
			case <-c.closed:
			default:
				c.log.Info("ocpp connection lost", "err", err)
			}
			return
		}
		c.log.Debug("ocpp recv", "frame", string(b))
		f, err := parseFrame(b)
		if err != nil {
			var fe *frameError
			if errors.As(err, &fe) && fe.Call && fe.ID != "" {
				_ = c.write(errorFrame(fe.ID, &CallError{Code: fe.Code, Description: fe.Msg}))
			}
			c.log.Warn("ocpp bad frame from central system", "err", err, "frame", short(b))
			continue
		}
		switch f.Type {
		case typeCall:
			resp, after := onCall(f)
			if err := c.write(resp); err != nil {
				return
			}
			if after != nil {
				after()
			}
		case typeCallResult, typeCallError:
			o := callOutcome{raw: f.Payload}
			if f.Type == typeCallError {
				o = callOutcome{err: &CallError{Code: f.Code, Description: f.Desc}}
			}
			c.mu.Lock()
			ch := c.waiting[f.ID]
			c.mu.Unlock()
			if ch == nil {
				c.log.Warn("ocpp answer to no pending request", "id", f.ID)
				continue
			}
			select {
			case ch <- o:
			default:
			}
		}
	}
}
