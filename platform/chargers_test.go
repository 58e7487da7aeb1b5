package platform

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gridlink/gridlink/chargepoint"
	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/ocpp"
	"github.com/gridlink/gridlink/store"
)

// realChargers runs the OCPP central system on the fixture's store and
// server, and a simulated charger "evse-09" of site bristol connected to
// it, so that the commands API answers with a real charger's replies.
type realChargers struct {
	cs *ocpp.CentralSystem
	st store.Store
}

func (r realChargers) ChargePoint(ctx context.Context, id string) (ocpp.ChargePoint, bool, error) {
	site, asset, sum, err := r.st.ChargePointSecret(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return ocpp.ChargePoint{}, false, nil
	}
	return ocpp.ChargePoint{ID: id, Site: site, Asset: asset, PasswordSHA256: sum}, err == nil, err
}

// storeSessions keeps the central system's sessions in the store, as
// `gridlink serve` does, so that the sessions API sees them.
type storeSessions struct{ st store.Store }

func (k storeSessions) PutSession(ctx context.Context, s ocpp.Session) error {
	return k.st.PutSession(ctx, store.Session{Site: s.Site, ChargePoint: s.ChargePoint, Connector: s.Connector,
		TransactionID: s.TransactionID, IDTag: s.IDTag, Start: s.Start, Stop: s.Stop, MeterStartWh: s.MeterStart,
		MeterStopWh: s.MeterStop, StopReason: s.Reason})
}

type serverSink struct{ s *Server }

func (k serverSink) Write(ctx context.Context, site string, rs []cim.Reading) error {
	_, err := k.s.Write(ctx, site, rs)
	return err
}

func (r realChargers) Command(ctx context.Context, id string, c ChargerCommand) (any, error) {
	var res any
	var err error
	switch c.Action {
	case "TriggerMessage":
		res, err = r.cs.TriggerMessage(ctx, id, c.Message, c.Connector)
	case "GetConfiguration":
		var conf ocpp.Configuration
		conf, err = r.cs.GetConfiguration(ctx, id, c.Keys...)
		res = map[string]any{"keys": len(conf.Keys)}
	default:
		return nil, fmt.Errorf("%s: not wired in this test", c.Action)
	}
	if errors.Is(err, ocpp.ErrNotConnected) {
		err = ErrNotConnected
	}
	return res, err
}

func startRealChargers(t *testing.T, f *fixture) {
	t.Helper()
	const password = "0123456789abcdef-09"
	if err := f.st.PutChargePointSecret(context.Background(), "bristol", "evse-09", "", sha256.Sum256([]byte(password))); err != nil {
		t.Fatal(err)
	}
	url := startCentralSystem(t, f)
	runCharger(t, chargepoint.Config{ID: "evse-09", URL: url, Password: password, Plan: chargepoint.SessionPlan{}})
}

// startCentralSystem runs the OCPP central system on the fixture's store
// and server, as `gridlink serve --ocpp-listen` wires it, and returns the
// chargers' base URL.
func startCentralSystem(t *testing.T, f *fixture) string {
	t.Helper()
	rc := realChargers{st: f.st}
	cs, err := ocpp.New(ocpp.Config{}, ocpp.Deps{Registry: rc, Sink: serverSink{f.srv}, Sessions: storeSessions{f.st}})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := cs.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	rc.cs = cs
	f.srv.SetChargers(rc)
	return "ws://" + addr + "/ocpp"
}

// runCharger runs a simulated charger until the test ends, once it booted.
func runCharger(t *testing.T, cfg chargepoint.Config) *chargepoint.ChargePoint {
	t.Helper()
	cp, err := chargepoint.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { cp.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(20 * time.Second)
	for cp.Boots() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the simulated charger did not boot")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cp
}

// TestChargerFiledUnderItsAsset registers a charger whose OCPP identity is
// its serial number for an asset of the site, runs it through a real
// central system, and checks that its meter values are stored under the
// asset, not the identity, and that its session, keyed by the identity,
// finds them.
func TestChargerFiledUnderItsAsset(t *testing.T) {
	f := newFixture(t)
	f.asset("bristol", "evse-01", "charging_point")
	const id, password = "ALF-2217345", "0123456789abcdef-alf"
	var reg chargePointView
	f.must(200, "POST", "/api/v1/sites/bristol/chargepoints", f.admin,
		map[string]string{"id": id, "password": password, "asset": "evse-01"}).json(t, &reg)
	if reg != (chargePointView{Site: "bristol", ID: id, Asset: "evse-01"}) {
		t.Errorf("registration answer: %+v", reg)
	}
	url := startCentralSystem(t, f)
	cp := runCharger(t, chargepoint.Config{ID: id, Asset: "evse-01", URL: url, Password: password,
		MeterValueInterval: 100 * time.Millisecond, Plan: chargepoint.SessionPlan{{After: 10 * time.Millisecond, CapacityWh: 1e6}}})

	// Wait for a meter value of the running session to be acknowledged:
	// it is stored by then.
	deadline := time.Now().Add(20 * time.Second)
	var sent chargepoint.MeterValue
	for sent.TransactionID == 0 || sent.Message != "MeterValues" || sent.Quantity != "ev_energy_register" {
		if time.Now().After(deadline) {
			t.Fatal("the charger sent no meter values")
		}
		time.Sleep(20 * time.Millisecond)
		for _, m := range cp.Sent() {
			if m.TransactionID != 0 && m.Message == "MeterValues" && m.Quantity == "ev_energy_register" {
				sent = m
			}
		}
	}
	latest, err := f.st.Latest(context.Background(), "bristol")
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, lp := range latest {
		if lp.Asset == id || strings.HasPrefix(lp.Asset, id+"/") {
			t.Errorf("a series under the OCPP identity: %s %s", lp.Asset, lp.Quantity)
		}
		found = found || lp.Asset == "evse-01" && lp.Quantity == "ev_energy_register"
	}
	if !found {
		t.Fatalf("no ev_energy_register of asset evse-01 among %+v", latest)
	}

	// The session belongs to the identity; its readings are the asset's.
	var list struct{ Sessions []sessionView }
	f.must(200, "GET", "/api/v1/sites/bristol/sessions", f.read, nil).json(t, &list)
	if len(list.Sessions) != 1 || list.Sessions[0].ChargePoint != id || list.Sessions[0].Asset != "evse-01" {
		t.Fatalf("sessions: %+v", list.Sessions)
	}
	var one struct {
		Asset       string
		MeterValues []struct {
			Asset, Quantity string
			Points          [][2]float64
		} `json:"meter_values"`
	}
	f.must(200, "GET", fmt.Sprintf("/api/v1/sites/bristol/sessions/%s/%d", id, sent.TransactionID), f.read, nil).json(t, &one)
	var values int
	for _, ms := range one.MeterValues {
		if ms.Asset != "evse-01" {
			t.Errorf("session meter values of asset %q, want evse-01", ms.Asset)
		}
		if ms.Quantity == "ev_energy_register" {
			for _, p := range ms.Points {
				if int64(p[0]) == sent.Time.UnixMilli() && p[1] == sent.Canonical {
					values++
				}
			}
		}
	}
	if values != 1 {
		t.Errorf("session %d: the sent register %v at %v is not among its meter values %+v", sent.TransactionID, sent.Canonical, sent.Time, one.MeterValues)
	}
}
