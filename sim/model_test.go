package sim

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/profile"
)

// day0 is a Monday in June at midnight UTC.
var day0 = time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC)

func householdChannels() []Channel {
	return []Channel{
		{"active_power", ""}, {"active_power", cim.PhaseL1}, {"active_power", cim.PhaseL2}, {"active_power", cim.PhaseL3},
		{"energy_active_import", ""}, {"energy_active_export", ""},
		{"voltage", cim.PhaseL1}, {"voltage", cim.PhaseL2}, {"voltage", cim.PhaseL3},
		{"current", cim.PhaseL1}, {"current", cim.PhaseL2}, {"current", cim.PhaseL3},
		{"frequency", ""}, {"power_factor", ""}, {"reactive_power", ""}, {"apparent_power", ""},
		{"pv_power", ""}, {"pv_energy_generated", ""},
		{"battery_power", ""}, {"battery_soc", ""}, {"battery_energy_stored", ""}, {"battery_state", ""},
	}
}

// allChannels is every catalogue quantity on every phase it allows.
func allChannels(cat *cim.Catalogue) []Channel {
	var out []Channel
	for _, q := range cat.Quantities() {
		for _, p := range q.Phases() {
			out = append(out, Channel{q.Name, p})
		}
	}
	return out
}

func TestChannelsOf(t *testing.T) {
	const yaml = `name: test-meter
title: Test meter
asset_type: smart_meter
protocol: modbus
modbus:
  points:
    - {register: 0, type: int32, quantity: active_power, unit: W}
    - {register: 2, type: int32, quantity: voltage, phase: L1, unit: V}
    - {register: 4, type: uint32, quantity: energy_active_import, unit: kWh}
    - {register: 6, type: int32, quantity: active_power, unit: kW}
    - {register: 8, type: int32, quantity: voltage, phase: L2, unit: V}
`
	p, err := profile.Parse([]byte(yaml), "test.yaml", cim.Default())
	if err != nil {
		t.Fatal(err)
	}
	got := ChannelsOf(p)
	want := []Channel{{"active_power", ""}, {"voltage", cim.PhaseL1}, {"energy_active_import", ""}, {"voltage", cim.PhaseL2}}
	if !slices.Equal(got, want) {
		t.Fatalf("ChannelsOf = %v, want %v", got, want)
	}
	if ChannelsOf(nil) != nil {
		t.Fatal("ChannelsOf(nil) not empty")
	}
}

// Every embedded profile gets a kind and frames that carry all its channels.
func TestEmbeddedProfilesSimulate(t *testing.T) {
	cat := cim.Default()
	set, err := profile.Embedded(cat)
	if err != nil {
		t.Skipf("embedded profiles do not load (being edited?): %v", err)
	}
	for _, p := range set.All() {
		chs := ChannelsOf(p)
		m := NewModel(ModelConfig{Seed: 1, Channels: chs, Catalogue: cat, Cycle: time.Minute, Kind: KindOf(p)})
		t.Logf("%s: kind %s, %d channels", p.Name, m.Kind(), len(chs))
		for i := range 24 * 60 {
			f := m.Frame(day0.Add(time.Duration(i) * time.Minute))
			if len(f.Values) != len(chs) {
				t.Fatalf("%s: %d values for %d channels", p.Name, len(f.Values), len(chs))
			}
			for ch, v := range f.Values {
				q, _ := cat.Lookup(ch.Quantity)
				if err := q.CheckValue(v); err != nil {
					t.Fatalf("%s %v: %v", p.Name, ch, err)
				}
			}
		}
	}
}

func TestGuessKind(t *testing.T) {
	for _, tc := range []struct {
		chs  []Channel
		want string
	}{
		{[]Channel{{"active_power", ""}}, KindHousehold},
		{householdChannels(), KindHousehold},
		{[]Channel{{"pv_power", ""}, {"pv_energy_generated", ""}}, KindPV},
		{[]Channel{{"battery_power", ""}, {"battery_soc", ""}}, KindBattery},
		{[]Channel{{"ev_charging_power", ""}, {"active_power", ""}}, KindEV},
		{[]Channel{{"temperature", ""}, {"humidity", ""}}, KindEnvironment},
		{[]Channel{{"relay_state", ""}, {"active_power", ""}}, KindHousehold},
	} {
		if got := GuessKind(tc.chs); got != tc.want {
			t.Errorf("GuessKind(%v) = %q, want %q", tc.chs, got, tc.want)
		}
	}
}

func TestDeterministic(t *testing.T) {
	cfg := ModelConfig{Seed: 42, Channels: allChannels(cim.Default()), Start: day0}
	a, b := NewModel(cfg), NewModel(cfg)
	cfg.Seed = 43
	other := NewModel(cfg)
	differs := false
	for i := range 3000 {
		tm := day0.Add(time.Duration(i) * 7 * time.Second)
		fa, fb, fo := a.Frame(tm), b.Frame(tm), other.Frame(tm)
		if fa.Cycle != fb.Cycle || !fa.Start.Equal(fb.Start) {
			t.Fatalf("cycle %d/%d", fa.Cycle, fb.Cycle)
		}
		for ch, v := range fa.Values {
			if w := fb.Values[ch]; w != v && !(math.IsNaN(v) && math.IsNaN(w)) {
				t.Fatalf("cycle %d %v: %v vs %v", fa.Cycle, ch, v, w)
			}
			if fo.Values[ch] != v {
				differs = true
			}
		}
	}
	if !differs {
		t.Error("another seed gave the same frames")
	}
}

// A model asked every cycle and one asked now and then agree on the
// cycles both were asked for: skipped cycles are still stepped.
func TestSkippedCyclesAreStepped(t *testing.T) {
	cfg := ModelConfig{Seed: 7, Channels: householdChannels(), Start: day0, TimeScale: 30}
	every, sparse := NewModel(cfg), NewModel(cfg)
	for i := range 5000 {
		tm := day0.Add(time.Duration(i) * time.Second)
		fe := every.Frame(tm)
		if i%13 != 0 {
			continue
		}
		fs := sparse.Frame(tm)
		if fs.Cycle != fe.Cycle {
			t.Fatalf("cycle %d vs %d", fs.Cycle, fe.Cycle)
		}
		for ch, v := range fe.Values {
			if fs.Values[ch] != v {
				t.Fatalf("cycle %d %v: every %v, sparse %v", fe.Cycle, ch, v, fs.Values[ch])
			}
		}
	}
}

func TestFrameEarlierCycleReturnsLatest(t *testing.T) {
	m := NewModel(ModelConfig{Seed: 1, Channels: householdChannels()})
	f1 := m.Frame(day0.Add(10 * time.Second))
	f0 := m.Frame(day0)
	if f0.Cycle != f1.Cycle || f0.Values[Channel{"energy_active_import", ""}] != f1.Values[Channel{"energy_active_import", ""}] {
		t.Fatalf("earlier call gave cycle %d, want the latest %d", f0.Cycle, f1.Cycle)
	}
	if want := day0.Add(10 * time.Second).Unix(); f1.Cycle != want || f1.Start.Unix() != want {
		t.Fatalf("cycle %d start %v, want %d", f1.Cycle, f1.Start, want)
	}
}

func TestCountersNeverDecrease(t *testing.T) {
	cat := cim.Default()
	var counters []Channel
	for _, ch := range allChannels(cat) {
		if q, _ := cat.Lookup(ch.Quantity); q.Kind == cim.Cumulative {
			counters = append(counters, ch)
		}
	}
	for _, kind := range []string{KindHousehold, KindPV, KindEV, KindTransformer} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			m := NewModel(ModelConfig{Seed: 3, Channels: counters, Kind: kind, TimeScale: 60})
			r := rand.New(rand.NewPCG(1, 2))
			prev := map[Channel]float64{}
			grew := map[Channel]bool{}
			tm := day0
			first := m.Frame(tm).Values[Channel{"energy_active_import", ""}]
			n := 100_000
			if kind != KindHousehold {
				n = 20_000
			}
			for range n {
				tm = tm.Add(time.Duration(1+r.IntN(3)) * time.Second) // skip some cycles
				f := m.Frame(tm)
				for ch, v := range f.Values {
					if p, ok := prev[ch]; ok {
						if v < p {
							t.Fatalf("%s %v decreased at cycle %d: %v → %v", kind, ch, f.Cycle, p, v)
						}
						if v > p {
							grew[ch] = true
						}
					}
					prev[ch] = v
				}
			}
			for _, ch := range []Channel{{"energy_active_import", ""}, {"energy_active_import", cim.PhaseL1}} {
				if kind == KindHousehold && !grew[ch] {
					t.Errorf("%s %v never grew", kind, ch)
				}
			}
			if kind == KindPV && !grew[Channel{"pv_energy_generated", ""}] {
				t.Error("pv_energy_generated never grew")
			}
			if kind == KindEV && !grew[Channel{"ev_energy_register", ""}] {
				t.Error("ev_energy_register never grew")
			}
			if first < 100e3 || first > 900e3 {
				t.Errorf("%s energy_active_import baseline %v Wh, want 100–900 kWh", kind, first)
			}
			days := tm.Sub(day0).Hours() * 60 / 24
			if perDay := (prev[Channel{"energy_active_import", ""}] - first) / days; kind == KindHousehold && (perDay < 2e3 || perDay > 25e3) {
				t.Errorf("household imports %v Wh a day", perDay)
			}
		})
	}
}

// A gap too long to step is bridged: counters grow about as much as the
// stepped time suggests, and never go back.
func TestLongGapExtrapolatesCounters(t *testing.T) {
	chs := []Channel{{"energy_active_import", ""}}
	m := NewModel(ModelConfig{Seed: 5, Channels: chs, Cycle: time.Minute})
	e0 := m.Frame(day0).Values[chs[0]]
	e1 := m.Frame(day0.Add(maxCatchUp * 3 * time.Minute)).Values[chs[0]]
	days := float64(maxCatchUp*3) / 1440
	perDay := (e1 - e0) / days
	if perDay < 2000 || perDay > 60000 {
		t.Fatalf("%v Wh per day over a bridged gap, want a household's", perDay)
	}
}

// Over a simulated week every catalogue quantity on every phase stays
// inside its plausible range, for every kind.
func TestWeekOfEveryQuantityIsPlausible(t *testing.T) {
	cat := cim.Default()
	chs := allChannels(cat)
	qs := map[string]cim.Quantity{}
	for _, q := range cat.Quantities() {
		qs[q.Name] = q
	}
	for _, kind := range []string{"", KindHousehold, KindPV, KindBattery, KindEV, KindTransformer, KindEnvironment, KindAppliance} {
		t.Run("kind="+kind, func(t *testing.T) {
			t.Parallel()
			m := NewModel(ModelConfig{Seed: 11, Channels: chs, Kind: kind, Cycle: time.Second, TimeScale: 60})
			seen := map[Channel]map[float64]bool{}
			for i := range 7 * 24 * 60 {
				f := m.Frame(day0.Add(time.Duration(i) * time.Second))
				if len(f.Values) != len(chs) {
					t.Fatalf("%d values, want %d", len(f.Values), len(chs))
				}
				for ch, v := range f.Values {
					if err := qs[ch.Quantity].CheckValue(v); err != nil {
						t.Fatalf("kind %q cycle %d %v: %v", kind, f.Cycle, ch, err)
					}
					if seen[ch] == nil {
						seen[ch] = map[float64]bool{}
					}
					if len(seen[ch]) < 3 {
						seen[ch][v] = true
					}
				}
			}
			if kind != KindEnvironment {
				return
			}
			for _, name := range []string{"temperature", "humidity", "co2", "occupancy", "door_window_state", "pressure", "illuminance"} {
				if len(seen[Channel{name, ""}]) < 2 {
					t.Errorf("%s never changed over a week", name)
				}
			}
		})
	}
}

// Checks typical ranges of the named trajectories, not just the catalogue's
// generous bounds.
func TestTypicalRanges(t *testing.T) {
	chs := append(householdChannels(),
		Channel{"temperature", ""}, Channel{"humidity", ""}, Channel{"co2", ""}, Channel{"noise", ""},
		Channel{"pressure", ""}, Channel{"voltage", ""}, Channel{"power_factor", cim.PhaseL1})
	m := NewModel(ModelConfig{Seed: 99, Channels: chs, Kind: KindHousehold, TimeScale: 60})
	bounds := map[Channel][2]float64{
		{"voltage", cim.PhaseL1}: {230 * 0.98, 230 * 1.02},
		{"voltage", ""}:          {230 * 0.98, 230 * 1.02},
		{"frequency", ""}:        {49.95, 50.05},
		{"power_factor", ""}:     {0.9, 1},
		{"temperature", ""}:      {19, 24},
		{"humidity", ""}:         {35, 60},
		{"co2", ""}:              {400, 1400},
		{"noise", ""}:            {30, 60},
		{"pressure", ""}:         {1000, 1025},
		{"battery_soc", ""}:      {5, 100},
	}
	export := false
	for i := range 7 * 24 * 60 {
		f := m.Frame(day0.Add(time.Duration(i) * time.Second))
		for ch, b := range bounds {
			if v := f.Values[ch]; v < b[0] || v > b[1] {
				t.Fatalf("cycle %d %v = %v outside [%v, %v]", f.Cycle, ch, v, b[0], b[1])
			}
		}
		var sum float64
		for _, p := range []cim.Phase{cim.PhaseL1, cim.PhaseL2, cim.PhaseL3} {
			sum += f.Values[Channel{"active_power", p}]
			pw, v, i := f.Values[Channel{"active_power", p}], f.Values[Channel{"voltage", p}], f.Values[Channel{"current", p}]
			// current = S / V and S ≥ |P|.
			if i*v < math.Abs(pw)-1e-6 || i*v > math.Abs(pw)/0.9+1e-6 {
				t.Fatalf("cycle %d %s: I·V = %v for P = %v", f.Cycle, p, i*v, pw)
			}
		}
		total := f.Values[Channel{"active_power", ""}]
		if math.Abs(sum-total) > 1e-6*max(1, math.Abs(total)) {
			t.Fatalf("cycle %d: phases sum to %v, total %v", f.Cycle, sum, total)
		}
		s, p, q := f.Values[Channel{"apparent_power", ""}], total, f.Values[Channel{"reactive_power", ""}]
		if s < math.Abs(p)-1e-6 || s < math.Abs(q)-1e-6 {
			t.Fatalf("cycle %d: S %v < |P| %v or |Q| %v", f.Cycle, s, p, q)
		}
		if total < 0 {
			export = true
		}
	}
	if !export {
		t.Error("a household with PV never exported in a June week")
	}
}

func TestPVDayAndNight(t *testing.T) {
	chs := []Channel{{"pv_power", ""}, {"pv_energy_generated", ""}}
	for seed := range uint64(20) {
		for _, day := range []time.Time{day0, time.Date(2025, 12, 22, 0, 0, 0, 0, time.UTC)} {
			m := NewModel(ModelConfig{Seed: seed, Channels: chs, Cycle: time.Minute})
			for h := 0; h < 48; h++ {
				tm := day.Add(time.Duration(h) * time.Hour)
				v := m.Frame(tm).Values[chs[0]]
				hour := h % 24
				switch {
				case hour < 6 || hour >= 20:
					if v != 0 {
						t.Fatalf("seed %d %v: pv %v W at night", seed, tm, v)
					}
				case hour >= 11 && hour <= 15:
					if v <= 0 {
						t.Fatalf("seed %d %v: pv %v W at noon", seed, tm, v)
					}
				}
				if v > 8000 {
					t.Fatalf("seed %d %v: pv %v W beyond the peak", seed, tm, v)
				}
			}
		}
	}
}

func TestPVFollowsLocation(t *testing.T) {
	chs := []Channel{{"pv_power", ""}}
	loc := time.FixedZone("UTC+10", 10*3600)
	m := NewModel(ModelConfig{Seed: 1, Channels: chs, Cycle: time.Minute, Location: loc})
	// 03:00 UTC is 13:00 there.
	if v := m.Frame(day0.Add(3 * time.Hour)).Values[chs[0]]; v <= 0 {
		t.Fatalf("pv %v at local noon", v)
	}
	if v := m.Frame(day0.Add(15 * time.Hour)).Values[chs[0]]; v != 0 {
		t.Fatalf("pv %v at local 01:00", v)
	}
}

func TestTimeScale(t *testing.T) {
	chs := []Channel{{"pv_power", ""}}
	start := day0 // midnight
	m := NewModel(ModelConfig{Seed: 1, Channels: chs, TimeScale: 720, Start: start})
	// 60 real seconds are 12 simulated hours: noon.
	if v := m.Frame(start.Add(time.Minute)).Values[chs[0]]; v <= 0 {
		t.Fatalf("pv %v at simulated noon", v)
	}
	if v := m.Frame(start.Add(115 * time.Second)).Values[chs[0]]; v != 0 {
		t.Fatalf("pv %v at simulated 23:00", v)
	}
}

func TestBatteryConsistent(t *testing.T) {
	chs := []Channel{{"battery_power", ""}, {"battery_soc", ""}, {"battery_energy_stored", ""}, {"battery_state", ""},
		{"battery_current", ""}, {"battery_voltage", ""}, {"pv_power", ""}}
	cat := cim.Default()
	state, _ := cat.Lookup("battery_state")
	for seed := range uint64(5) {
		cycle := time.Minute
		m := NewModel(ModelConfig{Seed: seed, Channels: chs, Cycle: cycle})
		prev := m.Frame(day0)
		var charged, discharged bool
		for i := 1; i < 7*24*60; i++ {
			f := m.Frame(day0.Add(time.Duration(i) * cycle))
			p, soc, e := f.Values[chs[0]], f.Values[chs[1]], f.Values[chs[2]]
			if soc < 5-1e-9 || soc > 100+1e-9 {
				t.Fatalf("seed %d cycle %d: SoC %v", seed, f.Cycle, soc)
			}
			de := e - prev.Values[chs[2]]
			if math.Abs(de-p*cycle.Hours()) > 1e-6*max(1, math.Abs(de)) && soc > 5 && soc < 100 {
				t.Fatalf("seed %d cycle %d: stored energy moved %v Wh, power %v W over %v", seed, f.Cycle, de, p, cycle)
			}
			name := state.States[int(f.Values[chs[3]])]
			switch {
			case p > 0:
				charged = true
				if name != "charging" {
					t.Fatalf("state %s at %v W", name, p)
				}
			case p < 0:
				discharged = true
				if name != "discharging" {
					t.Fatalf("state %s at %v W", name, p)
				}
			}
			if i, v := f.Values[chs[4]], f.Values[chs[5]]; math.Abs(i*v-p) > 1e-6*max(1, math.Abs(p)) {
				t.Fatalf("battery I·V %v ≠ P %v", i*v, p)
			}
			prev = f
		}
		if !charged || !discharged {
			t.Errorf("seed %d: charged %v discharged %v over a week", seed, charged, discharged)
		}
	}
}

func TestEVSessions(t *testing.T) {
	chs := []Channel{{"ev_charging_power", ""}, {"ev_soc", ""}, {"ev_session_state", ""}, {"ev_session_energy", ""},
		{"ev_energy_register", ""}, {"ev_current_offered", ""}, {"active_power", ""}}
	st, _ := cim.Default().Lookup("ev_session_state")
	m := NewModel(ModelConfig{Seed: 8, Channels: chs, Cycle: time.Minute})
	sessions := 0
	prevState := ""
	prevSoC := 0.0
	for i := range 14 * 24 * 60 {
		f := m.Frame(day0.Add(time.Duration(i) * time.Minute))
		p, soc, name := f.Values[chs[0]], f.Values[chs[1]], st.States[int(f.Values[chs[2]])]
		if (p > 0) != (name == "charging") {
			t.Fatalf("cycle %d: %v W in state %s", f.Cycle, p, name)
		}
		if p > 22080 || p < 0 {
			t.Fatalf("charging power %v", p)
		}
		if f.Values[chs[6]] != p {
			t.Fatalf("charge point active power %v ≠ charging power %v", f.Values[chs[6]], p)
		}
		if name == "charging" && prevState == "charging" && soc < prevSoC {
			t.Fatalf("SoC fell while charging: %v → %v", prevSoC, soc)
		}
		if name == "preparing" && prevState == "available" {
			sessions++
		}
		prevState, prevSoC = name, soc
	}
	if sessions < 3 {
		t.Errorf("%d sessions in two weeks", sessions)
	}
}

func TestRelayCutsPower(t *testing.T) {
	chs := []Channel{{"relay_state", ""}, {"active_power", ""}}
	m := NewModel(ModelConfig{Seed: 2, Channels: chs, Cycle: time.Minute})
	offs := 0
	for i := range 30 * 24 * 60 {
		f := m.Frame(day0.Add(time.Duration(i) * time.Minute))
		if f.Values[chs[0]] == 0 {
			offs++
			if f.Values[chs[1]] != 0 {
				t.Fatalf("relay off, power %v", f.Values[chs[1]])
			}
		}
	}
	if offs == 0 || offs > 30*24*60/10 {
		t.Errorf("relay off in %d of %d minutes, want rarely", offs, 30*24*60)
	}
}

func TestUnknownQuantityLeftOut(t *testing.T) {
	m := NewModel(ModelConfig{Channels: []Channel{{"no_such", ""}, {"temperature", ""}}})
	f := m.Frame(day0)
	if _, ok := f.Value("no_such", ""); ok || len(f.Values) != 1 {
		t.Fatalf("values %v", f.Values)
	}
}

func BenchmarkFrame(b *testing.B) {
	chs := append(householdChannels(), Channel{"energy_active_import", cim.PhaseL1}, Channel{"energy_active_import", cim.PhaseL2},
		Channel{"energy_active_import", cim.PhaseL3}, Channel{"reactive_power", cim.PhaseL1}, Channel{"thd_voltage", ""},
		Channel{"thd_current", ""}, Channel{"temperature", ""}, Channel{"current", cim.PhaseN})
	if len(chs) != 30 {
		b.Fatalf("%d channels", len(chs))
	}
	m := NewModel(ModelConfig{Seed: 1, Channels: chs})
	tm := day0
	b.ReportAllocs()
	for b.Loop() {
		tm = tm.Add(time.Second)
		m.Frame(tm)
	}
}
