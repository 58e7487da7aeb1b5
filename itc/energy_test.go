package itc

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
)

// TestExecuteCounterReset runs FLT3.01 against a real platform: the
// meter's registers reset to zero in the window, the platform stores the
// drop, and its 15-minute energy over the reset adds up to what the meter
// counted, never negative.
func TestExecuteCounterReset(t *testing.T) {
	url, admin := testPlatform(t, meter, plug)
	tg := Target{Platform: url, Key: admin}
	s := simulate(t, tg, SimOptions{Seed: 9})
	tg.Truth = s.Truth()
	// As in the catalogue, ITC1.01 runs first: the meter's readings flow
	// before its register is reset, so the window holds the drop.
	before := testCases()[0]
	c := &Case{ID: "FLT3.01", Name: "Meter counter reset", AssetUnderTest: cim.SmartMeter, Fault: "counter_reset",
		Dependencies: []string{before.ID},
		Pass:         Pass{Check: "store", ValuesEqual: true, MinCompleteness: 80, EnergyDelta: true},
		Suspension:   Suspend{NoDataWithin: Duration(2 * time.Second)}}
	run, err := Execute(t.Context(), []*Case{before, c}, tg, Options{Window: 3 * time.Second, Faults: s.Faults()})
	if err != nil {
		t.Fatal(err)
	}
	if res := results(run)["FLT3.01"]; res.Status != Passed {
		t.Errorf("counter reset: %s %q", res.Status, res.Reason)
	}
	// Without the fault there is no reset to see: the case cannot pass.
	run, err = Execute(t.Context(), []*Case{before, c}, tg, Options{Window: 2 * time.Second, Faults: noFault{s.Faults()}})
	if err != nil {
		t.Fatal(err)
	}
	if res := results(run)["FLT3.01"]; res.Status != Failed || !strings.Contains(res.Reason, "the counter reset was not seen") {
		t.Errorf("no reset: %s %q", res.Status, res.Reason)
	}
}

// noFault injects nothing.
type noFault struct{ FaultInjector }

func (noFault) Inject(ctx context.Context, fault, site string) (func(context.Context) error, error) {
	return func(context.Context) error { return nil }, nil
}

// TestCheckEnergyNegative checks the reason against a stand-in for a
// platform whose delta is last minus previous (what gridlink answered
// before resets were counted): the energy over the reset is negative.
func TestCheckEnergyNegative(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("agg") != "delta" || r.URL.Query().Get("phase") != "total" {
			http.Error(w, "unexpected query "+r.URL.RawQuery, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"series":[{"points":[[1709251200000,-1195.5]]}]}`))
	}))
	defer ts.Close()
	cl, err := newClient(Target{Platform: ts.URL, Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	key := cim.SeriesKey{Asset: "m", Quantity: "energy_active_import"}
	got := []cim.Reading{
		{SeriesKey: key, Point: cim.Point{Time: 1709251201000, Value: 1200}},
		{SeriesKey: key, Point: cim.Point{Time: 1709251202000, Value: 1204}},
		{SeriesKey: key, Point: cim.Point{Time: 1709251203000, Value: 0.5}},
		{SeriesKey: key, Point: cim.Point{Time: 1709251204000, Value: 4.5}},
	}
	why, resets, err := cl.checkEnergy(t.Context(), "s", "m", got, cim.Default())
	if err != nil {
		t.Fatal(err)
	}
	want := "s/m energy_active_import total: the platform's 15m energy from 00:00:00 is -1195.5, negative (the register reset once in the span)"
	if why != want || resets != 1 {
		t.Errorf("got %q, %d resets; want %q, 1", why, resets, want)
	}
}
