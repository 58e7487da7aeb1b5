//go:build !edge

package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gridlink/gridlink/chargepoint"
)

// TestITC2_01_ChargingPoint does what the seed's test case ITC2.01 asks of a
// charging point (integration type 5, OCPP 1.6J straight to the platform):
// a simulated charger connects to `gridlink serve --ocpp-listen` with its
// own password, an RFID tag authorises a session, and every meter value the
// charger sent is in the platform with the right quantity, unit (canonical)
// and time; the session is listed with the energy its meter register says
// and carries the meter values sent during it. The integration test runner
// runs the same check under the name ITC2.01.
func TestITC2_01_ChargingPoint(t *testing.T) {
	dir := t.TempDir()
	siteDir := filepath.Join(dir, "sites")
	os.MkdirAll(siteDir, 0o755)
	os.WriteFile(filepath.Join(siteDir, "s.yaml"), []byte("site: {id: steinheim, name: Steinheim, country: DE, timezone: Europe/Berlin}\nassets:\n  - {id: evse-01, type: charging_point, make: Alfen, model: Twin4XL}\n"), 0o644)
	ocppAddr := freeAddr(t)
	plat := startServer(t, "--data", filepath.Join(dir, "data"), "--sites", siteDir, "--ocpp-listen", ocppAddr)
	const password = "s3cret-charger-key-01"
	if code := call(t, "POST", plat.url+"/api/v1/sites/steinheim/chargepoints", plat.key, map[string]string{"id": "evse-01", "password": password}, nil); code != http.StatusOK {
		t.Fatalf("register charge point: %d", code)
	}
	if code := call(t, "POST", plat.url+"/api/v1/sites/steinheim/idtags", plat.key, map[string]string{"tag": "04A2B3C4D5"}, nil); code != http.StatusOK {
		t.Fatalf("add id tag: %d", code)
	}

	// A wrong password is refused at the handshake: the charger never boots.
	bad, err := chargepoint.New(chargepoint.Config{ID: "evse-01", URL: "ws://" + ocppAddr + "/ocpp", Password: "wrong-password-0000", Plan: chargepoint.SessionPlan{}, ReconnectMin: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	badCtx, badStop := context.WithTimeout(t.Context(), 2*time.Second)
	bad.Run(badCtx)
	badStop()
	if bad.Boots() != 0 {
		t.Errorf("a charger with a wrong password booted %d times", bad.Boots())
	}

	cp, err := chargepoint.New(chargepoint.Config{
		ID: "evse-01", URL: "ws://" + ocppAddr + "/ocpp", Password: password, Seed: 3,
		MeterValueInterval: 200 * time.Millisecond, HeartbeatInterval: time.Second,
		IDTags: []string{"04A2B3C4D5"},
		Plan:   chargepoint.SessionPlan{{After: 300 * time.Millisecond, Duration: 3 * time.Second}},
		Speed:  60,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tx := runOneSession(t, cp)

	// The session as the platform lists it.
	var sessions struct {
		Sessions []struct {
			TransactionID int64    `json:"transaction_id"`
			IDTag         string   `json:"id_tag"`
			MeterStartWh  float64  `json:"meter_start_wh"`
			MeterStopWh   *float64 `json:"meter_stop_wh"`
			EnergyWh      float64  `json:"energy_wh"`
			Running       bool     `json:"running"`
		}
	}
	if code := call(t, "GET", plat.url+"/api/v1/sites/steinheim/sessions", plat.key, nil, &sessions); code != http.StatusOK || len(sessions.Sessions) != 1 {
		t.Fatalf("sessions: status %d, %+v", code, sessions)
	}
	s := sessions.Sessions[0]
	if s.TransactionID != tx.ID || s.IDTag != "04A2B3C4D5" || s.Running || s.MeterStopWh == nil ||
		s.MeterStartWh != float64(tx.MeterStart) || s.EnergyWh != float64(*tx.MeterStop-tx.MeterStart) || s.EnergyWh <= 0 {
		t.Errorf("session %+v, charger's transaction %+v", s, tx)
	}

	// Every meter value the charger sent, in the platform, and those of the
	// transaction in the session's meter values.
	checked := checkMeterValues(t, plat.url, plat.key, "steinheim", cp.Sent())
	if checked < 20 {
		t.Errorf("only %d meter values to check", checked)
	}
	checkSessionMeterValues(t, plat.url, plat.key, "steinheim", "evse-01", tx.ID, cp.Sent())
	t.Logf("%d meter values sent, all in the platform; session %d: %.0f Wh", checked, tx.ID, s.EnergyWh)

	// Commands through the admin API: a remote start and stop of a session
	// on a charger that starts nothing by itself.
	remote, err := chargepoint.New(chargepoint.Config{ID: "evse-01", URL: "ws://" + ocppAddr + "/ocpp", Password: password,
		MeterValueInterval: 200 * time.Millisecond, Plan: chargepoint.SessionPlan{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- remote.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, 20*time.Second, "the charger to boot", func() bool { return remote.Boots() > 0 })
	cmds := plat.url + "/api/v1/sites/steinheim/chargepoints/evse-01/commands"
	var reply struct {
		Result any `json:"result"`
	}
	if code := call(t, "POST", cmds, plat.key, map[string]any{"action": "RemoteStartTransaction", "id_tag": "04A2B3C4D5", "connector": 1}, &reply); code != http.StatusOK || reply.Result != true {
		t.Fatalf("RemoteStartTransaction: %d %+v", code, reply)
	}
	waitFor(t, 20*time.Second, "the remote session to start", func() bool { return len(remote.Transactions()) == 1 })
	rtx := remote.Transactions()[0]
	if code := call(t, "POST", cmds, plat.key, map[string]any{"action": "RemoteStopTransaction", "transaction_id": rtx.ID}, &reply); code != http.StatusOK || reply.Result != true {
		t.Fatalf("RemoteStopTransaction: %d %+v", code, reply)
	}
	waitFor(t, 20*time.Second, "the remote session to stop", func() bool { return !remote.Transactions()[0].Stop.IsZero() })
	if code := call(t, "POST", cmds, plat.key, map[string]any{"action": "TriggerMessage", "message": "Heartbeat"}, &reply); code != http.StatusOK || reply.Result != "Accepted" {
		t.Errorf("TriggerMessage: %d %+v", code, reply)
	}
	if code := call(t, "POST", plat.url+"/api/v1/sites/steinheim/chargepoints/evse-99/commands", plat.key, map[string]any{"action": "Reset"}, nil); code != http.StatusNotFound {
		t.Errorf("command to an unknown charger: %d", code)
	}
	waitFor(t, 10*time.Second, "two sessions listed", func() bool {
		call(t, "GET", plat.url+"/api/v1/sites/steinheim/sessions", plat.key, nil, &sessions)
		return len(sessions.Sessions) == 2 && !sessions.Sessions[1].Running
	})
}

// TestChargerIdentitySeparateFromAsset runs two sites that both have an
// asset evse-01, as the pilots athens and steinheim do. Athens's charger
// connects as evse-01; Steinheim's registers its own OCPP identity (as a
// serial number would be) for its evse-01. Steinheim's meter values must
// be stored under steinheim's evse-01, never under the identity or in
// athens, and its session, keyed by the identity, must carry them.
func TestChargerIdentitySeparateFromAsset(t *testing.T) {
	dir := t.TempDir()
	siteDir := filepath.Join(dir, "sites")
	os.MkdirAll(siteDir, 0o755)
	os.WriteFile(filepath.Join(siteDir, "a.yaml"), []byte("site: {id: athens, name: Athens, country: GR, timezone: Europe/Athens}\nassets:\n  - {id: evse-01, type: charging_point, make: Alfen, model: Twin4XL}\n"), 0o644)
	os.WriteFile(filepath.Join(siteDir, "s.yaml"), []byte("site: {id: steinheim, name: Steinheim, country: DE, timezone: Europe/Berlin}\nassets:\n  - {id: evse-01, type: charging_point, make: EVTEC, model: sospeso&charge}\n"), 0o644)
	ocppAddr := freeAddr(t)
	plat := startServer(t, "--data", filepath.Join(dir, "data"), "--sites", siteDir, "--ocpp-listen", ocppAddr)
	const id, password = "STH-EVSE-01", "s3cret-charger-key-02"
	if code := call(t, "POST", plat.url+"/api/v1/sites/athens/chargepoints", plat.key, map[string]string{"id": "evse-01", "password": "athens-charger-key-01"}, nil); code != http.StatusOK {
		t.Fatalf("register athens's charge point: %d", code)
	}
	// Steinheim's charger cannot take the identity evse-01 too …
	if code := call(t, "POST", plat.url+"/api/v1/sites/steinheim/chargepoints", plat.key, map[string]string{"id": "evse-01", "password": password}, nil); code != http.StatusConflict {
		t.Fatalf("register steinheim's charger as evse-01: %d, want 409", code)
	}
	// … but registers its own for its evse-01.
	var reg struct{ Site, ID, Asset string }
	if code := call(t, "POST", plat.url+"/api/v1/sites/steinheim/chargepoints", plat.key, map[string]string{"id": id, "password": password, "asset": "evse-01"}, &reg); code != http.StatusOK || reg.Asset != "evse-01" {
		t.Fatalf("register charge point %s for evse-01: %d %+v", id, code, reg)
	}
	if code := call(t, "POST", plat.url+"/api/v1/sites/steinheim/idtags", plat.key, map[string]string{"tag": "CAFE0001"}, nil); code != http.StatusOK {
		t.Fatalf("add id tag: %d", code)
	}
	cp, err := chargepoint.New(chargepoint.Config{
		ID: id, Asset: "evse-01", URL: "ws://" + ocppAddr + "/ocpp", Password: password, Seed: 5, IDTags: []string{"CAFE0001"},
		MeterValueInterval: 200 * time.Millisecond, Plan: chargepoint.SessionPlan{{After: 100 * time.Millisecond, Duration: 2 * time.Second}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tx := runOneSession(t, cp)

	sent := asAsset(cp.Sent(), "evse-01")
	if checked := checkMeterValues(t, plat.url, plat.key, "steinheim", sent); checked < 5 {
		t.Errorf("only %d meter values to check", checked)
	}
	from, to := sent[0].Time.Add(-time.Minute), sent[len(sent)-1].Time.Add(time.Minute)
	for _, r := range platformReadings(t, plat.url, plat.key, "steinheim", from, to) {
		if r.Asset != "evse-01" && !strings.HasPrefix(r.Asset, "evse-01/") {
			t.Errorf("a reading of asset %q in steinheim", r.Asset)
		}
	}
	if rs := platformReadings(t, plat.url, plat.key, "athens", from, to); len(rs) != 0 {
		t.Errorf("%d readings in athens, whose charger never connected", len(rs))
	}
	var sessions struct {
		Sessions []struct {
			ChargePoint string `json:"charge_point"`
			Asset       string
		}
	}
	if code := call(t, "GET", plat.url+"/api/v1/sites/steinheim/sessions", plat.key, nil, &sessions); code != http.StatusOK ||
		len(sessions.Sessions) != 1 || sessions.Sessions[0].ChargePoint != id || sessions.Sessions[0].Asset != "evse-01" {
		t.Fatalf("sessions: %d %+v", code, sessions)
	}
	checkSessionMeterValues(t, plat.url, plat.key, "steinheim", id, tx.ID, sent)
}

// asAsset returns the meter values a charger sent as the platform files
// them: under the asset its registration names rather than its OCPP
// identity (what meterValueAsset starts from).
func asAsset(sent []chargepoint.MeterValue, asset string) []chargepoint.MeterValue {
	out := make([]chargepoint.MeterValue, len(sent))
	for i, mv := range sent {
		mv.ChargePoint = asset
		out[i] = mv
	}
	return out
}

// checkMeterValues checks that every meter value a charger sent is in the
// platform once, with its quantity, phase, time and canonical value, and
// returns how many it checked.
func checkMeterValues(t *testing.T, base, key, site string, sent []chargepoint.MeterValue) int {
	t.Helper()
	if len(sent) == 0 {
		return 0
	}
	from, to := sent[0].Time, sent[0].Time
	for _, mv := range sent {
		from, to = minTime(from, mv.Time), maxTime(to, mv.Time)
	}
	held := map[string]float64{}
	for _, r := range platformReadings(t, base, key, site, from.Add(-time.Minute), to.Add(time.Minute)) {
		held[fmt.Sprint(r.Asset, "|", r.Quantity, "|", r.Phase, "|", r.Time)] = r.Value
	}
	checked := 0
	for _, mv := range sent {
		if mv.Quantity == "" {
			continue
		}
		key := fmt.Sprint(meterValueAsset(mv), "|", mv.Quantity, "|", mv.CIMPhase, "|", mv.Time.UnixMilli())
		v, ok := held[key]
		switch {
		case !ok:
			t.Errorf("%s %s %s at %s (%s %s) is not in the platform", mv.Message, mv.Measurand, mv.Phase, mv.Time.Format(time.RFC3339Nano), mv.Value, mv.Unit)
		case math.Abs(v-mv.Canonical) > 1e-9*math.Max(1, math.Abs(v)):
			t.Errorf("%s %s %s at %s: platform %v, charger sent %s %s (%v)", mv.Message, mv.Measurand, mv.Phase, mv.Time.Format(time.RFC3339Nano), v, mv.Value, mv.Unit, mv.Canonical)
		}
		checked++
	}
	return checked
}

// meterValueAsset is the asset the platform stores a charger's value under:
// the charge point, its connector N ≥ 2, and a location other than Outlet.
func meterValueAsset(mv chargepoint.MeterValue) string {
	a := mv.ChargePoint
	if mv.Connector >= 2 {
		a += fmt.Sprintf("/connector-%d", mv.Connector)
	}
	if loc := strings.ToLower(mv.Location); loc != "" && loc != "outlet" && mv.Measurand != "SoC" {
		a += "/" + loc
	}
	return a
}

// checkSessionMeterValues checks that the session's meter values hold every
// value the charger sent in the transaction.
func checkSessionMeterValues(t *testing.T, base, key, site, chargePoint string, tx int64, sent []chargepoint.MeterValue) {
	t.Helper()
	var sess struct {
		MeterValues []struct {
			Asset, Quantity, Phase string
			Points                 [][2]float64
		} `json:"meter_values"`
	}
	if code := call(t, "GET", fmt.Sprintf("%s/api/v1/sites/%s/sessions/%s/%d", base, site, chargePoint, tx), key, nil, &sess); code != http.StatusOK {
		t.Fatalf("session %d: status %d", tx, code)
	}
	held := map[string]float64{}
	for _, s := range sess.MeterValues {
		for _, p := range s.Points {
			held[fmt.Sprint(s.Asset, "|", s.Quantity, "|", s.Phase, "|", int64(p[0]))] = p[1]
		}
	}
	n := 0
	for _, mv := range sent {
		if mv.TransactionID != tx || mv.Quantity == "" || mv.Message != "MeterValues" {
			continue
		}
		k := fmt.Sprint(meterValueAsset(mv), "|", mv.Quantity, "|", mv.CIMPhase.String(), "|", mv.Time.UnixMilli())
		if v, ok := held[k]; !ok || math.Abs(v-mv.Canonical) > 1e-9*math.Max(1, math.Abs(v)) {
			t.Errorf("session %d: meter value %s (%s) = %v, want %v (present %v)", tx, k, mv.Measurand, v, mv.Canonical, ok)
		}
		n++
	}
	if n == 0 {
		t.Errorf("session %d: the charger sent no meter values in it", tx)
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// runOneSession runs the charger until its one planned session has ended,
// stops it and returns the session.
func runOneSession(t *testing.T, cp *chargepoint.ChargePoint) chargepoint.Transaction {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- cp.Run(ctx) }()
	waitFor(t, 30*time.Second, "the session to end", func() bool {
		txs := cp.Transactions()
		return len(txs) == 1 && !txs[0].Stop.IsZero()
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("charge point: %v", err)
	}
	return cp.Transactions()[0]
}
