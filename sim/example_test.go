package sim_test

import (
	"fmt"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/device"
	"github.com/gridlink/gridlink/sim"
)

// A model's frame goes to a device, the device's held values to the truth
// log, and the platform's readings are checked against it.
func Example() {
	cat := cim.Default()
	m := sim.NewModel(sim.ModelConfig{
		Seed:      1,
		Cycle:     time.Second,
		Channels:  []sim.Channel{{Quantity: "active_power"}, {Quantity: "energy_active_import"}},
		Catalogue: cat,
	})
	truth := sim.NewTruth(cat, 0)

	at := time.Date(2025, 6, 2, 12, 0, 0, 0, time.UTC)
	f := m.Frame(at)
	// A device holding whole watts in kW with three decimals.
	p, _ := f.Value("active_power", cim.PhaseTotal)
	kw := float64(int64(p)) / 1000
	held := []device.Value{{Quantity: "active_power", Unit: "kW", Value: kw}}
	if err := truth.Record("house/meter", f, time.Second, held); err != nil {
		fmt.Println(err)
	}

	got := []cim.Reading{{
		SeriesKey: cim.SeriesKey{Asset: "house/meter", Quantity: "active_power"},
		Point:     cim.Point{Time: at.Add(40 * time.Millisecond).UnixMilli(), Value: kw * 1000},
	}}
	c := sim.Compare(truth.Cycles("house/meter", time.Time{}, time.Time{}), got, sim.Tolerance{Boundary: 100 * time.Millisecond})
	fmt.Println(c.OK(), c.Matched, c.Completeness)
	// Output: true 1 100
}
