package cim

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// testNow is the receiver's clock in the tests: 2025-10-01T10:15:00Z.
var testNow = time.Date(2025, 10, 1, 10, 15, 0, 0, time.UTC)

func validInput() Input {
	return Input{Asset: "house-01/meter", Quantity: "active_power", Unit: "W", Time: testNow.UnixMilli(), Value: 1500}
}

func TestNormalize(t *testing.T) {
	c := Default()
	ms := testNow.UnixMilli()
	tests := []struct {
		in   Input
		want Reading
	}{
		{
			Input{Asset: "house-01/meter", Quantity: "active_power", Unit: "kW", Time: ms, Value: -0.62034},
			Reading{SeriesKey{"house-01/meter", "active_power", PhaseTotal}, Point{ms, -620.34}},
		},
		{
			Input{Asset: "house-01/meter", Quantity: "voltage", Phase: "l1", Unit: "mV", Time: ms, Value: 230577},
			Reading{SeriesKey{"house-01/meter", "voltage", PhaseL1}, Point{ms, 230.577}},
		},
		{
			Input{Asset: "transformer-01", Quantity: "voltage", Phase: "L31", Unit: "kV", Time: ms, Value: 20},
			Reading{SeriesKey{"transformer-01", "voltage", PhaseL31}, Point{ms, 20000}},
		},
		{
			Input{Asset: "house-01/meter", Quantity: "current", Phase: "N", Unit: "A", Time: ms, Value: 0.4},
			Reading{SeriesKey{"house-01/meter", "current", PhaseN}, Point{ms, 0.4}},
		},
		{
			Input{Asset: "house-01/meter", Quantity: "energy_active_import", Phase: "total", Unit: "KWH", Time: ms, Value: 401.4729},
			Reading{SeriesKey{"house-01/meter", "energy_active_import", PhaseTotal}, Point{ms, 401472.9}},
		},
		{
			Input{Asset: "house-01/door", Quantity: "door_window_state", Time: ms, Value: 1},
			Reading{SeriesKey{"house-01/door", "door_window_state", PhaseTotal}, Point{ms, 1}},
		},
		{
			Input{Asset: "Küche/Thermometer", Quantity: "temperature", Unit: "°F", Time: ms, Value: 212},
			Reading{SeriesKey{"Küche/Thermometer", "temperature", PhaseTotal}, Point{ms, 100}},
		},
		{
			// The edges of the time window are inside it.
			Input{Asset: "a", Quantity: "frequency", Time: EarliestTime, Value: 50},
			Reading{SeriesKey{"a", "frequency", PhaseTotal}, Point{EarliestTime, 50}},
		},
		{
			Input{Asset: "a", Quantity: "frequency", Time: ms + time.Hour.Milliseconds(), Value: 50},
			Reading{SeriesKey{"a", "frequency", PhaseTotal}, Point{ms + time.Hour.Milliseconds(), 50}},
		},
		{
			Input{Asset: strings.Repeat("x", MaxAssetIDLen), Quantity: "heart_rate", Unit: "bpm", Time: ms, Value: 72},
			Reading{SeriesKey{strings.Repeat("x", MaxAssetIDLen), "heart_rate", PhaseTotal}, Point{ms, 72}},
		},
	}
	for _, tt := range tests {
		got, err := c.Normalize(tt.in, testNow)
		if err != nil {
			t.Errorf("Normalize(%+v): %v", tt.in, err)
			continue
		}
		if got.SeriesKey != tt.want.SeriesKey || got.Time != tt.want.Time || !approxEqual(got.Value, tt.want.Value) {
			t.Errorf("Normalize(%+v) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestNormalizeErrors(t *testing.T) {
	c := Default()
	ms := testNow.UnixMilli()
	tests := []struct {
		name   string
		edit   func(*Input)
		field  string
		value  string
		reason string
	}{
		{"empty asset", func(in *Input) { in.Asset = "" }, "asset", "", "empty asset id"},
		{"long asset", func(in *Input) { in.Asset = strings.Repeat("x", 201) }, "asset", strings.Repeat("x", 201), "asset id longer than 200 bytes"},
		{"leading space", func(in *Input) { in.Asset = " meter" }, "asset", " meter", "leading or trailing space"},
		{"trailing space", func(in *Input) { in.Asset = "meter " }, "asset", "meter ", "leading or trailing space"},
		{"NUL", func(in *Input) { in.Asset = "a\x00b" }, "asset", "a\x00b", "control character in asset id"},
		{"newline", func(in *Input) { in.Asset = "a\nb" }, "asset", "a\nb", "control character in asset id"},
		{"DEL", func(in *Input) { in.Asset = "a\x7fb" }, "asset", "a\x7fb", "control character in asset id"},
		{"C1 control", func(in *Input) { in.Asset = "a\u0085b" }, "asset", "a\u0085b", "non-printable character in asset id"},
		{"zero-width space", func(in *Input) { in.Asset = "a\u200bb" }, "asset", "a\u200bb", "non-printable character in asset id"},
		{"bad UTF-8", func(in *Input) { in.Asset = "a\xffb" }, "asset", "a\xffb", "asset id is not valid UTF-8"},

		{"empty quantity", func(in *Input) { in.Quantity = "" }, "quantity", "", "empty quantity"},
		{"typo", func(in *Input) { in.Quantity = "activ_power" }, "quantity", "activ_power", `unknown quantity (did you mean "active_power"?)`},
		{"case", func(in *Input) { in.Quantity = "Active_Power" }, "quantity", "Active_Power", `unknown quantity (did you mean "active_power"?)`},
		{"phase suffix", func(in *Input) { in.Quantity = "voltage_l1" }, "quantity", "voltage_l1", `unknown quantity (use "voltage" with phase L1)`},
		{"neutral suffix", func(in *Input) { in.Quantity = "current_n" }, "quantity", "current_n", `unknown quantity (use "current" with phase N)`},
		{"legacy name", func(in *Input) { in.Quantity = "power_active" }, "quantity", "power_active", `unknown quantity (did you mean "active_power"?)`},
		{"legacy soc", func(in *Input) { in.Quantity = "soc" }, "quantity", "soc", `unknown quantity (did you mean "battery_soc"?)`},
		{"nothing close", func(in *Input) { in.Quantity = "wind_speed" }, "quantity", "wind_speed", "unknown quantity"},
		{"ambiguous", func(in *Input) { in.Quantity = "pm" }, "quantity", "pm", "unknown quantity"},

		{"unknown phase", func(in *Input) { in.Phase = "L4" }, "phase", "L4",
			"unknown phase (want total, L1, L2, L3, N, L12, L23 or L31)"},
		{"phase on unphased", func(in *Input) { in.Quantity, in.Unit, in.Value, in.Phase = "frequency", "", 50, "L1" }, "phase", "L1",
			"frequency has no phases (want total)"},
		{"neutral power", func(in *Input) { in.Phase = "N" }, "phase", "N",
			"not a phase of active_power (want total, L1, L2, L3)"},
		{"line-to-line current", func(in *Input) { in.Quantity, in.Unit, in.Value, in.Phase = "current", "A", 1, "L12" }, "phase", "L12",
			"not a phase of current (want total, L1, L2, L3, N)"},

		{"incompatible unit", func(in *Input) { in.Unit = "kWh" }, "unit", "kWh",
			"not a unit of active_power (canonical unit W)"},
		{"unknown unit", func(in *Input) { in.Unit = "horsepower" }, "unit", "horsepower", "unknown unit"},
		{"ambiguous unit", func(in *Input) { in.Unit = "mw" }, "unit", "mw", "unknown unit"},

		{"NaN", func(in *Input) { in.Value = math.NaN() }, "value", "NaN", "not a number"},
		{"+Inf", func(in *Input) { in.Value = math.Inf(1) }, "value", "+Inf", "infinite (after conversion to W)"},
		{"overflow in conversion", func(in *Input) { in.Unit, in.Value = "GW", 1e300 }, "value", "1e+300",
			"infinite (after conversion to W)"},
		{"out of range", func(in *Input) { in.Quantity, in.Unit, in.Value = "voltage", "kV", 2000 }, "value", "2000",
			"2e+06 V is outside the plausible range of voltage [0, 1e+06] V"},
		{"negative register", func(in *Input) { in.Quantity, in.Unit, in.Value = "energy_active_import", "Wh", -1 }, "value", "-1",
			"-1 Wh is outside the plausible range of energy_active_import [0, 1e+15] Wh"},
		{"soc above 100", func(in *Input) { in.Quantity, in.Unit, in.Value = "battery_soc", "%", 100.5 }, "value", "100.5",
			"100.5 % is outside the plausible range of battery_soc [0, 100] %"},
		{"pressure in Pa sent as hPa", func(in *Input) { in.Quantity, in.Unit, in.Value = "pressure", "hPa", 101325 }, "value", "101325",
			"101325 hPa is outside the plausible range of pressure [300, 1200] hPa"},
		{"not a state code", func(in *Input) { in.Quantity, in.Unit, in.Value = "relay_state", "", 0.5 }, "value", "0.5",
			"not a state code of relay_state (0..1: off, on)"},
		{"state code too big", func(in *Input) { in.Quantity, in.Unit, in.Value = "door_window_state", "", 2 }, "value", "2",
			"not a state code of door_window_state (0..1: closed, open)"},

		{"1970", func(in *Input) { in.Time = 0 }, "time", "1970-01-01T00:00:00.000Z", "before 2000-01-01T00:00:00Z"},
		{"just before 2000", func(in *Input) { in.Time = EarliestTime - 1 }, "time", "1999-12-31T23:59:59.999Z", "before 2000-01-01T00:00:00Z"},
		{"future", func(in *Input) { in.Time = ms + time.Hour.Milliseconds() + 1 }, "time", "2025-10-01T11:15:00.001Z",
			"more than 1h0m0s after the receiver's clock (2025-10-01T10:15:00.000Z)"},
		{"seconds, not milliseconds", func(in *Input) { in.Time = ms / 1000 }, "time", "1970-01-21T08:41:53.700Z", "before 2000-01-01T00:00:00Z"},
		{"microseconds, not milliseconds", func(in *Input) { in.Time = ms * 1000 }, "time", "57720-06-07T02:00:00.000Z",
			"more than 1h0m0s after the receiver's clock (2025-10-01T10:15:00.000Z)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := validInput()
			tt.edit(&in)
			_, err := c.Normalize(in, testNow)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Normalize(%+v) = %v, want a *FieldError", in, err)
			}
			if fe.Field != tt.field || fe.Value != tt.value || fe.Reason != tt.reason {
				t.Errorf("got  {%s %q %q}\nwant {%s %q %q}", fe.Field, fe.Value, fe.Reason, tt.field, tt.value, tt.reason)
			}
		})
	}
}

func TestFieldErrorMessage(t *testing.T) {
	_, err := Default().Normalize(Input{Asset: "house-01/meter", Quantity: "activ_power", Time: testNow.UnixMilli()}, testNow)
	want := `quantity "activ_power": unknown quantity (did you mean "active_power"?)`
	if err == nil || err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestCheckAssetID(t *testing.T) {
	if err := CheckAssetID("house-01/meter"); err != nil {
		t.Errorf("CheckAssetID(house-01/meter): %v", err)
	}
	err := CheckAssetID("")
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "asset" {
		t.Errorf("CheckAssetID(\"\") = %v, want an asset FieldError", err)
	}
}

func TestNormalizeDoesNotAllocate(t *testing.T) {
	c := Default()
	ms := testNow.UnixMilli()
	for _, in := range []Input{
		validInput(),
		{Asset: "house-01/meter", Quantity: "voltage", Phase: "L1", Unit: "kV", Time: ms, Value: 0.23},
		{Asset: "house-01/meter", Quantity: "energy_active_import", Phase: "total", Unit: "KWH", Time: ms, Value: 1},
		{Asset: "Küche/Thermometer", Quantity: "temperature", Unit: "°F", Time: ms, Value: 70},
		{Asset: "house-01/air", Quantity: "pm2_5", Unit: "ug/m3", Time: ms, Value: 12},
	} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := c.Normalize(in, testNow); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("Normalize(%+v) allocates %.0f times", in, allocs)
		}
	}
}

func FuzzNormalize(f *testing.F) {
	ms := testNow.UnixMilli()
	f.Add("house-01/meter", "active_power", "", "kW", ms, 1.5)
	f.Add("house-01/meter", "voltage", "L12", "V", ms, 400.0)
	f.Add("house-01/meter", "current", "n", "mA", ms, -300.0)
	f.Add("Küche", "temperature", "total", "°F", EarliestTime, -40.0)
	f.Add("x", "relay_state", "", "1", ms+3600_000, 1.0)
	f.Add("x", "voltage_l1", "", "", ms, 230.0)
	f.Add("", "activ_power", "L4", "furlong", int64(0), math.NaN())
	f.Add("a\xffb", "pressure", "L1", "Pa", int64(-1), math.Inf(-1))
	f.Add("x", "co2", "", "ppb", ms, 1e300)
	c := Default()
	fields := map[string]bool{"asset": true, "quantity": true, "phase": true, "unit": true, "value": true, "time": true}
	f.Fuzz(func(t *testing.T, asset, quantity, phase, unit string, ms int64, value float64) {
		in := Input{Asset: asset, Quantity: quantity, Phase: phase, Unit: unit, Time: ms, Value: value}
		r, err := c.Normalize(in, testNow)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || !fields[fe.Field] || fe.Reason == "" {
				t.Fatalf("Normalize(%+v) error %#v is not a FieldError with a known field and a reason", in, err)
			}
			_ = fe.Error()
			return
		}
		q, ok := c.Lookup(r.Quantity)
		if !ok {
			t.Fatalf("accepted unknown quantity %q", r.Quantity)
		}
		if err := q.CheckValue(r.Value); err != nil {
			t.Fatalf("accepted %+v whose value fails CheckValue: %v", r, err)
		}
		if !q.AllowsPhase(r.Phase) {
			t.Fatalf("accepted phase %s for %s", r.Phase, q.Name)
		}
		if CheckAssetID(r.Asset) != nil || r.Asset != asset {
			t.Fatalf("accepted asset %q", r.Asset)
		}
		if r.Time != ms || r.Time < EarliestTime || r.Time > testNow.Add(MaxFutureSkew).UnixMilli() {
			t.Fatalf("accepted time %d", r.Time)
		}
	})
}

// benchInputs is a mix as a gateway batch would carry it: meters, plugs,
// sensors, different units and phases.
func benchInputs() []Input {
	ms := testNow.UnixMilli()
	return []Input{
		{Asset: "house-01/meter", Quantity: "active_power", Unit: "W", Time: ms, Value: -620.34},
		{Asset: "house-01/meter", Quantity: "voltage", Phase: "L1", Unit: "V", Time: ms, Value: 231.2},
		{Asset: "house-01/meter", Quantity: "current", Phase: "L2", Unit: "mA", Time: ms, Value: 2960},
		{Asset: "house-01/meter", Quantity: "energy_active_import", Unit: "kWh", Time: ms, Value: 401.4729},
		{Asset: "house-01/plug-01", Quantity: "relay_state", Time: ms, Value: 1},
		{Asset: "house-01/air", Quantity: "temperature", Unit: "°C", Time: ms, Value: 21.5},
		{Asset: "house-01/air", Quantity: "pm2_5", Unit: "ug/m3", Time: ms, Value: 12},
		{Asset: "evse-01", Quantity: "ev_charging_power", Unit: "kW", Time: ms, Value: 11},
	}
}

func BenchmarkNormalize(b *testing.B) {
	c := Default()
	ins := benchInputs()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := c.Normalize(ins[i%len(ins)], testNow); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkNormalizeParallel(b *testing.B) {
	c := Default()
	ins := benchInputs()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := c.Normalize(ins[i%len(ins)], testNow); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func BenchmarkDefault(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Default()
	}
}
