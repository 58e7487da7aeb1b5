package platform

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
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
	site, sum, err := r.st.ChargePointSecret(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return ocpp.ChargePoint{}, false, nil
	}
	return ocpp.ChargePoint{ID: id, Site: site, Asset: id, PasswordSHA256: sum}, err == nil, err
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
	if err := f.st.PutChargePointSecret(context.Background(), "bristol", "evse-09", sha256.Sum256([]byte(password))); err != nil {
		t.Fatal(err)
	}
	rc := realChargers{st: f.st}
	cs, err := ocpp.New(ocpp.Config{}, ocpp.Deps{Registry: rc, Sink: serverSink{f.srv}})
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
	cp, err := chargepoint.New(chargepoint.Config{ID: "evse-09", URL: "ws://" + addr + "/ocpp", Password: password, Plan: chargepoint.SessionPlan{}}, nil)
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
}
