package ocpp

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/lorenzodonini/ocpp-go/ocpp1.6/types"

	"github.com/gridlink/gridlink/cim"
)

var testNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func mapOne(t testing.TB, svJSON string) ([]cim.Reading, []error) {
	var sv types.SampledValue
	if err := json.Unmarshal([]byte(svJSON), &sv); err != nil {
		t.Fatalf("%s: %v", svJSON, err)
	}
	mv := []types.MeterValue{{Timestamp: types.NewDateTime(testNow.Add(-time.Minute)), SampledValue: []types.SampledValue{sv}}}
	return meterReadings(cim.Default(), "a", mv, testNow)
}

func TestMeasurandMapping(t *testing.T) {
	for _, tc := range []struct {
		sv       string
		asset    string
		quantity string
		phase    cim.Phase
		value    float64
	}{
		{`{"value":"1052616.5"}`, "a", "ev_energy_register", "", 1052616.5}, // default measurand and unit
		{`{"value":"1052.6165","unit":"kWh"}`, "a", "ev_energy_register", "", 1052616.5},
		{`{"value":"3","measurand":"Energy.Active.Import.Register","phase":"L2","unit":"kWh"}`, "a", "energy_active_import", "L2", 3000},
		{`{"value":"7","measurand":"Energy.Active.Export.Register","unit":"Wh"}`, "a", "energy_active_export", "", 7},
		{`{"value":"2","measurand":"Energy.Reactive.Import.Register","unit":"kvarh"}`, "a", "energy_reactive_import", "", 2000},
		{`{"value":"2","measurand":"Energy.Reactive.Export.Register","unit":"varh"}`, "a", "energy_reactive_export", "", 2},
		{`{"value":"0.25","measurand":"Energy.Active.Import.Interval","unit":"kWh"}`, "a", "energy_active_import_interval", "", 250},
		{`{"value":"5","measurand":"Energy.Active.Export.Interval","unit":"Wh"}`, "a", "energy_active_export_interval", "", 5},
		{`{"value":"11.0274","measurand":"Power.Active.Import","unit":"kW"}`, "a", "ev_charging_power", "", 11027.4},
		{`{"value":"3680","measurand":"Power.Active.Import","phase":"L1","unit":"W"}`, "a", "active_power", "L1", 3680},
		{`{"value":"5","measurand":"Power.Active.Export","unit":"kW"}`, "a", "ev_charging_power", "", -5000},
		{`{"value":"1","measurand":"Power.Reactive.Import","unit":"kvar"}`, "a", "reactive_power", "", 1000},
		{`{"value":"1","measurand":"Power.Reactive.Export","unit":"var"}`, "a", "reactive_power", "", -1},
		{`{"value":"11085","measurand":"Power.Offered","unit":"W"}`, "a", "ev_power_offered", "", 11085},
		{`{"value":"0.99","measurand":"Power.Factor"}`, "a", "power_factor", "", 0.99},
		{`{"value":"15.5","measurand":"Current.Import","phase":"L1","unit":"A"}`, "a", "current", "L1", 15.5},
		{`{"value":"0.1","measurand":"Current.Import","phase":"N","unit":"A"}`, "a", "current", "N", 0.1},
		{`{"value":"2","measurand":"Current.Export","phase":"L3","unit":"A"}`, "a", "current", "L3", -2},
		{`{"value":"16","measurand":"Current.Offered","unit":"A"}`, "a", "ev_current_offered", "", 16},
		{`{"value":"231.0","measurand":"Voltage","phase":"L1-N","unit":"V"}`, "a", "voltage", "L1", 231},
		{`{"value":"400","measurand":"Voltage","phase":"L3-L1","unit":"V"}`, "a", "voltage", "L31", 400},
		{`{"value":"230","measurand":"Voltage"}`, "a", "voltage", "", 230},
		{`{"value":"50.02","measurand":"Frequency"}`, "a", "frequency", "", 50.02},
		{`{"value":"30","measurand":"Temperature","unit":"Celsius","location":"Body"}`, "a/body", "temperature", "", 30},
		{`{"value":"30","measurand":"Temperature","unit":"Celcius"}`, "a", "temperature", "", 30},
		{`{"value":"86","measurand":"Temperature","unit":"Fahrenheit","location":"Cable"}`, "a/cable", "temperature", "", 30},
		{`{"value":"303.15","measurand":"Temperature","unit":"K","location":"EV"}`, "a/ev", "temperature", "", 30},
		{`{"value":"70.0","measurand":"SoC","unit":"Percent","location":"EV"}`, "a", "ev_soc", "", 70},
		{`{"value":"1","measurand":"Energy.Active.Import.Register","unit":"kWh","location":"Inlet"}`, "a/inlet", "ev_energy_register", "", 1000},
		{`{"value":" 42 ","measurand":"Voltage","context":"Transaction.Begin","format":"Raw","location":"Outlet"}`, "a", "voltage", "", 42},
	} {
		rs, skipped := mapOne(t, tc.sv)
		if len(skipped) != 0 || len(rs) != 1 {
			t.Errorf("%s: readings %+v, skipped %v", tc.sv, rs, skipped)
			continue
		}
		r := rs[0]
		if r.Asset != tc.asset || r.Quantity != tc.quantity || r.Phase != tc.phase || !near(r.Value, tc.value) ||
			r.Time != testNow.Add(-time.Minute).UnixMilli() {
			t.Errorf("%s: got %+v, want %s %s %s %g", tc.sv, r, tc.asset, tc.quantity, tc.phase, tc.value)
		}
	}
}

func TestMeasurandSkipped(t *testing.T) {
	for _, tc := range []struct{ sv, reason string }{
		{`{"value":"16.000","context":"CurrentMax","unit":"A"}`, `context "CurrentMax"`},
		{`{"value":"15.63","unit":"A"}`, `unit "A": not a unit of ev_energy_register`},
		{`{"value":"1200","measurand":"RPM"}`, `measurand "RPM" has no catalogue quantity`},
		{`{"value":"1","measurand":"Energy.Reactive.Import.Interval"}`, "no catalogue quantity"},
		{`{"value":"abc","measurand":"Voltage"}`, `value "abc" is not a number`},
		{`{"value":"NaN","measurand":"Voltage"}`, `not a number`},
		{`{"value":"1e400","measurand":"Voltage"}`, `not a number`},
		{`{"value":"50","measurand":"Frequency","phase":"L1"}`, "has no phases"},
		{`{"value":"5","measurand":"Current.Import","phase":"L1-L2"}`, `phase "L12"`},
		{`{"value":"5","measurand":"Voltage","phase":"L4"}`, `phase "L4" is not an OCPP 1.6 phase`},
		{`{"value":"5","measurand":"Voltage","location":"Roof"}`, `location "Roof"`},
		{`{"value":"AB12","format":"SignedData"}`, "signed meter values"},
		{`{"value":"-5","measurand":"Energy.Active.Import.Register"}`, "outside the plausible range"},
		{`{"value":"120","measurand":"SoC","unit":"Percent"}`, "outside the plausible range"},
		{`{"value":"5","measurand":"Power.Active.Import","unit":"kWh"}`, `unit "kWh"`},
	} {
		rs, skipped := mapOne(t, tc.sv)
		if len(rs) != 0 || len(skipped) != 1 || !strings.Contains(skipped[0].Error(), tc.reason) {
			t.Errorf("%s: readings %+v, skipped %v; want skipped with %q", tc.sv, rs, skipped, tc.reason)
		}
	}
}

// Import and export of a signed quantity at one instant give the net
// value; a repeated sample keeps the first.
func TestMeterValuesNetAndDuplicates(t *testing.T) {
	ts := types.NewDateTime(testNow.Add(-time.Minute))
	mv := []types.MeterValue{{Timestamp: ts, SampledValue: []types.SampledValue{
		{Value: "7", Measurand: types.MeasurandPowerActiveImport, Unit: "kW"},
		{Value: "2000", Measurand: types.MeasurandPowerActiveExport, Unit: "W"},
		{Value: "230", Measurand: types.MeasurandVoltage, Phase: types.PhaseL1N},
		{Value: "231", Measurand: types.MeasurandVoltage, Phase: types.PhaseL1N, Context: types.ReadingContextTrigger},
		{Value: "229", Measurand: types.MeasurandVoltage, Phase: types.PhaseL1}, // another spelling of the same series
	}}}
	rs, skipped := meterReadings(cim.Default(), "a", mv, testNow)
	if len(rs) != 2 || rs[0].Quantity != "ev_charging_power" || rs[0].Value != 5000 || rs[1].Value != 230 {
		t.Errorf("readings %+v", rs)
	}
	if len(skipped) != 2 {
		t.Errorf("skipped %v, want 2", skipped)
	}
}

// FuzzMeterValue maps arbitrary sampledValue JSON: no panic, and every
// reading is valid per the catalogue (it normalizes to itself), or the
// value is skipped with an error naming the sample.
func FuzzMeterValue(f *testing.F) {
	for _, s := range []string{
		`{"format":"Raw","location":"Outlet","context":"Sample.Periodic","measurand":"Energy.Active.Import.Register","unit":"Wh","value":"1052616.5"}`,
		`{"value":"15.630","context":"Sample.Periodic","unit":"A"}`,
		`{"value":"16.000","context":"CurrentMax","unit":"A"}`,
		`{"format":"Raw","location":"Outlet","context":"Trigger","phase":"L2-N","measurand":"Voltage","unit":"V","value":"246.0"}`,
		`{"format":"Raw","location":"Outlet","context":"Trigger","phase":"L1","measurand":"Current.Import","unit":"A","value":"0.0"}`,
		`{"format":"Raw","location":"Outlet","context":"Trigger","measurand":"Power.Offered","unit":"W","value":"2078"}`,
		`{"unit":"Percent","context":"Sample.Periodic","measurand":"SoC","location":"EV","value":"70.0"}`,
		`{"value":"86","measurand":"Temperature","unit":"Fahrenheit"}`,
		`{"value":"-1e308","measurand":"Power.Active.Export","unit":"kW"}`,
		`{"value":"0x1p-2","measurand":"Power.Factor"}`,
	} {
		f.Add(s)
	}
	cat := cim.Default()
	f.Fuzz(func(t *testing.T, s string) {
		var sv types.SampledValue
		if json.Unmarshal([]byte(s), &sv) != nil {
			return
		}
		mv := []types.MeterValue{{Timestamp: types.NewDateTime(testNow.Add(-time.Minute)), SampledValue: []types.SampledValue{sv, sv}}}
		rs, skipped := meterReadings(cat, "cp", mv, testNow)
		if len(rs) > 1 || len(rs)+len(skipped) != 2 {
			t.Fatalf("%d readings, %d skipped from two copies of one sample", len(rs), len(skipped))
		}
		for _, r := range rs {
			q, _ := cat.Lookup(r.Quantity)
			back, err := cat.Normalize(cim.Input{Asset: r.Asset, Quantity: r.Quantity, Phase: string(r.Phase),
				Unit: q.Unit, Time: r.Time, Value: r.Value}, testNow)
			if err != nil || back != r {
				t.Fatalf("reading %+v is not valid per the catalogue: %v", r, err)
			}
		}
		for _, err := range skipped {
			if !strings.HasPrefix(err.Error(), "meterValue[0].sampledValue[") {
				t.Fatalf("skip reason does not name the sample: %v", err)
			}
		}
	})
}

// FuzzFrame feeds arbitrary frames to the raw-frame code that runs before
// ocpp-go: no panic, and a valid JSON frame stays valid JSON.
func FuzzFrame(f *testing.F) {
	for _, name := range []string{"ocpp16-bootnotification-alfen.json", "ocpp16-metervalues-alfen-currentmax.json",
		"ocpp16-metervalues-wallbox.json", "ocpp16-statusnotification-alfen-faulted.json"} {
		f.Add([]byte(fixture(f, name)))
	}
	f.Add([]byte(`[2,"1","BootNotification",{"chargePointVendor":"","chargePointModel":"M"}]`))
	f.Add([]byte(`[2,"1","StopTransaction",{"transactionId":-9223372036854775808,"meterStop":1}]`))
	f.Add([]byte(`[2,"m1","Heartbeat",{`))
	cs, err := New(Config{}, Deps{Registry: registered("cp"), Sink: &memSink{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	cs.remember(ChargePoint{ID: "cp", Site: "s"})
	f.Fuzz(func(t *testing.T, data []byte) {
		typ, id, ok := frameID(data)
		if ok && (typ < 2 || typ > 4 || id == "") {
			t.Fatalf("frameID gave %d %q", typ, id)
		}
		out := cs.rewriteFrame("cp", data)
		if json.Valid(data) && !json.Valid(out) {
			t.Fatalf("rewrite broke a valid frame: %s -> %s", data, out)
		}
	})
}

func TestFrameID(t *testing.T) {
	for _, tc := range []struct {
		in  string
		typ int
		id  string
		ok  bool
	}{
		{`[2,"abc","Heartbeat",{`, 2, "abc", true},
		{`[ 3 , "x"`, 3, "x", true},
		{`[2,5,"Heartbeat",{}]`, 0, "", false},
		{`{"a":1}`, 0, "", false},
		{`[7,"x"]`, 0, "", false},
		{`[2,"` + strings.Repeat("x", 37) + `"]`, 0, "", false},
	} {
		typ, id, ok := frameID([]byte(tc.in))
		if typ != tc.typ || id != tc.id || ok != tc.ok {
			t.Errorf("frameID(%s) = %d %q %v", tc.in, typ, id, ok)
		}
	}
}

func TestNewRequiresDeps(t *testing.T) {
	if _, err := New(Config{}, Deps{Sink: &memSink{}}); err == nil {
		t.Error("no registry accepted")
	}
	if _, err := New(Config{}, Deps{Registry: memRegistry{}}); err == nil {
		t.Error("no sink accepted")
	}
	if _, err := New(Config{CertFile: "x"}, Deps{Registry: memRegistry{}, Sink: &memSink{}}); err == nil {
		t.Error("cert without key accepted")
	}
}
