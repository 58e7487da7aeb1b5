package chargepoint

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/lorenzodonini/ocpp-go/ocpp"
	ocpp16 "github.com/lorenzodonini/ocpp-go/ocpp1.6"
	"github.com/lorenzodonini/ocpp-go/ocpp1.6/core"
	"github.com/lorenzodonini/ocpp-go/ocpp1.6/types"
	"github.com/lorenzodonini/ocpp-go/ws"
)

// hang is the hang guard of every wait; it never decides a result.
const hang = 60 * time.Second

// event is one request the central system received, in order.
type event struct {
	action string
	at     time.Time
	req    any
}

// recorder is an ocpp-go central system handler that records what it
// receives and answers like a permissive central system.
type recorder struct {
	heartbeat int                       // BootNotification interval
	authorize types.AuthorizationStatus // Authorize answer

	cs *centralSystem // set by the test, for requests to the charger

	mu      sync.Mutex
	events  []event
	nextTx  int
	changed chan struct{}
}

func newRecorder() *recorder {
	return &recorder{heartbeat: 60, authorize: types.AuthorizationStatusAccepted, nextTx: 1000, changed: make(chan struct{})}
}

func (r *recorder) add(action string, req any) {
	r.mu.Lock()
	r.events = append(r.events, event{action: action, at: time.Now(), req: req})
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// all returns the requests of an action.
func all[T any](r *recorder, action string) []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []T
	for _, e := range r.events {
		if e.action == action {
			out = append(out, e.req.(T))
		}
	}
	return out
}

func (r *recorder) count(action string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.action == action {
			n++
		}
	}
	return n
}

// wait blocks until cond holds (checked after every request).
func (r *recorder) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(hang)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("hang guard: still waiting for %s", what)
		}
	}
}

func (r *recorder) OnAuthorize(id string, req *core.AuthorizeRequest) (*core.AuthorizeConfirmation, error) {
	r.add("Authorize", req)
	return core.NewAuthorizationConfirmation(types.NewIdTagInfo(r.authorize)), nil
}

func (r *recorder) OnBootNotification(id string, req *core.BootNotificationRequest) (*core.BootNotificationConfirmation, error) {
	r.add("BootNotification", req)
	return core.NewBootNotificationConfirmation(types.NewDateTime(time.Now()), r.heartbeat, core.RegistrationStatusAccepted), nil
}

func (r *recorder) OnDataTransfer(id string, req *core.DataTransferRequest) (*core.DataTransferConfirmation, error) {
	r.add("DataTransfer", req)
	return core.NewDataTransferConfirmation(core.DataTransferStatusAccepted), nil
}

func (r *recorder) OnHeartbeat(id string, req *core.HeartbeatRequest) (*core.HeartbeatConfirmation, error) {
	r.add("Heartbeat", req)
	return core.NewHeartbeatConfirmation(types.NewDateTime(time.Now())), nil
}

func (r *recorder) OnMeterValues(id string, req *core.MeterValuesRequest) (*core.MeterValuesConfirmation, error) {
	r.add("MeterValues", req)
	return core.NewMeterValuesConfirmation(), nil
}

func (r *recorder) OnStatusNotification(id string, req *core.StatusNotificationRequest) (*core.StatusNotificationConfirmation, error) {
	r.add("StatusNotification", req)
	return core.NewStatusNotificationConfirmation(), nil
}

func (r *recorder) OnStartTransaction(id string, req *core.StartTransactionRequest) (*core.StartTransactionConfirmation, error) {
	r.mu.Lock()
	r.nextTx++
	tx := r.nextTx
	r.mu.Unlock()
	r.add("StartTransaction", req)
	return core.NewStartTransactionConfirmation(types.NewIdTagInfo(types.AuthorizationStatusAccepted), tx), nil
}

func (r *recorder) OnStopTransaction(id string, req *core.StopTransactionRequest) (*core.StopTransactionConfirmation, error) {
	r.add("StopTransaction", req)
	return core.NewStopTransactionConfirmation(), nil
}

// freePort finds a port for ocpp-go's server, which takes a port number.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// centralSystem is a running ocpp-go central system.
type centralSystem struct {
	ocpp16.CentralSystem
	once sync.Once
}

func (c *centralSystem) stop() { c.once.Do(c.Stop) }

// startCS starts ocpp-go's central system on port with handler r; srv may
// be nil (plain ws) or a prepared server (TLS, basic auth).
func startCS(t *testing.T, r *recorder, port int, srv *ws.Server) *centralSystem {
	t.Helper()
	if srv == nil {
		srv = ws.NewServer()
	}
	cs := &centralSystem{CentralSystem: ocpp16.NewCentralSystem(nil, srv)}
	cs.SetCoreHandler(r)
	go cs.Start(port, "/{ws}")
	t.Cleanup(cs.stop)
	return cs
}

// run starts cp.Run and stops it at the end of the test.
func run(t *testing.T, cp *ChargePoint) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- cp.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(hang):
			t.Errorf("hang guard: Run did not return")
		}
	})
}

// testConfig is a fast charger for tests.
func testConfig(port int, id string) Config {
	return Config{
		ID:                 id,
		URL:                fmt.Sprintf("ws://127.0.0.1:%d", port),
		MeterValueInterval: 100 * time.Millisecond,
		ReconnectMin:       20 * time.Millisecond,
		ReconnectMax:       200 * time.Millisecond,
		RegisterWh:         1052616.5,
		Seed:               7,
		Plan:               SessionPlan{},
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() || os.Getenv("CHARGEPOINT_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// await sends a central system request and waits for its answer.
func await[T any](t *testing.T, send func(cb func(T, error)) error) T {
	t.Helper()
	type res struct {
		v   T
		err error
	}
	ch := make(chan res, 1)
	if err := send(func(v T, err error) { ch <- res{v, err} }); err != nil {
		t.Fatalf("central system request: %v", err)
	}
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("central system request: %v", r.err)
		}
		return r.v
	case <-time.After(hang):
		t.Fatal("hang guard: no answer from the charge point")
	}
	panic("unreachable")
}

// sendAsync sends any request to the charger and waits for the answer.
func sendAsync(t *testing.T, r *recorder, id string, req ocpp.Request) (ocpp.Response, error) {
	t.Helper()
	type res struct {
		v   ocpp.Response
		err error
	}
	ch := make(chan res, 1)
	if err := r.cs.SendRequestAsync(id, req, func(v ocpp.Response, err error) { ch <- res{v, err} }); err != nil {
		return nil, err
	}
	select {
	case x := <-ch:
		return x.v, x.err
	case <-time.After(hang):
		t.Fatal("hang guard: no answer from the charge point")
	}
	return nil, nil
}

// waitUntil polls cond, for state the charger holds (not the CS).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hang)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("hang guard: still waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
