package itc

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/platform"
	"github.com/gridlink/gridlink/platform/auth"
	"github.com/gridlink/gridlink/profile"
	"github.com/gridlink/gridlink/sim"
	"github.com/gridlink/gridlink/store/sqlite"
)

// testStore is a real SQLite store in a temporary directory with one site,
// its assets and an admin key, closed when the test ends.
func testStore(t *testing.T, assets ...cim.Asset) (*sqlite.Store, string) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := t.Context()
	if err := st.PutSite(ctx, cim.Site{ID: "bristol", Name: "Bristol", Country: "GB", Timezone: "Europe/London"}); err != nil {
		t.Fatal(err)
	}
	for _, a := range assets {
		a.Site = "bristol"
		if err := st.PutAsset(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	secret, k := auth.NewKey("", "admin", "itc-test", time.Now())
	if err := st.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	return st, secret
}

// testPlatform is a real platform (SQLite in a temporary directory) behind
// a real HTTP server, with one site and an admin key.
func testPlatform(t *testing.T, assets ...cim.Asset) (url, admin string) {
	t.Helper()
	st, secret := testStore(t, assets...)
	srv, err := platform.New(platform.Config{Store: st, Heartbeat: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { srv.Close(); ts.Close() })
	return ts.URL, secret
}

var (
	meter = cim.Asset{ID: "house-01/meter", Type: cim.SmartMeter, Make: "Eastron", Model: "SDM630"}
	plug  = cim.Asset{ID: "house-01/plug-01", Type: cim.EnergyAsset, Make: "TP-Link", Model: "Kasa KP115"}
)

// testCases are cases built in Go, as the catalogue would hold them.
func testCases() []*Case {
	store := Pass{Check: "store", ValuesEqual: true, MinCompleteness: 80, MaxDelayP99: Duration(5 * time.Second)}
	sus := Suspend{NoDataWithin: Duration(3 * time.Second), ComponentDown: []string{"platform"}}
	return []*Case{
		{ID: "ITC1.01", Name: "Smart Meter Integration", AssetUnderTest: cim.SmartMeter, IntegrationType: 2, Pass: store, Suspension: sus},
		{ID: "ITC4.01", Name: "Energy Asset Integration", AssetUnderTest: cim.EnergyAsset, IntegrationType: 2, Dependencies: []string{"ITC1.01"}, Pass: store, Suspension: sus},
		{ID: "ITC2.01", Name: "Charging Point Integration", AssetUnderTest: cim.ChargingPoint, IntegrationType: 5, Pass: store, Suspension: sus},
	}
}

// simulate starts simulators and a gateway for the platform's site.
func simulate(t *testing.T, tg Target, opt SimOptions) *Simulation {
	t.Helper()
	s, err := Simulate(t.Context(), tg, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func results(r *Run) map[string]Result {
	out := map[string]Result{}
	for _, res := range r.Results {
		out[res.Case] = res
	}
	return out
}

// TestExecutePasses runs a smart meter and a smart plug behind a gateway
// against a real platform: both cases pass, measured per cycle, and a case
// with no such asset on the site is not run, saying why.
func TestExecutePasses(t *testing.T) {
	url, admin := testPlatform(t, meter, plug)
	tg := Target{Platform: url, Key: admin}
	s := simulate(t, tg, SimOptions{Seed: 3})
	tg.Truth = s.Truth()
	var progress int
	run, err := Execute(t.Context(), testCases(), tg, Options{Window: 4 * time.Second, Progress: func(Progress) { progress++ }})
	if err != nil {
		t.Fatal(err)
	}
	rs := results(run)
	for _, id := range []string{"ITC1.01", "ITC4.01"} {
		res := rs[id]
		if res.Status != Passed || res.Site != "bristol" || len(res.Assets) != 1 {
			t.Fatalf("%s: %s %q, %+v", id, res.Status, res.Reason, res)
		}
		a := res.Assets[0]
		if a.Cycles < 3 || a.Arrived != a.Cycles || a.Equal != a.Cycles || a.Completeness != 100 || a.DelayP99 <= 0 || a.DelayMax < a.DelayP50 || len(a.Series) == 0 {
			t.Errorf("%s %s: measures %+v", id, a.Asset, a)
		}
		t.Logf("%s %s: %d cycles, delay p50 %v p99 %v", id, a.Asset, a.Cycles, a.DelayP50, a.DelayP99)
	}
	if res := rs["ITC2.01"]; res.Status != NotRun || !strings.Contains(res.Reason, "no charging_point with a device truth on sites bristol") {
		t.Errorf("ITC2.01: %s %q", res.Status, res.Reason)
	}
	if progress == 0 {
		t.Error("no progress reported")
	}
}

// TestExecuteWrongScale: a gateway whose profile has a wrong register scale
// fails ITC1.01 with a reason naming the asset, quantity and both values;
// the case depending on it is not run.
func TestExecuteWrongScale(t *testing.T) {
	url, admin := testPlatform(t, meter, plug)
	set, err := profile.Embedded(cim.Default())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := set.Get("eastron-sdm630"); !ok {
		t.Fatal("no eastron-sdm630 profile")
	}
	src, err := os.ReadFile("../profile/profiles/eastron-sdm630.yaml")
	if err != nil {
		t.Fatal(err)
	}
	wrong := strings.Replace(string(src), "quantity: active_power, unit: W}", "quantity: active_power, unit: W, scale: 10}", 1)
	if wrong == string(src) {
		t.Fatal("profile not changed")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "eastron-sdm630.yaml"), []byte(wrong), 0o644)
	tg := Target{Platform: url, Key: admin}
	s := simulate(t, tg, SimOptions{Seed: 4, GatewayProfiles: dir})
	tg.Truth = s.Truth()
	run, err := Execute(t.Context(), testCases()[:2], tg, Options{Window: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rs := results(run)
	res := rs["ITC1.01"]
	if res.Status != Failed || !strings.Contains(res.Reason, "house-01/meter active_power") ||
		!strings.Contains(res.Reason, "the device held") || !strings.Contains(res.Reason, "the platform holds") {
		t.Fatalf("ITC1.01: %s %q", res.Status, res.Reason)
	}
	if len(res.Assets) != 1 || len(res.Assets[0].Mismatches) == 0 {
		t.Fatalf("ITC1.01 measures: %+v", res.Assets)
	}
	m := res.Assets[0].Mismatches[0]
	// About 10 ×: a reading near a cycle boundary may hold the next
	// cycle's value.
	if ratio := m.Platform / m.Device; m.Quantity != "active_power" || ratio < 9 || ratio > 11 {
		t.Errorf("mismatch %+v: want the platform at about 10 × the device", m)
	}
	if r4 := rs["ITC4.01"]; r4.Status != NotRun || r4.Reason != "dependency ITC1.01 failed" {
		t.Errorf("ITC4.01: %s %q", r4.Status, r4.Reason)
	}
	t.Logf("ITC1.01: %s", res.Reason)
}

// TestExecuteWrongKey: a gateway with a wrong ingest key gets nothing into
// the platform; the case is suspended within its bound, saying no reading
// arrived and that the platform refused the gateway's key.
func TestExecuteWrongKey(t *testing.T) {
	url, admin := testPlatform(t, meter)
	tg := Target{Platform: url, Key: admin}
	s := simulate(t, tg, SimOptions{Seed: 5, IngestKey: "gl_wrong_key_0000000000000000"})
	tg.Truth = s.Truth()
	run, err := Execute(t.Context(), testCases()[:1], tg, Options{Window: 30 * time.Second, Faults: s.Faults()})
	if err != nil {
		t.Fatal(err)
	}
	res := results(run)["ITC1.01"]
	if res.Status != Suspended || !strings.Contains(res.Reason, "no reading of bristol/house-01/meter reached the platform within 3s") ||
		!strings.Contains(res.Reason, "unauthorized") {
		t.Fatalf("ITC1.01: %s %q", res.Status, res.Reason)
	}
	// Suspended by its no-data bound (3 s), not at the end of the window:
	// the run's end says so.
	if d := res.End.Sub(res.Start); d >= 30*time.Second {
		t.Errorf("suspended after %v, at the window's end, not by the 3 s bound", d)
	}
	t.Logf("ITC1.01: %s", res.Reason)
}

// TestExecuteFaults: without an injector a fault case is not run; with the
// simulation's, a meter counter reset is stored as the device held it.
func TestExecuteFaults(t *testing.T) {
	url, admin := testPlatform(t, meter, plug)
	tg := Target{Platform: url, Key: admin}
	s := simulate(t, tg, SimOptions{Seed: 6})
	tg.Truth = s.Truth()
	sus := Suspend{NoDataWithin: Duration(2 * time.Second)}
	pass := Pass{Check: "store", ValuesEqual: true, MinCompleteness: 80}
	cases := []*Case{
		{ID: "FLT3.01", Name: "Meter counter reset", AssetUnderTest: cim.SmartMeter, Fault: "counter_reset", Pass: pass, Suspension: sus},
		{ID: "FLT2.01", Name: "Device silent", AssetUnderTest: cim.SmartMeter, Fault: "device_silent", Pass: pass, Suspension: sus},
		{ID: "FLT4.01", Name: "Clock offset", AssetUnderTest: cim.SmartMeter, Fault: "clock_offset", Pass: pass, Suspension: sus},
	}
	run, err := Execute(t.Context(), cases[:1], tg, Options{Window: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res := results(run)["FLT3.01"]; res.Status != NotRun || !strings.Contains(res.Reason, "needs --simulate") {
		t.Errorf("without an injector: %s %q", res.Status, res.Reason)
	}
	run, err = Execute(t.Context(), cases, tg, Options{Window: 2 * time.Second, Faults: s.Faults()})
	if err != nil {
		t.Fatal(err)
	}
	rs := results(run)
	if res := rs["FLT3.01"]; res.Status != Passed {
		t.Errorf("counter reset: %s %q", res.Status, res.Reason)
	}
	// The plug keeps being read while the meter is silent; the meter
	// itself recorded nothing to compare, so the case cannot show more.
	if res := rs["FLT2.01"]; res.Status == NotRun {
		t.Errorf("device silent: %s %q", res.Status, res.Reason)
	}
	// A clock case with no offset is not run, saying why.
	if res := rs["FLT4.01"]; res.Status != NotRun || !strings.Contains(res.Reason, "clock offset 0s: want a positive duration") {
		t.Errorf("clock offset: %s %q", res.Status, res.Reason)
	}
}

// TestExecuteClockOffset runs the catalogue's FLT4.01 (the gateway's clock
// 5 minutes ahead): every reading is stored stamped 5 minutes late and,
// shifted back, equals the device's cycle. A clock 2 hours ahead, beyond
// cim.MaxFutureSkew, gets nothing stored: the case does not pass, with a
// reason naming a refused time and the platform's words. The normal clock
// is back afterwards: a plain case passes.
func TestExecuteClockOffset(t *testing.T) {
	cat, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	flt4, ok := cat.Get("FLT4.01")
	if !ok || flt4.Fault != "clock_offset" || time.Duration(flt4.ClockOffset) != 5*time.Minute {
		t.Fatalf("FLT4.01: %+v", flt4)
	}
	far := *flt4
	far.ID, far.ClockOffset = "FLT4.99", Duration(2*time.Hour)
	far.Suspension.NoDataWithin = Duration(3 * time.Second)
	after := testCases()[0]
	after.ID = "ITC1.99"

	url, admin := testPlatform(t, meter)
	tg := Target{Platform: url, Key: admin}
	s := simulate(t, tg, SimOptions{Seed: 7})
	tg.Truth = s.Truth()
	run, err := Execute(t.Context(), []*Case{flt4, &far}, tg, Options{Window: 3 * time.Second, Faults: s.Faults()})
	if err != nil {
		t.Fatal(err)
	}
	rs := results(run)
	res := rs["FLT4.01"]
	if res.Status != Passed || len(res.Assets) != 1 {
		t.Fatalf("FLT4.01: %s %q %+v", res.Status, res.Reason, res.Assets)
	}
	if a := res.Assets[0]; a.Cycles < 2 || a.Arrived != a.Cycles || a.Equal != a.Cycles {
		t.Errorf("FLT4.01 measures: %+v", a)
	}
	// Stored as stamped: 5 minutes after the cycles, nothing at true time.
	cl, err := newClient(tg)
	if err != nil {
		t.Fatal(err)
	}
	late, err := cl.readings(t.Context(), "bristol", meter.ID, res.Start.Add(5*time.Minute), res.End.Add(5*time.Minute))
	if err != nil || len(late) == 0 {
		t.Errorf("readings stamped 5 minutes ahead: %d, %v", len(late), err)
	}
	r2 := rs["FLT4.99"]
	// Suspended by its no-data bound, or failed at the window's end when
	// the bound did not come first: either way the reason says why.
	if (r2.Status != Suspended && r2.Status != Failed) || !strings.Contains(r2.Reason, "reached the platform") ||
		!strings.Contains(r2.Reason, "the platform refused") || !strings.Contains(r2.Reason, "time 20") ||
		!strings.Contains(r2.Reason, "more than 1h0m0s after the receiver's clock") {
		t.Errorf("FLT4.99: %s %q", r2.Status, r2.Reason)
	}
	t.Logf("FLT4.99: %s", r2.Reason)

	// The clock is right again: a plain case passes.
	after.Pass.MaxDelayP99 = 0
	run, err = Execute(t.Context(), []*Case{after}, tg, Options{Window: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res := results(run)["ITC1.99"]; res.Status != Passed {
		t.Errorf("after the clock case: %s %q", res.Status, res.Reason)
	}
}

// TestExecutePlatformUnreachable: a platform that does not answer
// suspends every case at once instead of hanging.
func TestExecutePlatformUnreachable(t *testing.T) {
	ts := httptest.NewServer(nil)
	url := ts.URL
	ts.Close()
	run, err := Execute(t.Context(), testCases(), Target{Platform: url, Key: "k"}, Options{Window: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range run.Results {
		if res.Status != Suspended || !strings.Contains(res.Reason, "is not ready") {
			t.Errorf("%s: %s %q", res.Case, res.Status, res.Reason)
		}
	}
	if _, err := Execute(t.Context(), nil, Target{Platform: "ftp://x", Key: "k"}, Options{}); err == nil || !strings.Contains(err.Error(), "platform") {
		t.Errorf("bad platform URL: %v", err)
	}
}

// edgeWindow is 1-second cycles of one series from t0 (cycles -3 to 12,
// the window being 0 to 9), each holding 100+i, read once per cycle
// at off past its start.
func edgeWindow(t0 time.Time, off time.Duration) ([]sim.CycleRecord, []cim.Reading) {
	var truth []sim.CycleRecord
	var got []cim.Reading
	for i := -3; i < 13; i++ {
		s := t0.Add(time.Duration(i) * time.Second)
		v := float64(100 + i)
		truth = append(truth, sim.CycleRecord{Asset: "house-01/meter", Cycle: int64(i), Start: s, End: s.Add(time.Second),
			Values: []sim.HeldValue{{Quantity: "active_power", Phase: cim.PhaseTotal, Value: v}}})
		got = append(got, cim.Reading{SeriesKey: cim.SeriesKey{Asset: "house-01/meter", Quantity: "active_power", Phase: cim.PhaseTotal},
			Point: cim.Point{Time: s.Add(off).UnixMilli(), Value: v}})
	}
	return truth, got
}

// TestMeasureWindowEdge checks that a reading stamped just past the
// window's end meets the next cycle (fetched with the margin), not the
// window's last cycle, and that only the window's cycles are counted.
func TestMeasureWindowEdge(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 3, 33, 19, 750_000_000, time.UTC)
	from, to := t0, t0.Add(10*time.Second)
	// Stamped at the very start of each cycle: the one at the window's
	// end (to) is the first cycle after it.
	truth, got := edgeWindow(t0, 0)
	m := measure("house-01/meter", from, to, truth, got, nil, cim.Default())
	if m.Cycles != 10 || m.Arrived != 10 || m.Equal != 10 || m.mismatched != 0 || len(m.Mismatches) != 0 {
		t.Fatalf("cycles %d arrived %d equal %d mismatched %d %v; want 10 10 10 0", m.Cycles, m.Arrived, m.Equal, m.mismatched, m.Mismatches)
	}
	c := testCases()[0]
	c.Pass.MaxDelayP99 = 0 // no live feed here
	if why := judge(c, "bristol", m); why != "" {
		t.Errorf("judge: %s", why)
	}
	// A late poll, 260 ms into each next cycle, is still the next cycle's.
	truth, got = edgeWindow(t0, 260*time.Millisecond)
	if m := measure("house-01/meter", from, to, truth, got, nil, cim.Default()); m.Equal != 10 {
		t.Errorf("late poll: equal %d of %d", m.Equal, m.Arrived)
	}
}

// TestMeasureUnequalCycle checks the verdict per cycle: a wrong value
// inside one cycle makes that cycle unequal, is the reason's evidence,
// and fails the case.
func TestMeasureUnequalCycle(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 3, 33, 19, 750_000_000, time.UTC)
	truth, got := edgeWindow(t0, 500*time.Millisecond)
	got[3+4].Value = 999 // cycle 4
	m := measure("house-01/meter", t0, t0.Add(10*time.Second), truth, got, nil, cim.Default())
	if m.Arrived != 10 || m.Equal != 9 || m.mismatched != 1 || len(m.Mismatches) != 1 {
		t.Fatalf("arrived %d equal %d mismatched %d; want 10 9 1", m.Arrived, m.Equal, m.mismatched)
	}
	if mm := m.Mismatches[0]; mm.Device != 104 || mm.Platform != 999 {
		t.Errorf("mismatch %+v", mm)
	}
	why := judge(testCases()[0], "bristol", m)
	if !strings.Contains(why, "the device held 104, the platform holds 999") || !strings.Contains(why, "9 of 10 arrived cycles equal") {
		t.Errorf("reason %q", why)
	}
}

// TestMeasureDerivedSeries checks that a series the device never held
// (the platform's own derivation) is set aside, not a mismatch, and that
// a result with such readings still writes as JSON (no NaN).
func TestMeasureDerivedSeries(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 3, 33, 19, 750_000_000, time.UTC)
	truth, got := edgeWindow(t0, 500*time.Millisecond)
	for i := range 10 {
		got = append(got, cim.Reading{SeriesKey: cim.SeriesKey{Asset: "house-01/meter", Quantity: "ev_session_energy", Phase: cim.PhaseTotal},
			Point: cim.Point{Time: t0.Add(time.Duration(i)*time.Second + 500*time.Millisecond).UnixMilli(), Value: float64(i)}})
	}
	// A series held in some cycles only: its reading in another cycle is
	// unexpected, and has no device value to report.
	truth[5].Values = append(truth[5].Values, sim.HeldValue{Quantity: "voltage", Phase: cim.PhaseL1, Value: 230})
	got = append(got, cim.Reading{SeriesKey: cim.SeriesKey{Asset: "house-01/meter", Quantity: "voltage", Phase: cim.PhaseL1},
		Point: cim.Point{Time: t0.Add(3*time.Second + 400*time.Millisecond).UnixMilli(), Value: 231}},
		cim.Reading{SeriesKey: cim.SeriesKey{Asset: "house-01/meter", Quantity: "voltage", Phase: cim.PhaseL1},
			Point: cim.Point{Time: t0.Add(2*time.Second + 400*time.Millisecond).UnixMilli(), Value: 230}})
	m := measure("house-01/meter", t0, t0.Add(10*time.Second), truth, got, nil, cim.Default())
	if m.derived != 10 || m.Equal != 10 || len(m.Mismatches) != 0 {
		t.Fatalf("derived %d equal %d mismatches %v; want 10 10 none", m.derived, m.Equal, m.Mismatches)
	}
	c := testCases()[0]
	c.Pass.MaxDelayP99 = 0 // no live feed here
	if why := judge(c, "bristol", m); why != "" {
		t.Errorf("judge: %s", why)
	}
	run := &Run{ID: "r", Results: []Result{{Case: "ITC2.01", Status: Passed, Assets: []AssetResult{m.AssetResult}}}}
	var b strings.Builder
	if err := WriteJSON(&b, run); err != nil {
		t.Fatalf("WriteJSON: %v", err)
	}
	if strings.Contains(b.String(), "NaN") {
		t.Errorf("JSON holds NaN")
	}
}

// TestMeasureNoNaN checks that non-finite platform values never reach a
// result: WriteJSON must always work on what measure returns.
func TestMeasureNoNaN(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 3, 33, 19, 750_000_000, time.UTC)
	truth, got := edgeWindow(t0, 500*time.Millisecond)
	got[3+2].Value = math.NaN()
	got[3+6].Value = math.Inf(1)
	got[3+7].Value = 5 // a real mismatch, reported
	m := measure("house-01/meter", t0, t0.Add(10*time.Second), truth, got, nil, cim.Default())
	run := &Run{ID: "r", Results: []Result{{Case: "ITC1.01", Status: Failed, Reason: judge(testCases()[0], "bristol", m), Assets: []AssetResult{m.AssetResult}}}}
	var b strings.Builder
	if err := WriteJSON(&b, run); err != nil {
		t.Fatalf("WriteJSON: %v", err)
	}
	if m.Arrived != 8 || m.Equal != 7 {
		t.Errorf("arrived %d equal %d; want 8 7", m.Arrived, m.Equal)
	}
}

// TestMeasureLostSeries checks that a series the device held but the
// platform never got fails completeness and is named in the reason.
func TestMeasureLostSeries(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 3, 33, 19, 750_000_000, time.UTC)
	truth, got := edgeWindow(t0, 500*time.Millisecond)
	for i := range truth {
		truth[i].Values = append(truth[i].Values, sim.HeldValue{Quantity: "ev_current_offered", Value: 16})
	}
	m := measure("house-01/meter", t0, t0.Add(10*time.Second), truth, got, nil, cim.Default())
	why := judge(testCases()[0], "bristol", m)
	if m.Arrived != 0 || !strings.Contains(why, "no reading at all of ev_current_offered total") {
		t.Errorf("arrived %d, reason %q", m.Arrived, why)
	}
}

// TestOwnTime: a profile that reads the device's timestamp is not stamped
// by the gateway's clock, so a clock_offset case leaves its asset out.
func TestOwnTime(t *testing.T) {
	set, err := profile.Embedded(cim.Default())
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"eastron-sdm630": false, "zwave-qubino-meter": true} {
		p, ok := set.Get(name)
		if !ok {
			t.Fatalf("no profile %s", name)
		}
		if got := ownTime(p); got != want {
			t.Errorf("%s: ownTime %v, want %v", name, got, want)
		}
	}
}

// FuzzNoteRefusals: any batch reply passes through the link unchanged and
// never panics; refusals only grow.
func FuzzNoteRefusals(f *testing.F) {
	f.Add([]byte(`{"rejected":2,"errors":[{"field":"time","value":"2030-01-01T00:00:00Z","reason":"more than 1h0m0s after the receiver's clock"}]}`))
	f.Add([]byte(`{"rejected":-1}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ss := &simSite{}
		req := httptest.NewRequest("POST", "/api/v1/batches", nil)
		resp := &http.Response{StatusCode: http.StatusOK, Request: req, Body: io.NopCloser(bytes.NewReader(body))}
		if err := ss.noteRefusals(resp); err != nil {
			t.Fatal(err)
		}
		back, _ := io.ReadAll(resp.Body)
		if !bytes.Equal(back, body) {
			t.Fatalf("reply changed: %q → %q", body, back)
		}
		if n, _ := ss.refused(); n < 0 {
			t.Fatalf("refusals %d", n)
		}
	})
}

// restartablePlatform is a real platform (SQLite) behind an HTTP server
// that can be stopped and started again on the same address, as the
// demo's platform is for platform_down.
type restartablePlatform struct {
	t    *testing.T
	st   *sqlite.Store
	addr string

	mu  sync.Mutex
	api *platform.Server
	srv *http.Server
}

func newRestartablePlatform(t *testing.T, assets ...cim.Asset) (*restartablePlatform, string) {
	t.Helper()
	st, secret := testStore(t, assets...)
	p := &restartablePlatform{t: t, st: st, addr: "127.0.0.1:0"}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.stop) // before the store closes: cleanups run last first
	return p, secret
}

func (p *restartablePlatform) url() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return "http://" + p.addr
}

// start serves a new platform over the same store on the same address.
func (p *restartablePlatform) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	api, err := platform.New(platform.Config{Store: p.st, Heartbeat: time.Second})
	if err != nil {
		ln.Close()
		return err
	}
	p.addr, p.api, p.srv = ln.Addr().String(), api, &http.Server{Handler: api}
	go p.srv.Serve(ln)
	return nil
}

// stop ends the live streams and the server: connections are refused.
func (p *restartablePlatform) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv == nil {
		return
	}
	p.api.Close()
	p.srv.Shutdown(context.Background())
	p.api, p.srv = nil, nil
}

// outageFaults does platform_down by stopping the platform, and records
// when; the other faults go to the simulation.
type outageFaults struct {
	FaultInjector
	p            *restartablePlatform
	mu           sync.Mutex
	down         bool
	stops, start int
}

func (f *outageFaults) Inject(ctx context.Context, fault, site string) (func(context.Context) error, error) {
	if fault != FaultPlatformDown {
		return f.FaultInjector.Inject(ctx, fault, site)
	}
	f.p.stop()
	f.mu.Lock()
	f.down, f.stops = true, f.stops+1
	f.mu.Unlock()
	return func(context.Context) error {
		if err := f.p.start(); err != nil {
			return err
		}
		f.mu.Lock()
		f.down, f.start = false, f.start+1
		f.mu.Unlock()
		return nil
	}, nil
}

func (f *outageFaults) isDown() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down
}

// TestExecutePlatformDown runs the catalogue's FLT1.01 with the platform
// really stopped and started again: the gateway's queue resends the
// outage's readings, the runner's queries and live feed survive, the case
// passes with every cycle there and equal, and the delay of the readings
// held back is reported (at least the outage less a cycle). While the
// platform is down only FLT1.01 is observed; the case before it was
// observed and decided in its own window.
func TestExecutePlatformDown(t *testing.T) {
	if testing.Short() {
		t.Skip("a 40 s window")
	}
	cat, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	flt1, ok := cat.Get("FLT1.01")
	if !ok || flt1.Fault != FaultPlatformDown || flt1.Pass.MaxDelayP99 != 0 {
		t.Fatalf("FLT1.01: %+v", flt1)
	}
	outage := 4 * time.Second
	c := *flt1
	c.FaultFor = Duration(outage)
	before := testCases()[0] // ITC1.01, which FLT1.01 depends on

	p, admin := newRestartablePlatform(t, meter)
	tg := Target{Platform: p.url(), Key: admin}
	// The gateway's log is shown when the test fails: what it could not
	// send, and when it sent again.
	s := simulate(t, tg, SimOptions{Seed: 8, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	tg.Truth = s.Truth()
	faults := &outageFaults{FaultInjector: s.Faults(), p: p}
	var mu sync.Mutex
	var duringOutage []string
	run, err := Execute(t.Context(), []*Case{before, &c}, tg, Options{Window: 3 * time.Second, Faults: faults,
		Progress: func(pr Progress) {
			if pr.Stage == "observe" && faults.isDown() {
				mu.Lock()
				duringOutage = append(duringOutage, pr.Message)
				mu.Unlock()
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	rs := results(run)
	if res := rs["ITC1.01"]; res.Status != Passed {
		t.Errorf("ITC1.01: %s %q", res.Status, res.Reason)
	}
	res := rs["FLT1.01"]
	if res.Status != Passed || len(res.Assets) != 1 {
		t.Fatalf("FLT1.01: %s %q, %d assets", res.Status, res.Reason, len(res.Assets))
	}
	a := res.Assets[0]
	if a.Cycles < 30 || a.Arrived != a.Cycles || a.Equal != a.Cycles {
		t.Errorf("FLT1.01 measures: %+v", a)
	}
	// A reading stamped in the outage's first cycle was queryable only
	// once the platform was back.
	if a.DelayMax < outage-time.Second {
		t.Errorf("FLT1.01 delay max %v (p50 %v, p99 %v): want the held-back readings' delay, at least %v", a.DelayMax, a.DelayP50, a.DelayP99, outage-time.Second)
	}
	if faults.stops != 1 || faults.start != 1 {
		t.Errorf("platform stopped %d, started %d times", faults.stops, faults.start)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(duringOutage) == 0 {
		t.Error("no progress while the platform was down")
	}
	for _, m := range duringOutage {
		if !strings.HasSuffix(m, " 1 cases open") {
			t.Errorf("while the platform was down: %q; want FLT1.01 alone observed", m)
		}
	}
	t.Logf("FLT1.01: %d cycles, delay p50 %v p99 %v max %v", a.Cycles, a.DelayP50, a.DelayP99, a.DelayMax)
}
