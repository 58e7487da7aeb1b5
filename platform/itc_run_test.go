package platform_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/gridlink/gridlink/itc"
	"github.com/gridlink/gridlink/platform"
)

// TestParseITCRunTakesItcRun keeps the platform's mirror of itc.Run in
// step with package itc: a run with every field set, as itc.WriteJSON
// writes it (what gridlink itc run --report posts), must be accepted.
// It is an external test so that itc may import platform's packages.
func TestParseITCRunTakesItcRun(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	pts := []itc.PlotPoint{{T: t0.UnixMilli(), V: 1500}}
	run := &itc.Run{ID: "20240501T120000Z-0a1b2c3d", Platform: "http://127.0.0.1:8080", Start: t0, End: t0.Add(time.Minute),
		Results: []itc.Result{{Case: "ITC1.01", Name: "Smart Meter Integration", Site: "bristol", Status: itc.Failed,
			Reason: "house-01/meter active_power at 12:00:01: device 1500 W, platform 150 W", Start: t0, End: t0.Add(20 * time.Second),
			Assets: []itc.AssetResult{{Asset: "house-01/meter", Profile: "meter", Cycles: 20, Arrived: 20, Equal: 19, Completeness: 100,
				DelayP50: time.Millisecond, DelayP99: 2 * time.Millisecond, DelayMax: 3 * time.Millisecond,
				Mismatches: []itc.Mismatch{{Quantity: "active_power", Phase: "total", Time: t0, Device: 1500, Platform: 150}},
				Series:     []itc.PlotSeries{{Quantity: "active_power", Phase: "total", Unit: "W", Device: pts, Platform: pts}}}}},
			{Case: "ITC3.01", Status: itc.NotRun, Reason: "dependency ITC1.01 failed"}}}
	var b bytes.Buffer
	if err := itc.WriteJSON(&b, run); err != nil {
		t.Fatal(err)
	}
	id, start, err := platform.ParseITCRun(b.Bytes())
	if err != nil {
		t.Fatalf("the platform refuses itc.WriteJSON's run: %v\n%s", err, b.Bytes())
	}
	if id != run.ID || !start.Equal(t0) {
		t.Errorf("ParseITCRun = %q, %s; want %q, %s", id, start, run.ID, t0)
	}
}
