package cim

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"math"
	"strconv"
	"testing"
)

type convertCase struct {
	quantity string
	value    float64
	unit     string
	want     float64
}

// convertCases holds every spelling that exactUnit and foldedUnit know;
// TestConvertCoversEveryUnit keeps it that way.
var convertCases = []convertCase{
	{"power_factor", 0.95, "1", 0.95},
	{"battery_soc", 55, "%", 55},
	{"battery_soc", 55, "Percent", 55},
	{"battery_soc", 55, "percent", 55},
	{"battery_soc", 55, "pct", 55},

	{"active_power", 63499, "mW", 63.499},
	{"active_power", -620.34, "W", -620.34},
	{"active_power", 1.5, "kW", 1500},
	{"active_power", 2, "MW", 2e6},
	{"active_power", 0.5, "GW", 5e8},
	{"active_power", 1.5, "KW", 1500},
	{"active_power", 1.5, "kw", 1500},
	{"active_power", 7, "w", 7},
	{"active_power", 0.25, "gw", 2.5e8},
	{"reactive_power", 10, "var", 10},
	{"reactive_power", 10, "VAr", 10},
	{"reactive_power", 10, "VAR", 10},
	{"reactive_power", 10, "Var", 10},
	{"reactive_power", 2, "kvar", 2000},
	{"reactive_power", 2, "kVAr", 2000},
	{"reactive_power", 2, "kVAR", 2000},
	{"reactive_power", 2, "KVAR", 2000},
	{"reactive_power", 3, "Mvar", 3e6},
	{"reactive_power", 3, "MVAr", 3e6},
	{"reactive_power", 3, "MVAR", 3e6},
	{"apparent_power", 400, "VA", 400},
	{"apparent_power", 400, "va", 400},
	{"apparent_power", 4, "kVA", 4000},
	{"apparent_power", 4, "kva", 4000},
	{"apparent_power", 4, "MVA", 4e6},

	{"energy_active_import", 6472513, "Wmin", 107875.21666666667}, // Shelly Plug S meters[0].total
	{"energy_active_import", 401472.9, "Wh", 401472.9},
	{"energy_active_import", 401472.9, "wh", 401472.9},
	{"energy_active_import", 12.068, "kWh", 12068},
	{"energy_active_import", 12.068, "KWH", 12068},
	{"energy_active_import", 12.068, "kwh", 12068},
	{"energy_active_import", 12.068, "KWh", 12068},
	{"energy_active_import", 1.5, "MWh", 1.5e6},
	{"energy_active_import", 1.5, "GWh", 1.5e9},
	{"energy_active_import", 1.5, "gwh", 1.5e9},
	{"energy_active_import", 3600, "J", 1},
	{"energy_active_import", 36, "kJ", 10},
	{"energy_active_import", 36, "kj", 10},
	{"energy_active_import", 3.6, "MJ", 1000},
	{"energy_expenditure", 4.1868, "kJ", 1},
	{"energy_expenditure", 250, "kcal", 250},
	{"energy_expenditure", 250, "KCAL", 250},
	{"energy_reactive_import", 5, "varh", 5},
	{"energy_reactive_import", 5, "VArh", 5},
	{"energy_reactive_import", 5, "VARh", 5},
	{"energy_reactive_import", 5, "VARH", 5},
	{"energy_reactive_import", 5, "kvarh", 5000},
	{"energy_reactive_import", 5, "kVArh", 5000},
	{"energy_reactive_import", 5, "kVARh", 5000},
	{"energy_reactive_import", 5, "KVARH", 5000},
	{"energy_reactive_import", 5, "Mvarh", 5e6},
	{"energy_reactive_import", 5, "MVArh", 5e6},
	{"energy_reactive_import", 5, "MVARh", 5e6},

	{"voltage", 230577, "mV", 230.577},
	{"voltage", 231.79, "V", 231.79},
	{"voltage", 231.79, "v", 231.79},
	{"voltage", 20, "kV", 20000},
	{"voltage", 20, "KV", 20000},
	{"voltage", 0.11, "MV", 110000},
	{"current", 500, "µA", 0.0005},
	{"current", 500, "μA", 0.0005},
	{"current", 500, "uA", 0.0005},
	{"current", 296, "mA", 0.296},
	{"current", -1.5, "A", -1.5},
	{"current", 1.5, "a", 1.5},
	{"current", 2, "kA", 2000},
	{"current", 2, "KA", 2000},
	{"frequency", 50012, "mHz", 50.012},
	{"frequency", 49.98, "Hz", 49.98},
	{"frequency", 49.98, "HZ", 49.98},
	{"frequency", 0.05, "kHz", 50},
	{"frequency", 0.05, "KHZ", 50},
	{"frequency", 0.00005, "MHz", 50},

	{"temperature", 21.5, "°C", 21.5},
	{"temperature", 21.5, "℃", 21.5},
	{"temperature", 21.5, "degC", 21.5},
	{"temperature", 21.5, "DegC", 21.5},
	{"temperature", 21.5, "C", 21.5},
	{"temperature", 21.5, "Celsius", 21.5},
	{"temperature", 21.5, "celsius", 21.5},
	{"temperature", 21.5, "° C", 21.5},
	{"temperature", 294.65, "K", 21.5},
	{"temperature", 294.65, "Kelvin", 21.5},
	{"temperature", 294.65, "kelvin", 21.5},
	{"temperature", 212, "°F", 100},
	{"temperature", 212, "℉", 100},
	{"temperature", 32, "degF", 0},
	{"temperature", 32, "degf", 0},
	{"temperature", -40, "F", -40},
	{"temperature", 50, "Fahrenheit", 10},
	{"temperature", 50, "fahrenheit", 10},
	{"skin_temperature", 309.15, "K", 36},

	{"co2", 612, "ppm", 612},
	{"co2", 612, "PPM", 612},
	{"co2", 612000, "ppb", 612},
	{"co2", 612000, "PPB", 612},
	{"pm2_5", 12, "µg/m³", 12},
	{"pm2_5", 12, "μg/m³", 12},
	{"pm2_5", 12, "ug/m3", 12},
	{"pm2_5", 12, "µg/m3", 12},
	{"pm2_5", 12, "ug/m³", 12},
	{"pm10", 12000, "ng/m³", 12},
	{"pm10", 12000, "ng/m3", 12},
	{"pm10", 0.012, "mg/m³", 12},
	{"pm10", 0.012, "mg/m3", 12},
	{"noise", 42, "dB", 42},
	{"noise", 42, "dBA", 42},
	{"noise", 42, "dB(A)", 42},
	{"noise", 42, "db", 42},
	{"noise", 42, "dba", 42},
	{"noise", 42, "DB(A)", 42},
	{"illuminance", 66, "lx", 66},
	{"illuminance", 66, "lux", 66},
	{"illuminance", 66, "Lux", 66},
	{"illuminance", 66, "LX", 66},

	{"pressure", 101325, "Pa", 1013.25},
	{"pressure", 101325, "pa", 1013.25},
	{"pressure", 1013.25, "hPa", 1013.25},
	{"pressure", 1013.25, "HPA", 1013.25},
	{"pressure", 1013.25, "mbar", 1013.25},
	{"pressure", 1013.25, "MBAR", 1013.25},
	{"pressure", 1013.25, "mb", 1013.25},
	{"pressure", 101.325, "kPa", 1013.25},
	{"pressure", 101.325, "kpa", 1013.25},
	{"pressure", 1.01325, "bar", 1013.25},
	{"pressure", 1.01325, "Bar", 1013.25},

	{"heart_rate", 72, "1/min", 72},
	{"heart_rate", 72, "/min", 72},
	{"heart_rate", 72, "bpm", 72},
	{"heart_rate", 72, "BPM", 72},
	{"heart_rate", 72, "min⁻¹", 72},
	{"heart_rate", 72, "min-1", 72},
	{"heart_rate", 72, "1/MIN", 72},
	{"heart_rate", 72, "/Min", 72},
	{"heart_rate", 72, "MIN-1", 72},
	{"rr_interval", 850000, "µs", 850},
	{"rr_interval", 850000, "μs", 850},
	{"rr_interval", 850000, "us", 850},
	{"rr_interval", 850, "ms", 850},
	{"rr_interval", 850, "MS", 850},
	{"rr_interval", 0.85, "s", 850},
	{"rr_interval", 0.85, "sec", 850},
	{"rr_interval", 0.85, "S", 850},
	{"heart_rate_variability", 0.001, "min", 60},
	{"heart_rate_variability", 0.001, "MIN", 60},

	{"electrosmog_hf", 1, "W/m²", 1e6},
	{"electrosmog_hf", 1, "W/m2", 1e6},
	{"electrosmog_hf", 2, "mW/m²", 2000},
	{"electrosmog_hf", 25, "µW/m²", 25},
	{"electrosmog_hf", 25, "μW/m²", 25},
	{"electrosmog_hf", 25, "uW/m2", 25},
	{"metabolic_rate", 116.4, "W/m²", 2},
	{"metabolic_rate", 1.2, "met", 1.2},
	{"metabolic_rate", 1.2, "MET", 1.2},
	{"electrosmog_lf_electric", 12, "V/m", 12},
	{"electrosmog_lf_electric", 12, "v/m", 12},
	{"electrosmog_lf_electric", 12000, "mV/m", 12},
	{"electrosmog_lf_electric", 1.2, "kV/m", 1200},
	{"electrosmog_lf_electric", 1.2, "KV/M", 1200},
	{"electrosmog_lf_magnetic", 80, "nT", 80},
	{"electrosmog_lf_magnetic", 80, "NT", 80},
	{"electrosmog_lf_magnetic", 0.2, "µT", 200},
	{"electrosmog_lf_magnetic", 0.2, "μT", 200},
	{"electrosmog_lf_magnetic", 0.2, "uT", 200},
	{"electrosmog_lf_magnetic", 0.002, "mT", 2000},
	{"electrosmog_lf_magnetic", 2, "mG", 200},

	{"active_power", 42, "", 42}, // the empty unit is the canonical one
}

func TestConvert(t *testing.T) {
	c := Default()
	for _, tt := range convertCases {
		q, ok := c.Lookup(tt.quantity)
		if !ok {
			t.Fatalf("quantity %s missing", tt.quantity)
		}
		got, err := q.Convert(tt.value, tt.unit)
		if err != nil {
			t.Errorf("%s: Convert(%g, %q): %v", tt.quantity, tt.value, tt.unit, err)
			continue
		}
		if !approxEqual(got, tt.want) {
			t.Errorf("%s: Convert(%g, %q) = %.17g, want %g", tt.quantity, tt.value, tt.unit, got, tt.want)
		}
	}
}

func approxEqual(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-12*math.Max(math.Abs(a), math.Abs(b))
}

func TestConvertExactForDecimalPrefixes(t *testing.T) {
	// Multiplying by an exact power of ten must not add noise that would
	// show up in stored values (12.068 kWh is 12068 Wh, not 12068.000000000002).
	q, _ := Default().Lookup("energy_active_import")
	if got, _ := q.Convert(12.068, "kWh"); got != 12068 {
		t.Errorf("12.068 kWh = %.17g Wh", got)
	}
}

func TestConvertErrors(t *testing.T) {
	c := Default()
	tests := []struct {
		quantity, unit, reason string
	}{
		{"active_power", "kWh", "not a unit of active_power (canonical unit W)"},
		{"energy_active_import", "kW", "not a unit of energy_active_import (canonical unit Wh)"},
		{"active_power", "VA", "not a unit of active_power (canonical unit W)"},
		{"reactive_power", "W", "not a unit of reactive_power (canonical unit var)"},
		{"power_factor", "%", "not a unit of power_factor (canonical unit 1)"},
		{"battery_soc", "1", "not a unit of battery_soc (canonical unit %)"}, // no fractions for %
		{"heart_rate", "Hz", "not a unit of heart_rate (canonical unit 1/min)"},
		{"active_power", "mw", "unknown unit"}, // milli or mega?
		{"voltage", "mv", "unknown unit"},
		{"current", "ma", "unknown unit"},
		{"frequency", "mhz", "unknown unit"},
		{"active_power", "Mw", "unknown unit"},
		{"active_power", "furlong", "unknown unit"},
		{"active_power", "kilowatt-hours-per-fortnight-squared", "unknown unit"},
		{"temperature", "k", "unknown unit"},
		{"temperature", "\xff", "unknown unit"},
	}
	for _, tt := range tests {
		q, _ := c.Lookup(tt.quantity)
		_, err := q.Convert(1, tt.unit)
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%s: Convert(1, %q) = %v, want a *FieldError", tt.quantity, tt.unit, err)
			continue
		}
		if fe.Field != "unit" || fe.Value != tt.unit || fe.Reason != tt.reason {
			t.Errorf("%s: Convert(1, %q) = %+v, want reason %q", tt.quantity, tt.unit, *fe, tt.reason)
		}
	}
	odd := Quantity{Name: "odd", Unit: "furlong"}
	if _, err := odd.Convert(1, "W"); err == nil {
		t.Error("a quantity with an unknown canonical unit converted W")
	}
	if v, err := odd.Convert(1, "furlong"); err != nil || v != 1 {
		t.Errorf("canonical unit of a custom quantity: %g, %v", v, err)
	}
}

// TestConvertCoversEveryUnit reads unit.go and checks that convertCases
// uses every spelling listed there, so a new unit cannot go untested.
func TestConvertCoversEveryUnit(t *testing.T) {
	tested := map[string]bool{} // spellings, for exactUnit
	folded := map[string]bool{} // folded spellings, for foldedUnit
	for _, tt := range convertCases {
		tested[tt.unit] = true
		if _, exact := exactUnit(tt.unit); exact {
			continue
		}
		if f, ok := foldUnit(tt.unit, make([]byte, 0, 24)); ok {
			folded[string(f)] = true
		}
	}
	f, err := parser.ParseFile(token.NewFileSet(), "unit.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || (fn.Name.Name != "exactUnit" && fn.Name.Name != "foldedUnit") {
			continue
		}
		ast.Inspect(fn.Body, func(node ast.Node) bool {
			cc, ok := node.(*ast.CaseClause)
			if !ok {
				return true
			}
			for _, e := range cc.List {
				lit, ok := e.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				n++
				if fn.Name.Name == "exactUnit" && !tested[s] || fn.Name.Name == "foldedUnit" && !folded[s] {
					t.Errorf("%s: unit %q has no case in convertCases", fn.Name.Name, s)
				}
			}
			return true
		})
	}
	if n < 100 {
		t.Errorf("found only %d unit spellings in unit.go; did the parser miss the functions?", n)
	}
}

func TestConvertDoesNotAllocate(t *testing.T) {
	q, _ := Default().Lookup("energy_active_import")
	for _, unit := range []string{"kWh", "KWH", "Wh", ""} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := q.Convert(1, unit); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("Convert(1, %q) allocates %.0f times", unit, allocs)
		}
	}
}

func TestConvertToInvertsConvert(t *testing.T) {
	cat := Default()
	for _, c := range convertCases {
		q, _ := cat.Lookup(c.quantity)
		canon, err := q.Convert(c.value, c.unit)
		if err != nil {
			continue
		}
		back, err := q.ConvertTo(canon, c.unit)
		if err != nil || math.Abs(back-c.value) > 1e-9*math.Max(1, math.Abs(c.value)) {
			t.Errorf("%s: ConvertTo(Convert(%v %s)) = %v, %v", c.quantity, c.value, c.unit, back, err)
		}
	}
}
