package cim

import (
	"math"
	"regexp"
	"strings"
	"testing"
)

var (
	snakeCase   = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	obisPattern = regexp.MustCompile(`^[01]-[0-9]+:[0-9]+\.[0-9]+\.[0-9]+$`)
	rtPattern   = regexp.MustCompile(`^-?[0-9]+(\.-?[0-9]+){17}$`) // 18 fields
)

// unitCodes are the UN/CEFACT Rec. 20 codes of CIM-NOTES.md §2.8 for the
// canonical units that have one.
var unitCodes = map[string]string{
	"W": "WTT", "Wh": "WHR", "var": "D44", "VA": "D46", "V": "VLT", "A": "AMP", "Hz": "HTZ",
	"°C": "CEL", "%": "P1", "1": "C62", "ppm": "59", "µg/m³": "GQ", "dB": "2N", "lx": "LUX",
	"hPa": "A97", "1/min": "BPM", "ms": "C26", "kcal": "E14",
}

func TestDefaultCatalogueInvariants(t *testing.T) {
	c := Default()
	qs := c.Quantities()
	if len(qs) < 50 {
		t.Fatalf("catalogue has %d quantities, want at least 50", len(qs))
	}
	seen := map[string]bool{}
	for _, q := range qs {
		t.Run(q.Name, func(t *testing.T) {
			if !snakeCase.MatchString(q.Name) {
				t.Errorf("name %q is not snake_case", q.Name)
			}
			if seen[q.Name] {
				t.Errorf("name %q twice", q.Name)
			}
			seen[q.Name] = true
			for _, suffix := range []string{"_l1", "_l2", "_l3", "_n", "_l12", "_l23", "_l31"} {
				if strings.HasSuffix(q.Name, suffix) {
					t.Errorf("name %q has a phase suffix; the phase is a field", q.Name)
				}
			}
			if q.Unit == "" || q.Description == "" {
				t.Errorf("unit %q, description %q: both are required", q.Unit, q.Description)
			}
			if _, ok := lookupUnit(q.Unit); !ok {
				t.Errorf("canonical unit %q is not in the unit table", q.Unit)
			}
			switch q.Kind {
			case Instantaneous, Cumulative, Delta, State, Event:
			default:
				t.Errorf("kind %q", q.Kind)
			}
			switch q.Class {
			case Technical, Personal, SpecialHealth:
			default:
				t.Errorf("class %q", q.Class)
			}
			discrete := q.Kind == State || q.Kind == Event
			if discrete != (len(q.States) > 0) {
				t.Errorf("kind %s with %d states: States belong to state and event quantities only, and they need them", q.Kind, len(q.States))
			}
			if discrete && (q.Unit != "1" || q.Phased) {
				t.Errorf("state quantity has unit %q, phased %v; want unit 1, not phased", q.Unit, q.Phased)
			}
			states := map[string]bool{}
			for _, s := range q.States {
				if !snakeCase.MatchString(s) || states[s] {
					t.Errorf("state %q is not snake_case or is repeated", s)
				}
				states[s] = true
			}
			if !(q.Min < q.Max) {
				t.Errorf("bounds [%g, %g]: want Min < Max", q.Min, q.Max)
			}
			if discrete && (q.Min != 0 || q.Max != float64(len(q.States)-1)) {
				t.Errorf("bounds [%g, %g], want the state codes [0, %d]", q.Min, q.Max, len(q.States)-1)
			}
			if (q.Kind == Cumulative || q.Kind == Delta) && q.Min < 0 {
				t.Errorf("%s quantity may be negative (Min %g)", q.Kind, q.Min)
			}
			for _, v := range []float64{q.Min, q.Max, (q.Min + q.Max) / 2} {
				if discrete {
					v = math.Round(v)
				}
				if err := q.CheckValue(v); err != nil {
					t.Errorf("CheckValue(%g): %v", v, err)
				}
			}
			for _, v := range []float64{q.Min - 1, q.Max + 1, math.NaN(), math.Inf(1), math.Inf(-1)} {
				if q.CheckValue(v) == nil {
					t.Errorf("CheckValue(%g) accepted an impossible value", v)
				}
			}
			if q.OBIS != "" && !obisPattern.MatchString(q.OBIS) {
				t.Errorf("OBIS %q is not A-B:C.D.E", q.OBIS)
			}
			if q.ReadingType != "" && !rtPattern.MatchString(q.ReadingType) {
				t.Errorf("ReadingType %q is not an 18-field mRID", q.ReadingType)
			}
			if q.SAREF != "" && !strings.HasPrefix(q.SAREF, "saref:") {
				t.Errorf("SAREF %q has no saref: prefix", q.SAREF)
			}
			if code, ok := unitCodes[q.Unit]; ok && q.UNCEFACT != code {
				t.Errorf("UN/CEFACT code %q for unit %s, want %q", q.UNCEFACT, q.Unit, code)
			}
			if got := q.Restricted(); got != (q.Class == SpecialHealth) {
				t.Errorf("Restricted() = %v for class %s", got, q.Class)
			}
		})
	}
}

func TestDefaultCatalogueCoverage(t *testing.T) {
	c := Default()
	// The brief's list; the catalogue may hold more.
	want := strings.Fields(`active_power active_power_import active_power_export reactive_power
		apparent_power energy_active_import energy_active_export energy_active_import_interval
		energy_active_export_interval energy_reactive_import energy_reactive_export voltage current
		frequency power_factor thd_voltage thd_current battery_power battery_soc battery_energy_stored
		battery_soh battery_state battery_voltage battery_current pv_power pv_energy_generated
		ev_charging_power ev_energy_register ev_session_energy ev_session_state ev_current_offered ev_soc
		temperature humidity co2 pm2_5 pm10 voc_index noise illuminance pressure occupancy
		door_window_state button_event relay_state heart_rate heart_rate_variability rr_interval
		skin_temperature energy_expenditure metabolic_rate thermal_comfort_pmv
		electrosmog_hf electrosmog_lf_electric electrosmog_lf_magnetic grid_state device_battery_level`)
	for _, name := range want {
		if _, ok := c.Lookup(name); !ok {
			t.Errorf("quantity %q missing", name)
		}
	}
}

func TestDefaultCatalogueEntries(t *testing.T) {
	c := Default()
	tests := []struct {
		name   string
		unit   string
		kind   Kind
		class  DataClass
		phased bool
		obis   string
		states string
	}{
		{"active_power", "W", Instantaneous, Technical, true, "1-0:16.7.0", ""},
		{"reactive_power", "var", Instantaneous, Technical, true, "", ""},
		{"apparent_power", "VA", Instantaneous, Technical, true, "1-0:9.7.0", ""},
		{"energy_active_import", "Wh", Cumulative, Technical, true, "1-0:1.8.0", ""},
		{"energy_active_import_interval", "Wh", Delta, Personal, false, "", ""},
		{"energy_reactive_export", "varh", Cumulative, Technical, true, "1-0:4.8.0", ""},
		{"voltage", "V", Instantaneous, Technical, true, "1-0:12.7.0", ""},
		{"current", "A", Instantaneous, Technical, true, "1-0:11.7.0", ""},
		{"frequency", "Hz", Instantaneous, Technical, false, "1-0:14.7.0", ""},
		{"power_factor", "1", Instantaneous, Technical, true, "1-0:13.7.0", ""},
		{"battery_soc", "%", Instantaneous, Technical, false, "", ""},
		{"battery_state", "1", State, Technical, false, "", "idle charging discharging full empty"},
		{"ev_session_state", "1", State, Technical, false, "",
			"available preparing charging suspended_ev suspended_evse finishing reserved unavailable faulted"},
		{"ev_soc", "%", Instantaneous, Personal, false, "", ""},
		{"temperature", "°C", Instantaneous, Technical, false, "0-0:96.9.0", ""},
		{"pressure", "hPa", Instantaneous, Technical, false, "0-0:96.9.1", ""},
		{"occupancy", "1", State, Personal, false, "", "vacant occupied"},
		{"door_window_state", "1", State, Technical, false, "", "closed open"},
		{"relay_state", "1", State, Technical, false, "0-0:96.3.10", "off on"},
		{"button_event", "1", Event, Technical, false, "", "press long_press double_press triple_press release"},
		{"heart_rate", "1/min", Instantaneous, SpecialHealth, false, "", ""},
		{"rr_interval", "ms", Instantaneous, SpecialHealth, false, "", ""},
		{"energy_expenditure", "kcal", Cumulative, SpecialHealth, false, "", ""},
		{"thermal_comfort_pmv", "1", Instantaneous, SpecialHealth, false, "", ""},
	}
	for _, tt := range tests {
		q, ok := c.Lookup(tt.name)
		if !ok {
			t.Errorf("%s missing", tt.name)
			continue
		}
		if q.Unit != tt.unit || q.Kind != tt.kind || q.Class != tt.class || q.Phased != tt.phased || q.OBIS != tt.obis {
			t.Errorf("%s = {%s %s %s phased=%v %q}, want {%s %s %s phased=%v %q}", tt.name,
				q.Unit, q.Kind, q.Class, q.Phased, q.OBIS, tt.unit, tt.kind, tt.class, tt.phased, tt.obis)
		}
		if got := strings.Join(q.States, " "); got != tt.states {
			t.Errorf("%s states %q, want %q", tt.name, got, tt.states)
		}
	}
}

func TestAllowsPhase(t *testing.T) {
	c := Default()
	tests := []struct {
		quantity string
		allowed  string // space-separated, "total" for the total
	}{
		{"active_power", "total L1 L2 L3"},
		{"power_factor", "total L1 L2 L3"},
		{"current", "total L1 L2 L3 N"},
		{"voltage", "total L1 L2 L3 N L12 L23 L31"},
		{"frequency", "total"},
		{"battery_voltage", "total"},
		{"relay_state", "total"},
	}
	for _, tt := range tests {
		q, _ := c.Lookup(tt.quantity)
		var got []string
		for _, p := range q.Phases() {
			got = append(got, p.String())
		}
		if strings.Join(got, " ") != tt.allowed {
			t.Errorf("%s phases = %v, want %s", tt.quantity, got, tt.allowed)
		}
		if q.AllowsPhase(Phase("L4")) {
			t.Errorf("%s allows an unknown phase", tt.quantity)
		}
	}
}

func TestPhaseOBIS(t *testing.T) {
	c := Default()
	tests := []struct {
		quantity string
		phase    Phase
		want     string
	}{
		{"active_power", PhaseTotal, "1-0:16.7.0"},
		{"active_power", PhaseL1, "1-0:36.7.0"},
		{"active_power", PhaseL2, "1-0:56.7.0"},
		{"active_power", PhaseL3, "1-0:76.7.0"},
		{"active_power_import", PhaseL1, "1-0:21.7.0"},
		{"active_power_export", PhaseL3, "1-0:62.7.0"},
		{"apparent_power", PhaseL2, "1-0:49.7.0"},
		{"energy_active_import", PhaseL1, "1-0:21.8.0"},
		{"energy_active_export", PhaseL2, "1-0:42.8.0"},
		{"voltage", PhaseL1, "1-0:32.7.0"},
		{"voltage", PhaseL2, "1-0:52.7.0"},
		{"voltage", PhaseL3, "1-0:72.7.0"},
		{"voltage", PhaseN, "1-0:92.7.0"},
		{"voltage", PhaseL12, ""},
		{"current", PhaseL1, "1-0:31.7.0"},
		{"current", PhaseN, "1-0:91.7.0"},
		{"power_factor", PhaseL3, "1-0:73.7.0"},
		{"active_power", PhaseN, ""},
		{"frequency", PhaseL1, ""},      // not phased
		{"reactive_power", PhaseL1, ""}, // no total code to derive from
		{"temperature", PhaseTotal, "0-0:96.9.0"},
		{"thd_voltage", PhaseL1, ""},
	}
	for _, tt := range tests {
		q, _ := c.Lookup(tt.quantity)
		if got := q.PhaseOBIS(tt.phase); got != tt.want {
			t.Errorf("%s.PhaseOBIS(%s) = %q, want %q", tt.quantity, tt.phase, got, tt.want)
		}
	}
}

func TestCatalogueIsImmutable(t *testing.T) {
	states := []string{"off", "on"}
	c, err := NewCatalogue([]Quantity{{Name: "relay_state", Unit: "1", Kind: State, States: states}})
	if err != nil {
		t.Fatal(err)
	}
	states[0] = "changed"
	qs := c.Quantities()
	qs[0].Name = "changed"
	if q, ok := c.Lookup("relay_state"); !ok || q.States[0] != "off" {
		t.Errorf("catalogue changed through the caller's slices: %+v", q)
	}
	if Default() == Default() {
		t.Error("Default returned the same catalogue twice; want a fresh one per call")
	}
}

func TestNewCatalogueDuplicate(t *testing.T) {
	_, err := NewCatalogue([]Quantity{{Name: "a", Unit: "W"}, {Name: "a", Unit: "W"}})
	if err == nil || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("err = %v, want a duplicate-name error", err)
	}
}

func TestCheckValueHugeStateCode(t *testing.T) {
	// int(1e300) wraps on amd64; the state check must not accept it.
	q := Quantity{Name: "relay_state", Unit: "1", Kind: State, States: []string{"off", "on"}}
	for _, v := range []float64{1e300, -1e300, 2, -1, 0.5} {
		if q.CheckValue(v) == nil {
			t.Errorf("CheckValue(%g) accepted a non-code", v)
		}
	}
}

func TestParseValueStates(t *testing.T) {
	q, _ := Default().Lookup("door_window_state")
	for in, want := range map[string]float64{"open": 1, "Closed": 0, " 1 ": 1} {
		got, err := q.ParseValue(in)
		if err != nil || got != want {
			t.Errorf("ParseValue(%q) = %g, %v; want %g", in, got, err, want)
		}
	}
	if _, err := q.ParseValue("ajar"); err == nil {
		t.Error("ParseValue(ajar) accepted an unknown state")
	}
}

func TestParsePhaseTotalAnyCase(t *testing.T) {
	for _, s := range []string{"", "total", "Total", "TOTAL", "tOtAl"} {
		if p, err := ParsePhase(s); err != nil || p != PhaseTotal {
			t.Errorf("ParsePhase(%q) = %q, %v", s, p, err)
		}
	}
}
