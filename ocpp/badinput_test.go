package ocpp

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const heartbeat = `[2,"hb","Heartbeat",{}]`

// Each bad frame is answered with the CALLERROR OCPP-J 1.6 names for it,
// and the connection keeps working (a Heartbeat after each).
func TestBadInput(t *testing.T) {
	e := start(t, Config{MaxMessageBytes: 4096}, "CP-1")
	c := dialRaw(t, e, "CP-1")
	huge := `[2,"big","DataTransfer",{"vendorId":"x","data":"` + strings.Repeat("a", 10000) + `"}]`
	for _, tc := range []struct {
		name, frame, id, code string
	}{
		{"malformed JSON", `[2,"m1","Heartbeat",{`, "m1", "FormationViolation"},
		{"not a CALL array", `[2,"m2","Heartbeat"]`, "m2", "FormationViolation"},
		{"unknown action", `[2,"m3","FooBar",{}]`, "m3", "NotImplemented"},
		{"action of the other direction", `[2,"m4","Reset",{"type":"Hard"}]`, "m4", "NotSupported"},
		{"wrong type", `[2,"m5","StatusNotification",{"connectorId":"1","errorCode":"NoError","status":"Available"}]`, "m5", "TypeConstraintViolation"},
		{"bad dateTime", `[2,"m6","StartTransaction",{"connectorId":1,"idTag":"T","meterStart":0,"timestamp":"yesterday"}]`, "m6", "TypeConstraintViolation"},
		{"value outside enumeration", `[2,"m7","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Exploded"}]`, "m7", "PropertyConstraintViolation"},
		{"too long", `[2,"m8","Authorize",{"idTag":"123456789012345678901"}]`, "m8", "PropertyConstraintViolation"},
		{"missing field", `[2,"m9","Authorize",{}]`, "m9", "OccurrenceConstraintViolation"},
		{"huge message", huge, "big", "FormationViolation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, c.call(tc.frame), tc.id, tc.code)
			wantResult(t, c.call(heartbeat), "hb", nil)
		})
	}
	// Frames without a message id cannot be answered; the next answer is
	// the Heartbeat's.
	c.send(`{"not":"an array"}`)
	c.send(`[2,`)
	wantResult(t, c.call(heartbeat), "hb", nil)
	if !strings.Contains(e.logs.String(), "OCPP frame too large") {
		t.Error("large frame not logged")
	}
}

// Frames far beyond the limit end the connection (WebSocket 1009) rather
// than being read to the end.
func TestHardLimit(t *testing.T) {
	e := start(t, Config{MaxMessageBytes: 1024}, "CP-1")
	c := dialRaw(t, e, "CP-1")
	go func() {
		// The server hangs up mid-frame, so this write may fail.
		_ = c.conn.WriteMessage(websocket.TextMessage, []byte(`[2,"x","DataTransfer",{"vendorId":"x","data":"`+strings.Repeat("a", 2<<20)+`"}]`))
	}()
	_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, _, err := c.conn.ReadMessage(); err == nil {
		t.Fatal("connection survived a 2 MiB frame")
	}
	// The server still serves the charger: a new connection waits for the
	// old one's cleanup, so the old one's end is logged by then. (Its close
	// frame, 1009, may be lost to the TCP reset.)
	wantResult(t, dialRaw(t, e, "CP-1").call(heartbeat), "hb", nil)
	if !strings.Contains(e.logs.String(), "read limit exceeded") {
		t.Error("hard limit not logged")
	}
}

func TestEveryFrameLogged(t *testing.T) {
	e := start(t, Config{}, "CP-1")
	c := dialRaw(t, e, "CP-1")
	wantResult(t, c.call(`[2,"log-me","Heartbeat",{}]`), "log-me", nil)
	logs := e.logs.String()
	for _, want := range []string{`dir=in frame="[2,\"log-me\",\"Heartbeat\",{}]"`, `dir=out frame="[3,\"log-me\",{\"currentTime\":`} {
		if !strings.Contains(logs, want) {
			t.Errorf("debug log lacks %s", want)
		}
	}
}

// A StopTransaction for a transaction this central system never started is
// accepted and recorded; its start register comes from the transaction data.
func TestStopUnknownTransaction(t *testing.T) {
	e := start(t, Config{}, "CP-1")
	c := dialRaw(t, e, "CP-1")
	wantResult(t, c.call(`[2,"s1","StopTransaction",{"meterStop":5000,"timestamp":"2024-03-01T12:00:00Z","transactionId":4242,"reason":"Remote",`+
		`"transactionData":[{"timestamp":"2024-03-01T11:00:00Z","sampledValue":[{"value":"1000","context":"Transaction.Begin","measurand":"Energy.Active.Import.Register","unit":"Wh"}]},`+
		`{"timestamp":"2024-03-01T12:00:00Z","sampledValue":[{"value":"5","context":"Transaction.End","measurand":"Energy.Active.Import.Register","unit":"kWh"}]}]}]`), "s1", nil)
	s, ok := e.sessions.get("site-1", "CP-1", 4242)
	if !ok || !s.Start.IsZero() || s.MeterStart != 1000 || s.MeterStop != 5000 || s.EnergyWh != 4000 || s.Reason != "Remote" {
		t.Errorf("session %+v %v", s, ok)
	}
	if n := len(e.sink.find("site-1/CP-1", "ev_energy_register", "")); n != 2 {
		t.Errorf("%d register readings, want 2 (begin, end=stop)", n)
	}
	if !strings.Contains(e.logs.String(), "StopTransaction for an unknown transaction") {
		t.Error("unknown transaction not logged")
	}
	// An id beyond 2^53 survives ocppj's float64 parsing.
	wantResult(t, c.call(`[2,"s2","StopTransaction",{"meterStop":10,"timestamp":"2024-03-01T12:00:00Z","transactionId":9223372036854775807}]`), "s2", nil)
	if s, ok := e.sessions.get("site-1", "CP-1", 9223372036854775807); !ok || s.Reason != "Local" {
		t.Errorf("session of tx 2^63-1: %+v %v", s, ok)
	}
}

// A sink that cannot store makes the answer an InternalError, so that the
// charger sends the values again later; the connection stays.
func TestSinkFailure(t *testing.T) {
	e := start(t, Config{}, "CP-1")
	c := dialRaw(t, e, "CP-1")
	e.sink.setFail(true)
	mv := `[2,"mv","MeterValues",{"connectorId":1,"meterValue":[{"timestamp":"2024-03-01T12:00:00Z","sampledValue":[{"value":"10"}]}]}]`
	wantError(t, c.call(mv), "mv", "InternalError")
	e.sink.setFail(false)
	wantResult(t, c.call(mv), "mv", nil)
}

// A charger that reconnects replaces its old connection.
func TestReconnectReplaces(t *testing.T) {
	e := start(t, Config{}, "CP-1")
	old := dialRaw(t, e, "CP-1")
	wantResult(t, old.call(heartbeat), "hb", nil)
	fresh := dialRaw(t, e, "CP-1")
	_ = old.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, _, err := old.conn.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
		t.Fatalf("old connection: %v, want close 1008", err)
	}
	wantResult(t, fresh.call(heartbeat), "hb", nil)
	if got := e.cs.Connected(); len(got) != 1 || got[0] != "CP-1" {
		t.Errorf("connected %v", got)
	}
	// Commands reach the new connection.
	done := make(chan error, 1)
	go func() {
		_, err := e.cs.Reset(t.Context(), "CP-1", false)
		done <- err
	}()
	call := fresh.read()
	if str(call[2]) != "Reset" {
		t.Fatalf("got %s", joinRaw(call))
	}
	fresh.send(`[3,` + string(call[1]) + `,{"status":"Accepted"}]`)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestHandshakeRefusals(t *testing.T) {
	e := start(t, Config{}, "CP-1")
	d := websocket.Dialer{Subprotocols: []string{"ocpp2.0.1"}}
	_, resp, err := d.DialContext(t.Context(), e.url("CP-1"), basicAuth("CP-1", testPassword))
	if err == nil || resp == nil || resp.StatusCode != 400 {
		t.Errorf("ocpp2.0.1 only: %v %v", err, resp)
	}
	d = websocket.Dialer{Subprotocols: []string{"ocpp1.6"}}
	_, resp, err = d.DialContext(t.Context(), "ws://"+e.addr+"/other/CP-1", basicAuth("CP-1", testPassword))
	if err == nil || resp == nil || resp.StatusCode != 404 {
		t.Errorf("wrong path: %v %v", err, resp)
	}
}
