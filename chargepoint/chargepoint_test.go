package chargepoint

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lorenzodonini/ocpp-go/ocpp"
	"github.com/lorenzodonini/ocpp-go/ocpp1.6/core"
	"github.com/lorenzodonini/ocpp-go/ocpp1.6/remotetrigger"
	"github.com/lorenzodonini/ocpp-go/ocpp1.6/reservation"
	"github.com/lorenzodonini/ocpp-go/ocppj"
	"github.com/lorenzodonini/ocpp-go/ws"
)

// sample is one sampled value as the central system received it.
type sample struct {
	tx                                          int64
	t                                           time.Time
	measurand, phase, unit, context, value, loc string
}

func (s sample) key() string { return fmt.Sprint(s.t.UnixMilli(), s.measurand, s.phase, s.context) }

// received flattens the MeterValues the central system got, dropping a
// repeat of a message the charger re-sent after a lost answer.
func received(r *recorder) []sample {
	var out []sample
	seen := map[string]bool{}
	for _, req := range all[*core.MeterValuesRequest](r, "MeterValues") {
		var tx int64
		if req.TransactionId != nil {
			tx = int64(*req.TransactionId)
		}
		for _, mv := range req.MeterValue {
			for _, sv := range mv.SampledValue {
				s := sample{tx, mv.Timestamp.Time.UTC(), string(sv.Measurand), string(sv.Phase), string(sv.Unit), string(sv.Context), sv.Value, string(sv.Location)}
				if !seen[s.key()] {
					seen[s.key()] = true
					out = append(out, s)
				}
			}
		}
	}
	return out
}

// sentSamples is the charger's truth of MeterValues as samples.
func sentSamples(cp *ChargePoint) []sample {
	var out []sample
	for _, m := range cp.Sent() {
		if m.Message == "MeterValues" {
			out = append(out, sample{m.TransactionID, m.Time, m.Measurand, m.Phase, m.Unit, m.Context, m.Value, m.Location})
		}
	}
	return out
}

// checkTruth: what the central system holds is exactly what the charger
// says it sent, in order, with the same times.
func checkTruth(t *testing.T, r *recorder, cp *ChargePoint) []sample {
	t.Helper()
	got, want := received(r), sentSamples(cp)
	if len(got) != len(want) {
		t.Fatalf("central system holds %d sampled values, charger sent %d", len(got), len(want))
	}
	for i := range got {
		if !got[i].t.Equal(want[i].t) || got[i].tx != want[i].tx || got[i].measurand != want[i].measurand ||
			got[i].phase != want[i].phase || got[i].unit != want[i].unit || got[i].value != want[i].value || got[i].context != want[i].context {
			t.Fatalf("sampled value %d: central system holds %+v, charger sent %+v", i, got[i], want[i])
		}
	}
	return got
}

// checkRegister: the energy register only grows, and each sample carries
// the right units and phases.
func checkSamples(t *testing.T, s []sample, phases int) {
	t.Helper()
	last := -1.0
	var lastT time.Time
	for _, v := range s {
		want := map[string]string{"Energy.Active.Import.Register": "Wh", "Power.Active.Import": "W", "Current.Import": "A", "Voltage": "V", "SoC": "Percent"}[v.measurand]
		if want == "" || v.unit != want {
			t.Errorf("%s at %v: unit %q, want %q", v.measurand, v.t, v.unit, want)
		}
		switch v.measurand {
		case "Energy.Active.Import.Register":
			x, err := strconv.ParseFloat(v.value, 64)
			if err != nil {
				t.Fatalf("register %q: %v", v.value, err)
			}
			if x <= last {
				t.Errorf("register at %v is %g, not above the previous %g", v.t, x, last)
			}
			if v.t.Before(lastT) {
				t.Errorf("sample at %v comes after one at %v", v.t, lastT)
			}
			last, lastT = x, v.t
		case "Current.Import":
			if !slices.Contains([]string{"L1", "L2", "L3"}[:phases], v.phase) {
				t.Errorf("current phase %q", v.phase)
			}
		case "Voltage":
			if !slices.Contains([]string{"L1-N", "L2-N", "L3-N"}[:phases], v.phase) {
				t.Errorf("voltage phase %q", v.phase)
			}
		}
	}
	if last < 0 {
		t.Error("no energy register sent")
	}
}

func TestBootHeartbeatStatus(t *testing.T) {
	port := freePort(t)
	rec := newRecorder()
	rec.heartbeat = 2
	// The server drops a client silent for a second; the charger's
	// WebSocket pings keep it between heartbeats, so it boots only once.
	srv := ws.NewServer()
	srv.SetTimeoutConfig(ws.ServerTimeoutConfig{WriteWait: 10 * time.Second, PingWait: time.Second})
	rec.cs = startCS(t, rec, port, srv)
	cfg := testConfig(port, "CP-BOOT")
	cfg.Connectors = 2
	cfg.PingInterval = 100 * time.Millisecond
	cp, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	run(t, cp)
	rec.wait(t, "two heartbeats", func() bool { return rec.count("Heartbeat") >= 2 })
	boots := all[*core.BootNotificationRequest](rec, "BootNotification")
	if len(boots) != 1 || boots[0].ChargePointVendor != "Wall Box Chargers" || boots[0].ChargePointModel == "" {
		t.Fatalf("boots %+v", boots)
	}
	rec.wait(t, "status of connectors 0..2", func() bool { return rec.count("StatusNotification") >= 3 })
	st := all[*core.StatusNotificationRequest](rec, "StatusNotification")
	for i, s := range st[:3] {
		if s.ConnectorId != i || s.Status != core.ChargePointStatusAvailable || s.ErrorCode != core.NoError {
			t.Errorf("status %d: %+v", i, s)
		}
	}
	// The interval the central system returned is in force.
	conf := await(t, func(cb func(*core.GetConfigurationConfirmation, error)) error {
		return rec.cs.GetConfiguration("CP-BOOT", cb, []string{"HeartbeatInterval", "NoSuchKey"})
	})
	if len(conf.ConfigurationKey) != 1 || *conf.ConfigurationKey[0].Value != "2" || !slices.Equal(conf.UnknownKey, []string{"NoSuchKey"}) {
		t.Errorf("GetConfiguration: %+v", conf)
	}
}

func TestScriptedSession(t *testing.T) {
	port := freePort(t)
	rec := newRecorder()
	startCS(t, rec, port, nil)
	cfg := testConfig(port, "CP-SESSION")
	cfg.SoC = true
	// The EV arrives once the charger is online: offline, a charger
	// authorises locally and sends no Preparing status, which is right but
	// not what this test looks at.
	cfg.Plan = SessionPlan{{After: 1500 * time.Millisecond, Duration: 1200 * time.Millisecond, IDTag: "TAG-A"}}
	cp, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	run(t, cp)
	rec.wait(t, "session end", func() bool {
		st := all[*core.StatusNotificationRequest](rec, "StatusNotification")
		return rec.count("StopTransaction") == 1 && len(st) > 0 && st[len(st)-1].Status == core.ChargePointStatusAvailable
	})

	if a := all[*core.AuthorizeRequest](rec, "Authorize"); len(a) != 1 || a[0].IdTag != "TAG-A" {
		t.Errorf("authorize: %+v", a)
	}
	start := all[*core.StartTransactionRequest](rec, "StartTransaction")[0]
	stop := all[*core.StopTransactionRequest](rec, "StopTransaction")[0]
	if start.MeterStart != 1052616 || start.IdTag != "TAG-A" || start.ConnectorId != 1 {
		t.Errorf("start: %+v", start)
	}
	if stop.TransactionId != 1001 || stop.MeterStop < start.MeterStart || stop.Reason != core.ReasonEVDisconnected || len(stop.TransactionData) != 2 {
		t.Errorf("stop: %+v", stop)
	}
	var statuses []core.ChargePointStatus
	for _, s := range all[*core.StatusNotificationRequest](rec, "StatusNotification") {
		if s.ConnectorId == 1 {
			statuses = append(statuses, s.Status)
		}
	}
	// The session may start before the boot's status report: the first
	// Available may be missing and a status may repeat.
	statuses = slices.Compact(statuses)
	if statuses[0] == "Available" {
		statuses = statuses[1:]
	}
	wantSt := []core.ChargePointStatus{"Preparing", "Charging", "Finishing", "Available"}
	if !slices.Equal(statuses, wantSt) {
		t.Errorf("statuses %v, want %v", statuses, wantSt)
	}

	got := checkTruth(t, rec, cp)
	if len(got) == 0 {
		t.Fatal("no meter values")
	}
	checkSamples(t, got, 3)
	for _, s := range got {
		if s.tx != 1001 || s.context != "Sample.Periodic" {
			t.Fatalf("sample %+v: want transaction 1001, Sample.Periodic", s)
		}
	}
	var last float64
	for _, s := range got {
		if s.measurand == "Energy.Active.Import.Register" {
			last, _ = strconv.ParseFloat(s.value, 64)
		}
	}
	if float64(stop.MeterStop) < last-1 {
		t.Errorf("meterStop %d below the last register %g", stop.MeterStop, last)
	}

	// The truth also holds the transaction and maps to CIM quantities.
	txs := cp.Transactions()
	if len(txs) != 1 || txs[0].ID != 1001 || txs[0].MeterStop == nil || *txs[0].MeterStop != int64(stop.MeterStop) || txs[0].Reason != "EVDisconnected" {
		t.Errorf("transactions: %+v", txs)
	}
	for _, m := range cp.Sent() {
		if m.Quantity == "" {
			t.Errorf("no CIM quantity for %+v", m)
		}
		if m.Measurand == "Energy.Active.Import.Register" && m.Quantity != "ev_energy_register" {
			t.Errorf("register maps to %s", m.Quantity)
		}
	}

	// TruthHandler serves the same.
	srv := httptest.NewServer(cp.TruthHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "?transactionId=1001")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		ChargePoint  string
		Asset        string
		MeterValues  []MeterValue
		Transactions []Transaction
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.Asset != "CP-SESSION" {
		t.Errorf("truth handler: asset %q, want the id when Config.Asset is not set", doc.Asset)
	}
	if doc.ChargePoint != "CP-SESSION" || len(doc.MeterValues) != len(cp.Sent()) || len(doc.Transactions) != 1 {
		t.Errorf("truth handler: %s, %d values (want %d), %d transactions", doc.ChargePoint, len(doc.MeterValues), len(cp.Sent()), len(doc.Transactions))
	}
	if !doc.MeterValues[0].Time.Equal(cp.Sent()[0].Time) {
		t.Errorf("truth handler time %v, want %v", doc.MeterValues[0].Time, cp.Sent()[0].Time)
	}
	bad, err := http.Get(srv.URL + "?transactionId=x")
	if err != nil {
		t.Fatal(err)
	}
	bad.Body.Close()
	if bad.StatusCode != http.StatusBadRequest {
		t.Errorf("bad query: %s", bad.Status)
	}
}

// offlineSession runs a session until stopped and returns the charger.
func offlineSession(t *testing.T, rec *recorder, port int, id string) *ChargePoint {
	cfg := testConfig(port, id)
	cfg.Plan = SessionPlan{{}} // until the central system stops it
	cp, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	run(t, cp)
	rec.wait(t, "three MeterValues", func() bool { return rec.count("MeterValues") >= 3 })
	return cp
}

func TestOfflineQueueReplay(t *testing.T) {
	port := freePort(t)
	rec := newRecorder()
	rec.cs = startCS(t, rec, port, nil)
	cp := offlineSession(t, rec, port, "CP-OFFLINE")

	cp.GoOffline(time.Hour)
	waitUntil(t, "five queued messages", func() bool { return !cp.Online() && cp.Queued() >= 5 })
	before := len(received(rec))
	cp.GoOnline()
	rec.wait(t, "second boot and replay", func() bool {
		return rec.count("BootNotification") == 2 && len(received(rec)) >= before+5*8
	})
	await(t, func(cb func(*core.RemoteStopTransactionConfirmation, error)) error {
		return rec.cs.RemoteStopTransaction("CP-OFFLINE", cb, 1001)
	})
	rec.wait(t, "StopTransaction", func() bool { return rec.count("StopTransaction") == 1 })
	if s := all[*core.StopTransactionRequest](rec, "StopTransaction")[0]; s.Reason != core.ReasonRemote || s.TransactionId != 1001 {
		t.Errorf("stop: %+v", s)
	}

	got := checkTruth(t, rec, cp)
	checkSamples(t, got, 3)
	// The queued values kept their original times: earlier than the
	// second boot, though delivered after it.
	var boot2 time.Time
	rec.mu.Lock()
	n, firstAfter := 0, -1
	for i, e := range rec.events {
		if e.action == "BootNotification" {
			if n++; n == 2 {
				boot2 = e.at
				firstAfter = i
			}
		}
	}
	evs := slices.Clone(rec.events)
	rec.mu.Unlock()
	queued := 0
	for _, m := range cp.Sent() {
		if m.Queued && m.Message == "MeterValues" {
			queued++
			if !m.Time.Before(boot2) {
				t.Errorf("queued value at %v is not older than the reconnect at %v", m.Time, boot2)
			}
		}
	}
	if queued < 5*8 {
		t.Errorf("%d queued values delivered, want at least 40", queued)
	}
	// Replayed after the second boot, all MeterValues came before any
	// other message of the session.
	for _, e := range evs[firstAfter+1:] {
		if e.action == "MeterValues" {
			break
		}
		if e.action != "StatusNotification" {
			t.Errorf("%s before the replayed MeterValues", e.action)
		}
	}
}

func TestCentralSystemRestart(t *testing.T) {
	port := freePort(t)
	rec1 := newRecorder()
	cs1 := startCS(t, rec1, port, nil)
	cp := offlineSession(t, rec1, port, "CP-RESTART")

	cs1.stop()
	waitUntil(t, "queued messages while the central system is down", func() bool { return !cp.Online() && cp.Queued() >= 3 })
	rec2 := newRecorder()
	startCS(t, rec2, port, nil)
	rec2.wait(t, "replay to the new central system", func() bool {
		return rec2.count("BootNotification") == 1 && rec2.count("MeterValues") >= 5
	})
	boot := rec2.events[0].at
	old := 0
	for _, s := range received(rec2) {
		if s.tx != 1001 {
			t.Fatalf("replayed sample of transaction %d, want 1001", s.tx)
		}
		if s.t.Before(boot) {
			old++
		}
	}
	if old < 3 {
		t.Errorf("%d replayed samples older than the new boot, want at least 3", old)
	}
	// A message in flight when the central system went down is sent
	// again (at least once); the platform drops the repeat.
	var both []sample
	seen := map[string]bool{}
	for _, s := range append(received(rec1), received(rec2)...) {
		if !seen[s.key()] {
			seen[s.key()] = true
			both = append(both, s)
		}
	}
	checkSamples(t, both, 3)
}

func TestCommands(t *testing.T) {
	port := freePort(t)
	rec := newRecorder()
	rec.cs = startCS(t, rec, port, nil)
	const id = "CP-CMD"
	cp, err := New(testConfig(port, id), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	run(t, cp)
	rec.wait(t, "boot", func() bool { return rec.count("StatusNotification") >= 2 })

	change := func(key, value string) core.ConfigurationStatus {
		return await(t, func(cb func(*core.ChangeConfigurationConfirmation, error)) error {
			return rec.cs.ChangeConfiguration(id, cb, key, value)
		}).Status
	}
	for _, c := range []struct {
		key, value string
		want       core.ConfigurationStatus
	}{
		{"MeterValuesSampledData", "Energy.Active.Import.Register,Current.Import.L2", core.ConfigurationStatusAccepted},
		{"MeterValuesSampledData", "Energy.Active.Import.Register,Bogus", core.ConfigurationStatusRejected},
		{"MeterValueSampleInterval", "0.05", core.ConfigurationStatusAccepted},
		{"MeterValueSampleInterval", "-1", core.ConfigurationStatusRejected},
		{"HeartbeatInterval", "0", core.ConfigurationStatusRejected},
		{"HeartbeatInterval", "30", core.ConfigurationStatusAccepted},
		{"NumberOfConnectors", "4", core.ConfigurationStatusRejected},
		{"NoSuchKey", "1", core.ConfigurationStatusNotSupported},
	} {
		if got := change(c.key, c.value); got != c.want {
			t.Errorf("ChangeConfiguration %s=%s: %s, want %s", c.key, c.value, got, c.want)
		}
	}
	conf := await(t, func(cb func(*core.GetConfigurationConfirmation, error)) error {
		return rec.cs.GetConfiguration(id, cb, nil)
	})
	vals := map[string]string{}
	for _, k := range conf.ConfigurationKey {
		vals[k.Key] = *k.Value
	}
	if vals["MeterValuesSampledData"] != "Energy.Active.Import.Register,Current.Import.L2" || vals["MeterValueSampleInterval"] != "0.05" ||
		vals["HeartbeatInterval"] != "30" || vals["NumberOfConnectors"] != "1" {
		t.Errorf("GetConfiguration: %v", vals)
	}

	// Remote start: no Authorize (AuthorizeRemoteTxRequests false).
	st := await(t, func(cb func(*core.RemoteStartTransactionConfirmation, error)) error {
		return rec.cs.RemoteStartTransaction(id, cb, "REMOTE-1")
	})
	if st.Status != "Accepted" {
		t.Fatalf("RemoteStartTransaction: %s", st.Status)
	}
	rec.wait(t, "StartTransaction and samples", func() bool { return rec.count("StartTransaction") == 1 && rec.count("MeterValues") >= 3 })
	if s := all[*core.StartTransactionRequest](rec, "StartTransaction")[0]; s.IdTag != "REMOTE-1" || rec.count("Authorize") != 0 {
		t.Errorf("remote start: %+v, %d Authorize", s, rec.count("Authorize"))
	}
	// A second remote start finds no free connector.
	if st := await(t, func(cb func(*core.RemoteStartTransactionConfirmation, error)) error {
		return rec.cs.RemoteStartTransaction(id, cb, "REMOTE-2")
	}); st.Status != "Rejected" {
		t.Errorf("second RemoteStartTransaction: %s", st.Status)
	}
	for _, s := range received(rec) {
		if s.measurand != "Energy.Active.Import.Register" && !(s.measurand == "Current.Import" && s.phase == "L2") {
			t.Fatalf("sample %+v not in MeterValuesSampledData", s)
		}
	}

	// TriggerMessage.
	for _, m := range []remotetrigger.MessageTrigger{core.MeterValuesFeatureName, core.StatusNotificationFeatureName, core.HeartbeatFeatureName, core.BootNotificationFeatureName} {
		hb, boots, sn := rec.count("Heartbeat"), rec.count("BootNotification"), rec.count("StatusNotification")
		tr := await(t, func(cb func(*remotetrigger.TriggerMessageConfirmation, error)) error {
			return rec.cs.TriggerMessage(id, cb, m)
		})
		if tr.Status != remotetrigger.TriggerMessageStatusAccepted {
			t.Errorf("TriggerMessage %s: %s", m, tr.Status)
		}
		switch m {
		case core.MeterValuesFeatureName:
			rec.wait(t, "triggered MeterValues", func() bool {
				return slices.ContainsFunc(received(rec), func(s sample) bool { return s.context == "Trigger" && s.tx == 1001 })
			})
		case core.StatusNotificationFeatureName:
			rec.wait(t, "triggered StatusNotification", func() bool { return rec.count("StatusNotification") >= sn+2 })
		case core.HeartbeatFeatureName:
			rec.wait(t, "triggered Heartbeat", func() bool { return rec.count("Heartbeat") > hb })
		case core.BootNotificationFeatureName:
			rec.wait(t, "triggered BootNotification", func() bool { return rec.count("BootNotification") > boots })
		}
	}
	if tr := await(t, func(cb func(*remotetrigger.TriggerMessageConfirmation, error)) error {
		return rec.cs.TriggerMessage(id, cb, "DiagnosticsStatusNotification")
	}); tr.Status != remotetrigger.TriggerMessageStatusNotImplemented {
		t.Errorf("TriggerMessage DiagnosticsStatusNotification: %s", tr.Status)
	}

	// Remote stop of an unknown transaction, then the real one.
	if s := await(t, func(cb func(*core.RemoteStopTransactionConfirmation, error)) error {
		return rec.cs.RemoteStopTransaction(id, cb, 4242)
	}); s.Status != "Rejected" {
		t.Errorf("RemoteStopTransaction of unknown: %s", s.Status)
	}
	await(t, func(cb func(*core.RemoteStopTransactionConfirmation, error)) error {
		return rec.cs.RemoteStopTransaction(id, cb, 1001)
	})
	rec.wait(t, "remote stop", func() bool { return rec.count("StopTransaction") == 1 })

	// Reset during a session: the transaction stops with SoftReset, then
	// the charger reconnects and boots again.
	rec.wait(t, "connector available", func() bool {
		st := all[*core.StatusNotificationRequest](rec, "StatusNotification")
		return st[len(st)-1].Status == core.ChargePointStatusAvailable
	})
	await(t, func(cb func(*core.RemoteStartTransactionConfirmation, error)) error {
		return rec.cs.RemoteStartTransaction(id, cb, "REMOTE-3")
	})
	rec.wait(t, "second transaction", func() bool { return rec.count("StartTransaction") == 2 })
	boots := rec.count("BootNotification")
	rs := await(t, func(cb func(*core.ResetConfirmation, error)) error {
		return rec.cs.Reset(id, cb, core.ResetTypeSoft)
	})
	if rs.Status != core.ResetStatusAccepted {
		t.Errorf("Reset: %s", rs.Status)
	}
	rec.wait(t, "reboot and stop", func() bool { return rec.count("BootNotification") > boots && rec.count("StopTransaction") == 2 })
	stops := all[*core.StopTransactionRequest](rec, "StopTransaction")
	if stops[1].Reason != core.ReasonSoftReset || stops[1].TransactionId != 1002 {
		t.Errorf("stop after reset: %+v", stops[1])
	}
	if n := rec.count("StartTransaction"); n != 2 {
		t.Errorf("%d StartTransactions, want 2", n)
	}
	checkTruth(t, rec, cp)
}

func TestBadRequestsFromCentralSystem(t *testing.T) {
	port := freePort(t)
	rec := newRecorder()
	rec.cs = startCS(t, rec, port, nil)
	const id = "CP-BAD"
	cp, err := New(testConfig(port, id), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	run(t, cp)
	rec.wait(t, "boot", func() bool { return rec.count("StatusNotification") >= 2 })
	// A request of a profile the charger does not support is refused
	// with the CALLERROR NotSupported.
	_, err = sendAsync(t, rec, id, reservation.NewCancelReservationRequest(7))
	var oe *ocpp.Error
	if !errors.As(err, &oe) || oe.Code != ocppj.NotSupported {
		t.Errorf("CancelReservation: %v, want NotSupported", err)
	}
	if r, err := sendAsync(t, rec, id, core.NewUnlockConnectorRequest(1)); err != nil || r.(*core.UnlockConnectorConfirmation).Status != core.UnlockStatusNotSupported {
		t.Errorf("UnlockConnector: %v %v", r, err)
	}
	// The connection survives: a heartbeat still gets through.
	hb := rec.count("Heartbeat")
	await(t, func(cb func(*remotetrigger.TriggerMessageConfirmation, error)) error {
		return rec.cs.TriggerMessage(id, cb, core.HeartbeatFeatureName)
	})
	rec.wait(t, "heartbeat", func() bool { return rec.count("Heartbeat") > hb })
	_ = cp
}

func TestBasicAuthAndTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := selfSigned(t, dir)
	var bad atomic.Int32
	newSrv := func(tls bool) *ws.Server {
		var srv *ws.Server
		if tls {
			srv = ws.NewTLSServer(certFile, keyFile, nil)
		} else {
			srv = ws.NewServer()
		}
		srv.SetBasicAuthHandler(func(user, pass string) bool {
			if user == "CP-AUTH" && pass == "s3cret" {
				return true
			}
			bad.Add(1)
			return false
		})
		return srv
	}
	for _, tc := range []struct {
		name   string
		tls    bool
		scheme string
	}{{"profile1", false, "ws"}, {"profile2", true, "wss"}} {
		t.Run(tc.name, func(t *testing.T) {
			port := freePort(t)
			rec := newRecorder()
			startCS(t, rec, port, newSrv(tc.tls))
			cfg := testConfig(port, "CP-AUTH")
			cfg.URL = fmt.Sprintf("%s://127.0.0.1:%d", tc.scheme, port)
			cfg.Password = "s3cret"
			if tc.tls {
				cfg.CAFile = certFile
			}
			cp, err := New(cfg, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			run(t, cp)
			rec.wait(t, "boot with basic auth", func() bool { return rec.count("BootNotification") == 1 })
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		port := freePort(t)
		rec := newRecorder()
		startCS(t, rec, port, newSrv(false))
		cfg := testConfig(port, "CP-AUTH")
		cfg.Password = "wrong"
		cp, err := New(cfg, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		before := bad.Load()
		run(t, cp)
		waitUntil(t, "retries refused at the handshake", func() bool { return bad.Load() >= before+3 })
		if rec.count("BootNotification") != 0 || cp.Online() {
			t.Error("charger with a wrong password got in")
		}
	})
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "central system"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestTruthNamesAsset checks that the truth names the asset the charger is
// registered for beside its OCPP identity, so a test compares the
// platform's values of that asset.
func TestTruthNamesAsset(t *testing.T) {
	cp, err := New(Config{ID: "STH-EVSE-01", Asset: "evse-01", URL: "ws://127.0.0.1:1/ocpp"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(cp.TruthHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct{ ChargePoint, Asset string }
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.ChargePoint != "STH-EVSE-01" || doc.Asset != "evse-01" {
		t.Errorf("truth: chargePoint %q asset %q, want STH-EVSE-01 and evse-01", doc.ChargePoint, doc.Asset)
	}
}
