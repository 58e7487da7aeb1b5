//go:build !edge

package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gridlink/gridlink/chargepoint"
)

// switchProxy forwards TCP connections to a backend that a test can change,
// as a load balancer in front of several platform nodes does. With no
// backend it refuses connections.
type switchProxy struct {
	ln      net.Listener
	mu      sync.Mutex
	backend string
	conns   map[net.Conn]bool
}

func newSwitchProxy(t *testing.T) *switchProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{ln: ln, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *switchProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		backend := p.backend
		p.mu.Unlock()
		if backend == "" {
			c.Close()
			continue
		}
		b, err := net.Dial("tcp", backend)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[b] = true, true
		p.mu.Unlock()
		go func() { io.Copy(b, c); b.Close(); c.Close() }()
		go func() { io.Copy(c, b); b.Close(); c.Close() }()
	}
}

// route sends new connections to backend ("" refuses them).
func (p *switchProxy) route(backend string) {
	p.mu.Lock()
	p.backend = backend
	p.mu.Unlock()
}

// cut closes every forwarded connection, as a node's crash does.
func (p *switchProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// TestChargerMovesToAnotherNode runs two platform nodes on one PostgreSQL
// database behind a switching proxy. A charger starts a session on node A;
// node A is killed mid-session; while no node answers the charger queues its
// meter values; it then reconnects to node B and replays them with their
// original times, and stops the session there. The platform must hold one
// session with its start from A and its stop from B, and every meter value
// once with its value — nothing lost, nothing doubled.
func TestChargerMovesToAnotherNode(t *testing.T) {
	db := testPostgresDB(t)
	dir := t.TempDir()
	siteDir := filepath.Join(dir, "sites")
	os.MkdirAll(siteDir, 0o755)
	os.WriteFile(filepath.Join(siteDir, "s.yaml"), []byte("site: {id: bristol, name: Bristol, country: GB, timezone: Europe/London}\nassets:\n  - {id: evse-07, type: charging_point, make: Wallbox, model: Pulsar Plus}\n"), 0o644)
	ocppA, ocppB := freeAddr(t), freeAddr(t)
	nodeA := startServer(t, "--data", filepath.Join(dir, "a"), "--store", db, "--sites", siteDir, "--ocpp-listen", ocppA)
	key := nodeA.key
	nodeB := startServer(t, "--data", filepath.Join(dir, "b"), "--store", db, "--sites", siteDir, "--ocpp-listen", ocppB)
	const password = "node-moving-charger-01"
	if code := call(t, "POST", nodeA.url+"/api/v1/sites/bristol/chargepoints", key, map[string]string{"id": "evse-07", "password": password}, nil); code != http.StatusOK {
		t.Fatalf("register charge point: %d", code)
	}
	if code := call(t, "POST", nodeA.url+"/api/v1/sites/bristol/idtags", key, map[string]string{"tag": "CAFE0007"}, nil); code != http.StatusOK {
		t.Fatalf("add id tag: %d", code)
	}

	proxy := newSwitchProxy(t)
	proxy.route(ocppA)
	cp, err := chargepoint.New(chargepoint.Config{
		ID: "evse-07", URL: "ws://" + proxy.ln.Addr().String() + "/ocpp", Password: password, Seed: 11,
		MeterValueInterval: 100 * time.Millisecond, HeartbeatInterval: time.Second,
		IDTags:       []string{"CAFE0007"},
		Plan:         chargepoint.SessionPlan{{After: 200 * time.Millisecond, Duration: 6 * time.Second}},
		Speed:        60,
		ReconnectMin: 100 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
		CallTimeout: 2 * time.Second,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- cp.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitFor(t, 20*time.Second, "a session on node A with meter values", func() bool {
		return len(cp.Transactions()) == 1 && len(cp.Sent()) > 10
	})
	// Node A dies; for a second no node answers; then the balancer sends the
	// charger to node B.
	proxy.route("")
	nodeA.cmd.Process.Kill()
	<-nodeA.exited
	proxy.cut()
	time.Sleep(time.Second)
	if cp.Online() {
		t.Fatal("the charger still thinks it is online after node A died")
	}
	proxy.route(ocppB)

	waitFor(t, 30*time.Second, "the session to end on node B", func() bool {
		txs := cp.Transactions()
		return len(txs) == 1 && !txs[0].Stop.IsZero() && cp.Queued() == 0
	})
	cancel()
	<-done
	done <- nil // let the deferred wait return

	tx := cp.Transactions()[0]
	sent := cp.Sent()
	queued := 0
	for _, mv := range sent {
		if mv.Queued {
			queued++
		}
	}
	if queued == 0 {
		t.Errorf("no meter value waited in the charger's queue; the outage proved nothing")
	}

	var sessions struct {
		Sessions []struct {
			TransactionID int64   `json:"transaction_id"`
			EnergyWh      float64 `json:"energy_wh"`
			Running       bool    `json:"running"`
			IDTag         string  `json:"id_tag"`
		}
	}
	if code := call(t, "GET", nodeB.url+"/api/v1/sites/bristol/sessions", key, nil, &sessions); code != http.StatusOK {
		t.Fatalf("sessions: %d", code)
	}
	if len(sessions.Sessions) != 1 {
		t.Fatalf("%d sessions, want 1: %+v", len(sessions.Sessions), sessions.Sessions)
	}
	s := sessions.Sessions[0]
	if s.TransactionID != tx.ID || s.Running || s.IDTag != "CAFE0007" || tx.MeterStop == nil || s.EnergyWh != float64(*tx.MeterStop-tx.MeterStart) {
		t.Errorf("session %+v, charger's transaction %+v", s, tx)
	}

	checked := checkMeterValues(t, nodeB.url, key, "bristol", sent)
	// Nothing doubled: the platform holds exactly the values sent (the
	// same value at the same time is one reading) plus the state readings
	// of StatusNotification.
	distinct := map[string]bool{}
	for _, mv := range sent {
		if mv.Quantity != "" {
			distinct[meterValueAsset(mv)+"|"+mv.Quantity+"|"+mv.CIMPhase.String()+"|"+mv.Time.UTC().Format(time.RFC3339Nano)] = true
		}
	}
	held, lastSessionWh := 0, -1.0
	for _, r := range platformReadings(t, nodeB.url, key, "bristol", tx.Start.Add(-time.Minute), time.Now().Add(time.Minute)) {
		switch r.Quantity {
		case "ev_session_state", "ev_error_code":
		case "ev_session_energy": // the platform's own: register − meterStart
			lastSessionWh = r.Value
		default:
			held++
			if !distinct[r.Asset+"|"+r.Quantity+"|"+r.Phase.String()+"|"+time.UnixMilli(r.Time).UTC().Format(time.RFC3339Nano)] {
				t.Errorf("the platform holds a reading the charger did not send: %+v", r)
			}
		}
	}
	if held != len(distinct) {
		t.Errorf("the platform holds %d meter readings, the charger sent %d distinct ones", held, len(distinct))
	}
	if lastSessionWh != s.EnergyWh {
		t.Errorf("the last ev_session_energy is %v Wh, the session's energy %v Wh", lastSessionWh, s.EnergyWh)
	}
	checkSessionMeterValues(t, nodeB.url, key, "bristol", "evse-07", tx.ID, sent)
	t.Logf("session %d moved from node A to node B: %d meter values checked (%d queued while offline), %d readings held, %.0f Wh",
		tx.ID, checked, queued, held, s.EnergyWh)
}
