package ocpp

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/internal/logbuf"
)

const testPassword = "0123456789abcdef0123"

// memRegistry is an in-memory Registry.
type memRegistry map[string]ChargePoint

func (m memRegistry) ChargePoint(_ context.Context, id string) (ChargePoint, bool, error) {
	cp, ok := m[id]
	return cp, ok, nil
}

func registered(ids ...string) memRegistry {
	m := memRegistry{}
	for _, id := range ids {
		m[id] = ChargePoint{ID: id, Site: "site-1", Asset: "site-1/" + id, PasswordSHA256: sha256.Sum256([]byte(testPassword))}
	}
	return m
}

// memSink is an in-memory Sink; fail makes Write fail.
type memSink struct {
	mu   sync.Mutex
	rs   []cim.Reading
	site []string
	fail bool
}

func (s *memSink) Write(_ context.Context, site string, rs []cim.Reading) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errors.New("disk full")
	}
	for range rs {
		s.site = append(s.site, site)
	}
	s.rs = append(s.rs, rs...)
	return nil
}

func (s *memSink) readings() []cim.Reading {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]cim.Reading(nil), s.rs...)
}

func (s *memSink) setFail(f bool) {
	s.mu.Lock()
	s.fail = f
	s.mu.Unlock()
}

// find returns the readings of one series.
func (s *memSink) find(asset, quantity string, phase cim.Phase) []cim.Reading {
	var out []cim.Reading
	for _, r := range s.readings() {
		if r.Asset == asset && r.Quantity == quantity && r.Phase == phase {
			out = append(out, r)
		}
	}
	return out
}

// memSessions is an in-memory Sessions store (with SessionLookup).
type memSessions struct {
	mu sync.Mutex
	m  map[string]Session
}

func sessionKey(site, cp string, tx int64) string { return fmt.Sprintf("%s|%s|%d", site, cp, tx) }

func (s *memSessions) PutSession(_ context.Context, x Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]Session{}
	}
	s.m[sessionKey(x.Site, x.ChargePoint, x.TransactionID)] = x
	return nil
}

func (s *memSessions) get(site, cp string, tx int64) (Session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.m[sessionKey(site, cp, tx)]
	return x, ok
}

// memTags accepts the tags it holds.
type memTags map[string]bool

func (m memTags) Authorize(_ context.Context, _, tag string) (bool, error) { return m[tag], nil }

type env struct {
	cs       *CentralSystem
	addr     string
	sink     *memSink
	sessions *memSessions
	logs     *logbuf.Buffer
}

func start(t *testing.T, cfg Config, ids ...string) *env {
	t.Helper()
	e := &env{sink: &memSink{}, sessions: &memSessions{}, logs: &logbuf.Buffer{}}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cs, err := New(cfg, Deps{
		Registry: registered(ids...), Sink: e.sink, Sessions: e.sessions,
		IDTags: memTags{"TAG-OK": true}, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := cs.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	e.cs, e.addr = cs, addr
	return e
}

func (e *env) url(id string) string { return "ws://" + e.addr + "/ocpp/" + id }

func basicAuth(user, pass string) http.Header {
	h := http.Header{}
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
	return h
}

// rawClient is a plain WebSocket client that speaks OCPP-J frames.
type rawClient struct {
	t    *testing.T
	conn *websocket.Conn
}

func dialRaw(t *testing.T, e *env, id string) *rawClient {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"ocpp1.6"}, HandshakeTimeout: 10 * time.Second}
	conn, resp, err := d.DialContext(t.Context(), e.url(id), basicAuth(id, testPassword))
	if err != nil {
		t.Fatalf("dial %s: %v", id, err)
	}
	if resp.Header.Get("Sec-WebSocket-Protocol") != "ocpp1.6" {
		t.Fatalf("negotiated subprotocol %q", resp.Header.Get("Sec-WebSocket-Protocol"))
	}
	t.Cleanup(func() { conn.Close() })
	return &rawClient{t: t, conn: conn}
}

func (c *rawClient) send(frame string) {
	c.t.Helper()
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// read returns the next frame as its JSON elements. The deadline is a hang
// guard only.
func (c *rawClient) read() []json.RawMessage {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, data, err := c.conn.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var arr []json.RawMessage
	if err := json.Unmarshal(data, &arr); err != nil {
		c.t.Fatalf("frame %s: %v", data, err)
	}
	return arr
}

// call sends a CALL frame and returns the answer to it.
func (c *rawClient) call(frame string) []json.RawMessage {
	c.t.Helper()
	c.send(frame)
	return c.read()
}

func str(raw json.RawMessage) string {
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

// wantResult checks a CALLRESULT for id and decodes its payload into v.
func wantResult(t *testing.T, arr []json.RawMessage, id string, v any) {
	t.Helper()
	if len(arr) != 3 || string(arr[0]) != "3" || str(arr[1]) != id {
		t.Fatalf("want CALLRESULT for %s, got %s", id, joinRaw(arr))
	}
	if v != nil {
		if err := json.Unmarshal(arr[2], v); err != nil {
			t.Fatalf("payload %s: %v", arr[2], err)
		}
	}
}

// wantError checks a CALLERROR for id with the given code.
func wantError(t *testing.T, arr []json.RawMessage, id, code string) {
	t.Helper()
	if len(arr) != 5 || string(arr[0]) != "4" || str(arr[1]) != id || str(arr[2]) != code {
		t.Fatalf("want CALLERROR %s for %s, got %s", code, id, joinRaw(arr))
	}
}

func joinRaw(arr []json.RawMessage) string {
	parts := make([]string, len(arr))
	for i, a := range arr {
		parts[i] = string(a)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func ms(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMilli()
}

func stateCode(t *testing.T, quantity, state string) float64 {
	t.Helper()
	q, _ := cim.Default().Lookup(quantity)
	for i, s := range q.States {
		if s == state {
			return float64(i)
		}
	}
	t.Fatalf("%s has no state %s", quantity, state)
	return 0
}

// one returns the only reading of a series.
func one(t *testing.T, e *env, asset, quantity string, phase cim.Phase) cim.Reading {
	t.Helper()
	rs := e.sink.find(asset, quantity, phase)
	if len(rs) != 1 {
		t.Fatalf("%s %s %s: %d readings, want 1: %+v", asset, quantity, phase, len(rs), e.sink.readings())
	}
	return rs[0]
}
