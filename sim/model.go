package sim

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gridlink/gridlink/cim"
)

// The kinds of device a Model simulates. The kind decides what the
// electrical quantities mean: a household meter sees load − PV + battery,
// a PV inverter its generation, a battery system its own power, a charge
// point its charging power, a transformer many households at once, a smart
// plug one appliance.
const (
	KindHousehold   = "household"
	KindPV          = "pv"
	KindBattery     = "battery"
	KindEV          = "ev"
	KindTransformer = "transformer"
	KindEnvironment = "environment"
	KindAppliance   = "appliance" // one appliance behind a smart plug
)

// maxCatchUp is how many cycles Frame steps one by one after a gap; a longer
// gap is bridged by extrapolating the counters (see Model.Frame).
const maxCatchUp = 100_000

// ModelConfig configures a Model.
type ModelConfig struct {
	// Seed makes the trajectories reproducible.
	Seed uint64
	// Cycle is the measuring cycle; zero means 1 s. Cycle starts are
	// multiples of it since the Unix epoch.
	Cycle time.Duration
	// Channels are the series the frames carry. Channels whose quantity is
	// not in the catalogue are left out of the frames.
	Channels []Channel
	// Catalogue defines the quantities; nil means cim.Default().
	Catalogue *cim.Catalogue
	// Kind is KindHousehold, KindPV, ...; empty means GuessKind(Channels).
	// KindOf derives it from a profile.
	Kind string
	// TimeScale is how much faster than real time simulated time runs:
	// 1 (or zero) is real time, 720 makes a simulated day pass in two
	// minutes. Counters integrate simulated time.
	TimeScale float64
	// Start is where simulated time equals real time and where the
	// counters hold their seeded baseline. Zero means the start of the
	// first cycle asked for. A fixed Start makes a restarted simulator
	// step again from it and so continue its counters instead of
	// starting them over (exactly within 100 000 cycles of Start).
	Start time.Time
	// Location is the time zone of the simulated time of day (sunrise,
	// evening peak); nil means UTC.
	Location *time.Location
}

// Model simulates one device: seeded trajectories of its channels, stepped
// once per cycle. It is safe for concurrent use.
type Model struct {
	mu     sync.Mutex
	cycle  time.Duration
	scale  float64
	loc    *time.Location
	kind   string
	seed   uint64
	anchor float64 // Unix seconds where simulated time equals real time
	start  time.Time
	need   needs
	p      params
	s      state
	chans  []chanState
	src    *rand.PCG
	rng    *rand.Rand

	started bool
	last    int64 // last cycle stepped
}

// needs says which parts of the physics the channels use.
type needs struct {
	electric, ev, env, health, relay bool
	pvSite, battSite                 bool // the household has PV / a battery behind its meter
}

// chanState is one channel and its own state.
type chanState struct {
	ch    Channel
	q     cim.Quantity
	phase int     // phaseIndex
	val   float64 // value of the last cycle stepped
	acc   float64 // counter, walk position or interval accumulator
	cur   float64 // energy of the running 15-minute period (Delta quantities)
	per   int64   // that period's number
}

// NewModel builds a model. Trajectories start at the first Frame call.
func NewModel(cfg ModelConfig) *Model {
	cat := cfg.Catalogue
	if cat == nil {
		cat = cim.Default()
	}
	m := &Model{
		cycle: cfg.Cycle,
		scale: cfg.TimeScale,
		loc:   cfg.Location,
		kind:  cfg.Kind,
		seed:  cfg.Seed,
		start: cfg.Start,
	}
	if m.cycle <= 0 {
		m.cycle = time.Second
	}
	if !(m.scale > 0) || math.IsInf(m.scale, 0) {
		m.scale = 1
	}
	if m.loc == nil {
		m.loc = time.UTC
	}
	if m.kind == "" {
		m.kind = GuessKind(cfg.Channels)
	}
	seen := map[Channel]bool{}
	for _, ch := range cfg.Channels {
		q, ok := cat.Lookup(ch.Quantity)
		if !ok || seen[ch] {
			continue
		}
		seen[ch] = true
		m.chans = append(m.chans, chanState{ch: ch, q: q, phase: phaseIndex(ch.Phase)})
	}
	m.need = needsOf(m.kind, m.chans)
	m.p = newParams(cfg.Seed, m.kind)
	m.src = rand.NewPCG(cfg.Seed, 0)
	m.rng = rand.New(m.src)
	return m
}

// Cycle returns the model's cycle length.
func (m *Model) Cycle() time.Duration { return m.cycle }

// Kind returns the model's kind.
func (m *Model) Kind() string { return m.kind }

// Channels lists the channels the frames carry.
func (m *Model) Channels() []Channel {
	out := make([]Channel, len(m.chans))
	for i, c := range m.chans {
		out[i] = c.ch
	}
	return out
}

// Frame returns the frame of the cycle containing t (its Values map is the
// caller's), first stepping the
// model through every cycle since the previous call so that counters
// integrate across cycles nobody asked for. A t in the cycle of the
// previous call, or an earlier one, returns the latest frame again: the
// model does not go back in time.
//
// A gap of more than 100 000 cycles is not stepped in full: the model
// steps the last 100 000 and adds to each counter what it gained over them
// scaled to the whole gap, so counters stay plausible and never decrease.
func (m *Model) Frame(t time.Time) Frame {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := cycleOf(t, m.cycle)
	if !m.started {
		m.begin(c)
		return m.frame()
	}
	if c > m.last {
		m.advance(c)
	}
	return m.frame()
}

// begin initialises the state and steps to cycle c.
func (m *Model) begin(c int64) {
	m.started = true
	first := c
	if !m.start.IsZero() {
		if c0 := cycleOf(m.start, m.cycle); c0 < c {
			first = c0
		}
		m.anchor = float64(m.start.UnixNano()) / 1e9
	} else {
		m.anchor = float64(c) * m.cycle.Seconds()
	}
	m.initState()
	m.last = first - 1
	m.advance(c)
}

// advance steps every cycle after m.last up to c.
func (m *Model) advance(c int64) {
	n := c - m.last
	if n <= maxCatchUp {
		for k := m.last + 1; k <= c; k++ {
			m.step(k)
		}
		return
	}
	before := make([]float64, len(m.chans))
	for i := range m.chans {
		before[i] = m.chans[i].acc
	}
	for k := c - maxCatchUp + 1; k <= c; k++ {
		m.step(k)
	}
	f := float64(n-maxCatchUp) / maxCatchUp
	for i := range m.chans {
		cs := &m.chans[i]
		if cs.q.Kind == cim.Cumulative {
			cs.acc += (cs.acc - before[i]) * f
			cs.val = m.clampQ(cs.q, cs.acc)
		}
	}
}

// frame builds the frame of the last cycle stepped.
func (m *Model) frame() Frame {
	vals := make(map[Channel]float64, len(m.chans))
	for i := range m.chans {
		vals[m.chans[i].ch] = m.chans[i].val
	}
	return Frame{Cycle: m.last, Start: cycleStart(m.last, m.cycle), Values: vals}
}

// simSeconds is the simulated time, in Unix seconds, of cycle c's start.
func (m *Model) simSeconds(c int64) float64 {
	real := float64(c) * m.cycle.Seconds()
	return m.anchor + (real-m.anchor)*m.scale
}

// step advances the model by cycle c. Every random draw comes from a PCG
// seeded with (Seed, c), so a cycle's draws do not depend on which cycles
// were asked for before.
func (m *Model) step(c int64) {
	m.src.Seed(m.seed, uint64(c))
	r := m.rng
	dt := m.cycle.Seconds() * m.scale
	sec := m.simSeconds(c)
	whole := math.Floor(sec)
	local := time.Unix(int64(whole), int64((sec-whole)*1e9)).In(m.loc)
	e := env{
		r:       r,
		dt:      dt,
		sec:     sec,
		h:       float64(local.Hour()) + float64(local.Minute())/60 + float64(local.Second())/3600,
		weekend: local.Weekday() == time.Saturday || local.Weekday() == time.Sunday,
	}
	e.act = activity(e.h, e.weekend)
	m.s.weather(&e)
	e.light = solar(e.h, local.YearDay()) * m.s.cloudFactor()
	if m.need.relay {
		m.s.relay(&e)
	}
	if m.need.ev {
		m.s.evStep(&e, &m.p)
	}
	if m.need.electric {
		m.electric(&e)
	}
	if m.need.env {
		m.s.environment(&e, &m.p)
	}
	if m.need.health {
		m.s.healthStep(&e)
	}
	period := int64(math.Floor(sec / 900))
	for i := range m.chans {
		m.update(&m.chans[i], &e, period)
	}
	m.last = c
}

// update computes a channel's value for the cycle just stepped.
func (m *Model) update(cs *chanState, e *env, period int64) {
	switch cs.q.Kind {
	case cim.Cumulative:
		cs.acc += max(m.rate(cs, e), 0) * e.dt / 3600
		cs.val = m.clampQ(cs.q, cs.acc)
		return
	case cim.Delta:
		if rate, ok := m.intervalRate(cs); ok {
			// A settlement interval register: the energy of the last
			// completed 15-minute period.
			if period != cs.per {
				cs.acc, cs.cur, cs.per = cs.cur, 0, period
			}
			cs.cur += max(rate, 0) * e.dt / 3600
			cs.val = m.clampQ(cs.q, cs.acc)
			return
		}
	}
	v, ok := m.value(cs)
	if !ok {
		v = m.walk(cs, e)
	}
	cs.val = m.clampQ(cs.q, v)
}

// clampQ keeps v inside q's plausible range, so that whatever the physics
// does, CheckValue passes.
func (m *Model) clampQ(q cim.Quantity, v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		v = q.Min
	}
	if len(q.States) > 0 {
		v = math.Round(v)
		return min(max(v, 0), float64(len(q.States)-1))
	}
	if q.Min != 0 || q.Max != 0 {
		v = min(max(v, q.Min), q.Max)
	}
	if v == 0 {
		v = 0 // no −0: it would print as "-0"
	}
	return v
}

// walk is the trajectory of a quantity the model has no physics for: a
// bounded random walk, or for a state quantity an occasional new state.
func (m *Model) walk(cs *chanState, e *env) float64 {
	if n := len(cs.q.States); n > 0 {
		if e.r.Float64() < chance(2.0/3600, e.dt) {
			cs.acc = float64(e.r.IntN(n))
		}
		return cs.acc
	}
	lo, hi := typicalRange(cs.q)
	cs.acc = clamp(ou(e.r, cs.acc, (lo+hi)/2, (hi-lo)/6, 1800, e.dt), lo, hi)
	return cs.acc
}

// initState sets the state every trajectory starts from.
func (m *Model) initState() {
	m.s = newState(&m.p, m.kind)
	for i := range m.chans {
		cs := &m.chans[i]
		r := rand.New(rand.NewPCG(m.seed, channelHash(cs.ch)))
		switch {
		case cs.q.Kind == cim.Cumulative:
			cs.acc = baseline(cs, r, m.need)
		case len(cs.q.States) > 0:
			cs.acc = float64(r.IntN(len(cs.q.States)))
		default:
			lo, hi := typicalRange(cs.q)
			cs.acc = lo + (hi-lo)*(0.25+0.5*r.Float64())
		}
		cs.per = math.MinInt64
		cs.val = m.clampQ(cs.q, cs.acc)
	}
}

// baseline is a counter's value at the model's start.
func baseline(cs *chanState, r *rand.Rand, need needs) float64 {
	u := r.Float64()
	div := 1.0
	if cs.phase >= 0 {
		div = 3
	}
	switch cs.q.Unit {
	case "Wh", "varh":
		if cs.q.Name == "energy_active_export" && !need.pvSite {
			return u * 1000 / div
		}
		return (100e3 + 800e3*u) / div
	case "kcal":
		return 1e4 + 9e4*u
	}
	lo, hi := typicalRange(cs.q)
	return lo + (hi-lo)*u/2
}

func channelHash(ch Channel) uint64 {
	h := fnv.New64a()
	h.Write([]byte(ch.Quantity))
	h.Write([]byte{'/'})
	h.Write([]byte(ch.Phase))
	return h.Sum64()
}

// typicalRange is where the random walk of an unknown quantity roams: its
// plausible range, narrowed where that range is only a sanity bound.
func typicalRange(q cim.Quantity) (lo, hi float64) {
	lo, hi = q.Min, q.Max
	if lo == 0 && hi == 0 {
		return 0, 100
	}
	if hi-lo > 1000 {
		if lo < 0 && hi > 0 {
			return max(lo, -500), min(hi, 500)
		}
		return lo, lo + 1000
	}
	return lo, hi
}

// cycleOf is the number of the cycle containing t.
func cycleOf(t time.Time, d time.Duration) int64 {
	n := t.UnixNano()
	c := n / int64(d)
	if n%int64(d) < 0 {
		c--
	}
	return c
}

// cycleStart is the start of cycle c.
func cycleStart(c int64, d time.Duration) time.Time {
	return time.Unix(0, c*int64(d)).UTC()
}

// Phase indexes: the total, L1..L3 (the indexes of per-phase arrays), the
// neutral and the line-to-line pairs.
const (
	phTotal = -1
	phN     = 3
	phL12   = 4
	phL23   = 5
	phL31   = 6
)

func phaseIndex(p cim.Phase) int {
	switch p {
	case cim.PhaseL1:
		return 0
	case cim.PhaseL2:
		return 1
	case cim.PhaseL3:
		return 2
	case cim.PhaseN:
		return phN
	case cim.PhaseL12:
		return phL12
	case cim.PhaseL23:
		return phL23
	case cim.PhaseL31:
		return phL31
	}
	return phTotal
}

// The quantities of room sensors and wearables; the rest is electrical.
var (
	envQuantities = map[string]bool{
		"temperature": true, "humidity": true, "co2": true, "pm2_5": true, "pm10": true,
		"voc_index": true, "noise": true, "illuminance": true, "pressure": true, "uv_index": true,
		"electrosmog_hf": true, "electrosmog_lf_electric": true, "electrosmog_lf_magnetic": true,
		"device_battery_level": true, "occupancy": true, "door_window_state": true, "button_event": true,
	}
	healthQuantities = map[string]bool{
		"heart_rate": true, "heart_rate_variability": true, "rr_interval": true, "skin_temperature": true,
		"energy_expenditure": true, "metabolic_rate": true, "thermal_comfort_pmv": true,
	}
)

func needsOf(kind string, chans []chanState) needs {
	var n needs
	n.ev = kind == KindEV
	for _, cs := range chans {
		name := cs.q.Name
		switch {
		case healthQuantities[name]:
			n.health, n.env = true, true
		case envQuantities[name]:
			n.env = true
		case name == "relay_state":
			n.relay = true
		default:
			n.electric = true
		}
		switch name {
		case "pv_power", "pv_energy_generated":
			n.pvSite = true
		case "battery_power", "battery_soc", "battery_energy_stored", "battery_state",
			"battery_current", "battery_voltage":
			n.battSite = true
		}
		if len(name) > 3 && name[:3] == "ev_" {
			n.ev = true
		}
	}
	if n.battSite {
		// A home battery almost always sits beside PV.
		n.pvSite = true
	}
	if n.env && n.relay {
		n.electric = true // a plug's power follows its relay
	}
	return n
}

// ou steps an Ornstein-Uhlenbeck process exactly over dt seconds: x drifts
// back to mean with time constant tau, with stationary deviation sd. Exact
// for any dt, so a sped-up clock does not make it unstable.
func ou(r *rand.Rand, x, mean, sd, tau, dt float64) float64 {
	a := math.Exp(-dt / tau)
	return mean + (x-mean)*a + sd*math.Sqrt(1-a*a)*r.NormFloat64()
}

// chance is the probability that an event of the given rate (per second)
// happens within dt seconds.
func chance(rate, dt float64) float64 { return 1 - math.Exp(-rate*dt) }

func clamp(v, lo, hi float64) float64 { return min(max(v, lo), hi) }

// gauss is a bell of width sigma hours around mu on the 24-hour circle.
func gauss(h, mu, sigma float64) float64 {
	d := math.Abs(h - mu)
	if d > 12 {
		d = 24 - d
	}
	return math.Exp(-0.5 * (d / sigma) * (d / sigma))
}

// activity is how busy a household is at hour h: 0 (asleep) to about 1
// (evening peak).
func activity(h float64, weekend bool) float64 {
	morning, midday := 7.0, 0.35
	if weekend {
		morning, midday = 9.0, 0.6
	}
	return 0.05 + 0.6*gauss(h, morning, 1.0) + midday*gauss(h, 12.5, 1.2) + 0.95*gauss(h, 19.0, 1.6)
}

// solar is the clear-sky irradiance at hour h of day doy, 0 at night to 1
// at a summer noon: a bell over 06:00–20:00, weaker in winter.
func solar(h float64, doy int) float64 {
	if h <= 6 || h >= 20 {
		return 0
	}
	season := 0.55 + 0.45*math.Cos(2*math.Pi*float64(doy-172)/365)
	return math.Pow(math.Sin(math.Pi*(h-6)/14), 1.5) * season
}
