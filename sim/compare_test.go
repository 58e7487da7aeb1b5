package sim

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/device"
)

// compareTruth records cycles 0..4 of 1 s from day0 for asset "m":
// active_power = 100 + cycle, voltage L1 = 230 + cycle/10 (a float32).
func compareTruth(t *testing.T) (*Truth, int64) {
	t.Helper()
	tr := NewTruth(nil, 100)
	d := time.Second
	c0 := cycleOf(day0, d)
	for i := range int64(5) {
		err := tr.Record("m", frameAt(c0+i, d), d, []device.Value{
			{Quantity: "active_power", Unit: "kW", Value: (100 + float64(i)) / 1000},
			{Quantity: "voltage", Phase: cim.PhaseL1, Value: float64(float32(230 + float64(i)/10))},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return tr, c0
}

func reading(asset, q string, p cim.Phase, at time.Time, v float64) cim.Reading {
	return cim.Reading{SeriesKey: cim.SeriesKey{Asset: asset, Quantity: q, Phase: p}, Point: cim.Point{Time: at.UnixMilli(), Value: v}}
}

func TestCompareAllMatch(t *testing.T) {
	tr, _ := compareTruth(t)
	var got []cim.Reading
	for i := range 5 {
		at := day0.Add(time.Duration(i)*time.Second + 300*time.Millisecond)
		got = append(got, reading("m", "active_power", "", at, 100+float64(i)))
		got = append(got, reading("m", "voltage", cim.PhaseL1, at, 230+float64(i)/10)) // float64, not float32
	}
	c := Compare(tr.Cycles("m", time.Time{}, time.Time{}), got, Tolerance{Boundary: 100 * time.Millisecond})
	if !c.OK() || c.Matched != 10 || len(c.Missing) != 0 || c.Completeness != 100 || c.Readings != 10 {
		t.Fatalf("%v", c)
	}
	for _, cov := range c.Coverage {
		if cov.Held != 2 || cov.Covered != 2 || cov.Readings != 2 {
			t.Fatalf("coverage %+v", cov)
		}
	}
}

func TestCompareFindsWrongValue(t *testing.T) {
	tr, c0 := compareTruth(t)
	got := []cim.Reading{
		reading("m", "active_power", "", day0.Add(2500*time.Millisecond), 102.5),
		reading("m", "voltage", cim.PhaseL1, day0.Add(2500*time.Millisecond), 230.2+1e-3),
	}
	c := Compare(tr.Cycles("m", time.Time{}, time.Time{}), got, Tolerance{})
	if c.OK() || len(c.Mismatches) != 2 || c.Matched != 0 {
		t.Fatalf("%v", c)
	}
	m := c.Mismatches[0]
	if m.Asset != "m" || m.Quantity != "active_power" || m.Cycle != c0+2 || m.Want != 102 || m.Got != 102.5 ||
		!m.Time.Equal(day0.Add(2500*time.Millisecond)) {
		t.Fatalf("mismatch %+v", m)
	}
	if s := c.String(); !strings.Contains(s, "want 102, got 102.5") {
		t.Fatalf("summary %q", s)
	}
	// Readings of the 2.5 s cycle count in its coverage, but cover nothing.
	if cov := c.Coverage[2]; cov.Readings != 2 || cov.Covered != 0 {
		t.Fatalf("coverage %+v", cov)
	}
}

func TestCompareMissingCycle(t *testing.T) {
	tr, c0 := compareTruth(t)
	var got []cim.Reading
	for _, i := range []int{0, 1, 3, 4} {
		got = append(got, reading("m", "active_power", "", day0.Add(time.Duration(i)*time.Second+10*time.Millisecond), 100+float64(i)))
	}
	c := Compare(tr.Cycles("m", time.Time{}, time.Time{}), got, Tolerance{})
	if !c.OK() || c.Matched != 4 {
		t.Fatalf("%v", c)
	}
	if len(c.Missing) != 1 || c.Missing[0].Cycle != c0+2 {
		t.Fatalf("missing %+v", c.Missing)
	}
	// 4 of 10 held (cycle, series) values were read.
	if math.Abs(c.Completeness-40) > 1e-9 {
		t.Fatalf("completeness %v", c.Completeness)
	}
}

// A reading stamped just after a boundary may still show the previous
// cycle's value; beyond the boundary tolerance it may not.
func TestCompareBoundary(t *testing.T) {
	tr, c0 := compareTruth(t)
	truth := tr.Cycles("m", time.Time{}, time.Time{})
	early := reading("m", "active_power", "", day0.Add(3*time.Second+50*time.Millisecond), 102) // cycle 3 holds 103
	c := Compare(truth, []cim.Reading{early}, Tolerance{Boundary: 100 * time.Millisecond})
	if !c.OK() || c.Matched != 1 || c.Coverage[2].Covered != 1 || c.Coverage[3].Readings != 0 {
		t.Fatalf("within the boundary: %v %+v", c, c.Coverage)
	}
	c = Compare(truth, []cim.Reading{early}, Tolerance{})
	if len(c.Mismatches) != 1 || c.Mismatches[0].Cycle != c0+3 || c.Mismatches[0].Want != 103 {
		t.Fatalf("without a boundary tolerance: %v", c)
	}
	late := reading("m", "active_power", "", day0.Add(3*time.Second+150*time.Millisecond), 102)
	if c := Compare(truth, []cim.Reading{late}, Tolerance{Boundary: 100 * time.Millisecond}); c.OK() {
		t.Fatalf("beyond the boundary: %v", c)
	}
	// Just after the last cycle ends, within the boundary: still matched.
	after := reading("m", "active_power", "", day0.Add(5*time.Second+20*time.Millisecond), 104)
	if c := Compare(truth, []cim.Reading{after}, Tolerance{Boundary: 100 * time.Millisecond}); c.Matched != 1 {
		t.Fatalf("after the last cycle: %v", c)
	}
}

func TestCompareFloat32Tolerance(t *testing.T) {
	tr, _ := compareTruth(t)
	truth := tr.Cycles("m", time.Time{}, time.Time{})
	at := day0.Add(1500 * time.Millisecond)
	// The device held float32(230.1); the platform got the float64 230.1.
	c := Compare(truth, []cim.Reading{reading("m", "voltage", cim.PhaseL1, at, 230.1)}, Tolerance{})
	if c.Matched != 1 {
		t.Fatalf("float32 within default tolerance: %v", c)
	}
	c = Compare(truth, []cim.Reading{reading("m", "voltage", cim.PhaseL1, at, 230.1)}, Tolerance{Relative: 1e-12})
	if c.Matched != 0 {
		t.Fatalf("float32 with a tight tolerance: %v", c)
	}
	// Integers are exact: 1e-6 relative is too much for active power.
	c = Compare(truth, []cim.Reading{reading("m", "active_power", "", at, 101.0001)}, Tolerance{})
	if c.Matched != 0 {
		t.Fatalf("exact value with float32 tolerance: %v", c)
	}
}

func TestCompareUnexpectedAndOutside(t *testing.T) {
	tr, _ := compareTruth(t)
	truth := tr.Cycles("m", time.Time{}, time.Time{})
	got := []cim.Reading{
		reading("m", "co2", "", day0.Add(time.Second), 500),                 // not held
		reading("m", "active_power", cim.PhaseL2, day0.Add(time.Second), 1), // phase not held
		reading("other", "active_power", "", day0.Add(time.Second), 101),    // other asset
		reading("m", "active_power", "", day0.Add(-time.Second), 101),       // before
		reading("m", "active_power", "", day0.Add(time.Minute), 101),        // after
	}
	c := Compare(truth, got, Tolerance{Boundary: 100 * time.Millisecond})
	if len(c.Unexpected) != 2 || c.Outside != 3 || c.Matched != 0 || c.OK() || !math.IsNaN(c.Unexpected[0].Want) {
		t.Fatalf("%v", c)
	}
	if s := c.String(); !strings.Contains(s, "unexpected: m co2") {
		t.Fatalf("summary %q", s)
	}
	if c := Compare(nil, nil, Tolerance{}); !c.OK() || c.Completeness != 0 {
		t.Fatalf("empty: %v", c)
	}
}
