package cim_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/gridlink/gridlink/cim"
)

func ExampleCatalogue_Normalize() {
	c := cim.Default() // once, at startup
	now := time.Date(2025, 10, 1, 10, 15, 0, 0, time.UTC)

	// A TQ meter's L1 power in kW, as a connector received it.
	r, err := c.Normalize(cim.Input{
		Asset: "house-01/meter", Quantity: "active_power", Phase: "L1", Unit: "kW",
		Time: now.UnixMilli(), Value: 1.5,
	}, now)
	fmt.Println(r.Asset, r.Quantity, r.Phase, r.Value, err)

	// A misspelt quantity: the error names the field and the value.
	_, err = c.Normalize(cim.Input{
		Asset: "house-01/meter", Quantity: "activ_power", Time: now.UnixMilli(), Value: 1.5,
	}, now)
	fmt.Println(err)
	var fe *cim.FieldError
	if errors.As(err, &fe) {
		fmt.Println("field:", fe.Field)
	}
	// Output:
	// house-01/meter active_power L1 1500 <nil>
	// quantity "activ_power": unknown quantity (did you mean "active_power"?)
	// field: quantity
}

func ExampleQuantity_Convert() {
	c := cim.Default()
	energy, _ := c.Lookup("energy_active_import")
	wh, _ := energy.Convert(12.068, "kWh")
	fmt.Println(wh, energy.Unit)

	temp, _ := c.Lookup("temperature")
	celsius, _ := temp.Convert(212, "°F")
	fmt.Println(celsius, temp.Unit)

	power, _ := c.Lookup("active_power")
	_, err := power.Convert(3, "kWh")
	fmt.Println(err)
	// Output:
	// 12068 Wh
	// 100 °C
	// unit "kWh": not a unit of active_power (canonical unit W)
}

func ExampleQuantity_PhaseOBIS() {
	voltage, _ := cim.Default().Lookup("voltage")
	for _, p := range []cim.Phase{cim.PhaseTotal, cim.PhaseL1, cim.PhaseL2, cim.PhaseL3} {
		fmt.Println(p, voltage.PhaseOBIS(p))
	}
	// Output:
	// total 1-0:12.7.0
	// L1 1-0:32.7.0
	// L2 1-0:52.7.0
	// L3 1-0:72.7.0
}

func ExampleDefault() {
	c := cim.Default()
	q, _ := c.Lookup("heart_rate")
	fmt.Println(q.Unit, q.Class, q.Restricted())
	// Output:
	// 1/min special_health true
}
