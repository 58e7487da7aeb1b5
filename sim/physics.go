package sim

import (
	"math"
	"math/rand/v2"
)

// env is what one step knows about its cycle.
type env struct {
	r       *rand.Rand
	dt      float64 // simulated seconds the cycle lasts
	sec     float64 // simulated Unix seconds at the cycle's start
	h       float64 // simulated local hour of day, 0..24
	weekend bool
	act     float64 // household activity, see activity
	light   float64 // daylight 0..1 after clouds
}

// appliance is a household appliance that switches on now and then.
type appliance struct {
	power            float64 // W
	minDur, maxDur   float64 // s
	perDay           float64 // mean starts per day
	pm               float64 // fine dust it raises (cooking), µg/m³
	threePhaseSpread bool
}

// appliances of a household; a kettle's 2 kW spike is the one people see.
var appliances = [...]appliance{
	{power: 2000, minDur: 120, maxDur: 300, perDay: 3},                        // kettle
	{power: 900, minDur: 60, maxDur: 300, perDay: 1.5, pm: 10},                // microwave
	{power: 2200, minDur: 1200, maxDur: 3600, perDay: 0.4, pm: 35},            // oven
	{power: 1800, minDur: 3600, maxDur: 5400, perDay: 0.5},                    // washing machine
	{power: 1400, minDur: 3600, maxDur: 7200, perDay: 0.6},                    // dishwasher
	{power: 1600, minDur: 180, maxDur: 600, perDay: 0.5},                      // hair dryer
	{power: 3000, minDur: 600, maxDur: 1800, perDay: 0.3, pm: 20},             // hob
	{power: 150, minDur: 3600, maxDur: 3 * 3600, perDay: 1},                   // TV and computer
	{power: 2000, minDur: 1800, maxDur: 3600, perDay: 0.2, pm: 0},             // tumble dryer
	{power: 60, minDur: 600, maxDur: 1800, perDay: 2, threePhaseSpread: true}, // lights
}

// params are a device's constants, drawn from the seed.
type params struct {
	households  float64 // 1, or how many households a transformer feeds
	base        float64 // W, standing load
	peak        float64 // W, height of the activity curve
	phaseW      [3]float64
	applPhase   [len(appliances)]int
	fridgeShift float64 // s
	pvPeak      float64 // W
	batCap      float64 // Wh
	batMax      float64 // W
	batVnom     float64 // V
	batSoH      float64 // %
	soc0        float64 // %
	evAmps      float64
	evPhases    float64
	evCap       float64 // Wh
	clearMean   float64 // typical clearness of the sky, 0..1
	tempMean    float64 // °C
	pmRatio     float64 // pm10 / pm2_5
	drain       float64 // %/s a sensor's battery loses
	battery0    float64 // % of a sensor's battery at the start
	device      int     // the appliance of KindAppliance
	standby     float64 // W it draws when off
}

func newParams(seed uint64, kind string) params {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	p := params{
		households:  1,
		base:        150 + 150*r.Float64(),
		peak:        300 + 500*r.Float64(),
		fridgeShift: 3600 * r.Float64(),
		pvPeak:      2500 + 5500*r.Float64(),
		batCap:      5000 + 8500*r.Float64(),
		batMax:      2500 + 2500*r.Float64(),
		batVnom:     []float64{51.2, 51.2, 400}[r.IntN(3)],
		batSoH:      92 + 8*r.Float64(),
		soc0:        30 + 50*r.Float64(),
		evCap:       40e3 + 40e3*r.Float64(),
		clearMean:   0.45 + 0.45*r.Float64(),
		tempMean:    20.5 + 1.5*r.Float64(),
		pmRatio:     1.3 + 0.6*r.Float64(),
		drain:       (0.05 + 0.2*r.Float64()) / 86400,
		battery0:    40 + 60*r.Float64(),
	}
	sum := 0.0
	for i := range p.phaseW {
		p.phaseW[i] = 0.7 + 0.6*r.Float64()
		sum += p.phaseW[i]
	}
	for i := range p.phaseW {
		p.phaseW[i] /= sum
	}
	for i := range p.applPhase {
		p.applPhase[i] = r.IntN(3)
	}
	switch r.IntN(4) {
	case 0:
		p.evAmps, p.evPhases = 16, 1
	case 1:
		p.evAmps, p.evPhases = 32, 1
	case 2:
		p.evAmps, p.evPhases = 16, 3
	default:
		p.evAmps, p.evPhases = 32, 3
	}
	p.device = r.IntN(len(appliances))
	p.standby = 0.5 + 2.5*r.Float64()
	if kind == KindTransformer {
		p.households = 40 + float64(r.IntN(110))
	}
	return p
}

// evState is a charge point's session.
type evState struct {
	status string  // an OCPP ChargePointStatus
	left   float64 // s until a timed status ends
	depart float64 // s until the vehicle leaves
	soc    float64 // %
	target float64 // %
	energy float64 // Wh this session
	power  float64 // W
}

// state is what a model carries from cycle to cycle, and what the current
// cycle computed.
type state struct {
	loadNoise float64
	applLeft  [len(appliances)]float64
	clear     float64
	dipLeft   float64
	dipDepth  float64
	soc       float64
	vdev      [3]float64
	freq      float64
	pf        [3]float64
	thdV      float64
	thdI      float64
	relayOn   bool
	relayLeft float64
	ev        evState

	occupied  bool
	tempDev   float64
	humDev    float64
	co2       float64
	noiseDev  float64
	press     float64
	pm        float64
	pmSpike   float64
	voc       float64
	hfLog     float64
	lfE       float64
	lfB       float64
	doorOpen  bool
	doorLeft  float64
	button    int
	devBatt   float64
	busy      float64 // wearer's physical activity 0..1
	hrDev     float64
	hrvDev    float64
	skinDev   float64
	cooking   float64 // µg/m³ the running appliances add
	loadTotal float64
	surplus   float64 // W of PV over load the battery saw last cycle
	battGain  float64 // how much of it the battery's control covers

	// Computed by the current cycle.
	load       [3]float64 // W per phase of the household (or feeder)
	pv         float64    // W
	batt       float64    // W, + charging
	P, Q, S, V [3]float64
	I          [3]float64
	iN, vN     float64
	temp       float64
	hum        float64
	noise      float64
	lux        float64
	uv         float64
	hr         float64
	hrv        float64
	skin       float64
	met        float64
}

func newState(p *params, kind string) state {
	s := state{
		clear:    p.clearMean,
		soc:      p.soc0,
		battGain: 0.93,
		relayOn:  true,
		co2:      450,
		press:    1013,
		pm:       8,
		voc:      100,
		hfLog:    math.Log(200),
		lfE:      15,
		lfB:      80,
		devBatt:  p.battery0,
		ev:       evState{status: "available", soc: 50},
	}
	for i := range s.pf {
		s.pf[i] = 0.96
		s.V[i] = 230
	}
	s.temp = p.tempMean
	return s
}

// weather moves the clouds.
func (s *state) weather(e *env) {
	s.clear = clamp(ou(e.r, s.clear, 0.7, 0.25, 3*3600, e.dt), 0, 1)
	if s.dipLeft > 0 {
		s.dipLeft -= e.dt
	} else if e.r.Float64() < chance(4.0/3600*(1.2-s.clear), e.dt) {
		s.dipLeft = 60 + 540*e.r.Float64()
		s.dipDepth = 0.3 + 0.4*e.r.Float64()
	}
}

// cloudFactor is the share of clear-sky light that gets through, never
// zero so that noon is always light.
func (s *state) cloudFactor() float64 {
	f := 0.15 + 0.85*s.clear
	if s.dipLeft > 0 {
		f *= 1 - s.dipDepth
	}
	return max(f, 0.05)
}

// relay is a smart plug's relay: on, with a rare off spell.
func (s *state) relay(e *env) {
	if s.relayOn {
		if e.r.Float64() < chance(1.0/86400, e.dt) {
			s.relayOn, s.relayLeft = false, 300+3300*e.r.Float64()
		}
		return
	}
	s.relayLeft -= e.dt
	if s.relayLeft <= 0 {
		s.relayOn = true
	}
}

// electric computes load, PV, battery and the grid side per phase.
func (m *Model) electric(e *env) {
	p, s, r := &m.p, &m.s, e.r
	s.loadNoise = ou(r, s.loadNoise, 0, 0.04, 600, e.dt)
	curve := p.base + p.peak*e.act
	var appl [3]float64
	s.cooking = 0
	for i := range appliances {
		a := &appliances[i]
		rate := a.perDay
		if m.kind == KindAppliance {
			if i != p.device {
				continue
			}
			rate *= 3 // the one appliance behind a smart plug is used more
		}
		if s.applLeft[i] <= 0 && r.Float64() < chance(rate/86400*e.act/0.45, e.dt) {
			s.applLeft[i] = a.minDur + (a.maxDur-a.minDur)*r.Float64()
		}
		if s.applLeft[i] > 0 {
			if a.threePhaseSpread {
				for k := range appl {
					appl[k] += a.power / 3
				}
			} else {
				appl[p.applPhase[i]] += a.power
			}
			s.cooking += a.pm
			s.applLeft[i] -= e.dt
		}
	}
	fridge := 0.0
	if math.Mod(e.sec+p.fridgeShift, 3600) < 1200 {
		fridge = 90
	}
	s.loadTotal = 0
	for k := range s.load {
		switch m.kind {
		case KindAppliance:
			s.load[k] = 0
			if k == 0 {
				s.load[k] = p.standby + appl[0] + appl[1] + appl[2]
			}
		case KindTransformer:
			// Appliances of many households average out to about 80 W each.
			s.load[k] = p.households * (curve + 80) * p.phaseW[k] * (1 + s.loadNoise)
		default:
			s.load[k] = max(curve*p.phaseW[k]*(1+s.loadNoise)+appl[k], 0)
			if k == 0 {
				s.load[k] += fridge
			}
		}
		if m.need.relay && !s.relayOn {
			s.load[k] = 0
		}
		s.loadTotal += s.load[k]
	}

	s.pv = p.pvPeak * e.light
	if m.kind == KindTransformer {
		s.pv *= 0.3 * p.households // a third of the roofs have PV
	}
	s.battery(e, p)

	var net [3]float64
	for k := range net {
		ev := 0.0
		if m.need.ev {
			ev = s.evPhase(p, k)
		}
		switch m.kind {
		case KindPV:
			net[k] = -s.pv / 3
		case KindBattery:
			net[k] = s.batt / 3
		case KindEV:
			net[k] = ev
		case KindTransformer:
			net[k] = s.load[k] - s.pv/3 + ev
		default:
			net[k] = s.load[k] + ev
			if m.need.pvSite {
				net[k] += -s.pv/3 + s.batt/3
			}
		}
	}
	for k := range net {
		s.pf[k] = clamp(ou(r, s.pf[k], 0.96, 0.02, 900, e.dt), 0.9, 1)
		s.vdev[k] = clamp(ou(r, s.vdev[k], 0, 0.007, 300, e.dt), -0.015, 0.015)
		// Voltage sags a little under load and rises under export.
		s.V[k] = 230 * (1 + s.vdev[k] - clamp(net[k]/p.households/2e6, -0.004, 0.004))
		s.P[k] = net[k]
		s.S[k] = math.Abs(net[k]) / s.pf[k]
		s.Q[k] = math.Copysign(math.Sqrt(max(s.S[k]*s.S[k]-net[k]*net[k], 0)), net[k])
		s.I[k] = s.S[k] / s.V[k]
	}
	i1, i2, i3 := s.I[0], s.I[1], s.I[2]
	s.iN = math.Sqrt(max(i1*i1+i2*i2+i3*i3-i1*i2-i2*i3-i3*i1, 0))
	s.vN = 0.2 + 0.01*s.iN/p.households
	s.freq = clamp(ou(r, s.freq, 0, 0.015, 60, e.dt), -0.05, 0.05)
	s.thdV = clamp(ou(r, s.thdV, 2, 0.5, 1800, e.dt), 0.5, 5)
	s.thdI = clamp(ou(r, s.thdI, 15, 6, 900, e.dt), 2, 60)
}

// battery follows self-consumption: it charges from PV surplus and covers
// the household's deficit, within its power and its 5–100 % SoC window.
// Like a real one it regulates on what it measured a moment ago and not
// quite to zero, so the grid still sees spikes and a small residue.
func (s *state) battery(e *env, p *params) {
	dth := e.dt / 3600
	s.battGain = clamp(ou(e.r, s.battGain, 0.93, 0.03, 600, e.dt), 0.8, 1)
	want := clamp(s.surplus*s.battGain-20, -p.batMax, p.batMax)
	if math.Abs(want) < 30 {
		want = 0 // below the inverter's threshold
	}
	want = clamp(want, -(s.soc-5)/100*p.batCap/dth, (100-s.soc)/100*p.batCap/dth)
	s.batt = want
	s.soc = clamp(s.soc+want*dth/p.batCap*100, 5, 100)
	s.surplus = s.pv - s.loadTotal
}

// evStep runs a charge point's sessions: a car arrives (mostly in the
// evening), charges to its target, waits until it leaves next morning.
func (s *state) evStep(e *env, p *params) {
	v, r := &s.ev, e.r
	maxP := p.evAmps * 230 * p.evPhases
	v.power = 0
	if v.status != "available" && v.status != "finishing" {
		v.depart -= e.dt
		if v.depart <= 0 {
			v.status, v.left = "finishing", 30+60*r.Float64()
		}
	}
	switch v.status {
	case "available":
		arrive := 0.2 + 2*gauss(e.h, 18, 1.5) + 0.5*gauss(e.h, 12, 2)
		if r.Float64() < chance(arrive/86400, e.dt) {
			v.status, v.left = "preparing", 30+90*r.Float64()
			v.soc = 15 + 45*r.Float64()
			v.target = 80 + 20*r.Float64()
			v.energy = 0
			v.depart = (8 + 8*r.Float64()) * 3600
		}
	case "preparing":
		v.left -= e.dt
		if v.left <= 0 {
			v.status = "charging"
		}
	case "finishing":
		v.left -= e.dt
		if v.left <= 0 {
			v.status = "available"
		}
	}
	if v.status == "charging" {
		if v.soc >= v.target-1e-9 {
			v.status = "suspended_ev" // the vehicle is full enough
			return
		}
		// Above 80 % the vehicle draws less and less.
		taper := clamp(1-(v.soc-80)/25, 0.3, 1)
		pw := maxP * taper * (0.97 + 0.03*r.Float64())
		dth := e.dt / 3600
		pw = min(pw, (v.target-v.soc)/100*p.evCap/dth)
		if pw <= 0 {
			v.status = "suspended_ev"
			return
		}
		v.power = pw
		v.soc = clamp(v.soc+pw*dth/p.evCap*100, 0, 100)
		v.energy += pw * dth
	}
}

// connected reports whether a vehicle is plugged in.
func (v *evState) connected() bool {
	return v.status == "preparing" || v.status == "charging" || v.status == "suspended_ev"
}

// evPhase is the charging power on phase k.
func (s *state) evPhase(p *params, k int) float64 {
	if p.evPhases == 3 {
		return s.ev.power / 3
	}
	if k == 0 {
		return s.ev.power
	}
	return 0
}

// occupiedProb is how likely someone is at home at hour h.
func occupiedProb(h float64, weekend bool) float64 {
	switch {
	case h < 6.5 || h >= 23:
		return 0.9
	case h < 8.5:
		return 0.95
	case h < 16.5:
		if weekend {
			return 0.8
		}
		return 0.35
	}
	return 0.95
}

// environment is a room: occupancy drives CO₂, noise and the door; the sun
// drives light, UV and temperature.
func (s *state) environment(e *env, p *params) {
	r := e.r
	if r.Float64() < chance(1.0/1800, e.dt) {
		s.occupied = r.Float64() < occupiedProb(e.h, e.weekend)
	}
	occ := 0.0
	if s.occupied {
		occ = 1
	}
	target := 430 + occ*(450+400*e.act)
	s.co2 = clamp(target+(s.co2-target)*math.Exp(-e.dt/2400)+10*r.NormFloat64(), 400, 1400)

	s.tempDev = ou(r, s.tempDev, 0, 0.4, 3600, e.dt)
	s.temp = clamp(p.tempMean+math.Sin(2*math.Pi*(e.h-10)/24)+s.tempDev+0.4*occ+0.8*e.light, 19, 24)
	s.humDev = ou(r, s.humDev, 0, 3, 7200, e.dt)
	s.hum = clamp(47+5*math.Sin(2*math.Pi*(e.h-5)/24)+s.humDev+(s.co2-430)/150, 35, 60)
	s.noiseDev = ou(r, s.noiseDev, 0, 3, 120, e.dt)
	s.noise = clamp(32+occ*(8+10*e.act)+s.noiseDev, 30, 60)
	s.press = clamp(ou(r, s.press, 1012.5, 5, 2*86400, e.dt), 1000, 1025)

	s.lux = 900 * e.light
	if s.occupied && e.h > 6 && e.h < 23 && e.light < 0.2 {
		s.lux += 250 // lamps
	}
	s.lux = max(s.lux*(1+0.02*r.NormFloat64()), 0)
	s.uv = clamp(9*e.light, 0, 11)

	if s.doorOpen {
		s.doorLeft -= e.dt
		if s.doorLeft <= 0 {
			s.doorOpen = false
		}
	} else if r.Float64() < chance(2.0/3600*(0.3+occ)*e.act/0.45, e.dt) {
		s.doorOpen, s.doorLeft = true, 20+280*r.Float64()
	}
	if r.Float64() < chance(4.0/86400, e.dt) {
		// press, long_press, double_press, triple_press
		switch u := r.Float64(); {
		case u < 0.6:
			s.button = 0
		case u < 0.75:
			s.button = 1
		case u < 0.9:
			s.button = 2
		default:
			s.button = 3
		}
	}
	s.devBatt -= p.drain * e.dt
	if s.devBatt < 5 {
		s.devBatt = 100 // someone changed the battery
	}

	s.pm = ou(r, s.pm, 8, 4, 3600, e.dt)
	if s.occupied && r.Float64() < chance(2.0/86400, e.dt) {
		s.pmSpike += 30 + 40*r.Float64() // cooking, a candle
	}
	s.pmSpike *= math.Exp(-e.dt / 1800)
	s.voc = ou(r, s.voc, 100, 30, 3600, e.dt)
	s.hfLog = ou(r, s.hfLog, math.Log(200), 0.5, 1800, e.dt)
	s.lfE = ou(r, s.lfE, 15, 5, 1800, e.dt)
	s.lfB = ou(r, s.lfB, 80, 30, 1800, e.dt)
}

// healthStep is a wearer: busy by day, asleep at night.
func (s *state) healthStep(e *env) {
	r := e.r
	sleep := e.h >= 23 || e.h < 6.5
	mean := 0.3
	if sleep {
		mean = 0.03
	}
	s.busy = clamp(ou(r, s.busy, mean, 0.15, 900, e.dt), 0, 1)
	s.hrDev = ou(r, s.hrDev, 0, 2, 60, e.dt)
	s.hr = 60 + 60*s.busy + s.hrDev
	if sleep {
		s.hr -= 6
	}
	s.hr = clamp(s.hr, 45, 150)
	s.hrvDev = ou(r, s.hrvDev, 0, 8, 600, e.dt)
	s.hrv = clamp(65-35*s.busy+s.hrvDev, 15, 120)
	s.skinDev = ou(r, s.skinDev, 0, 0.5, 1800, e.dt)
	s.skin = 33.3 + s.skinDev
	if sleep {
		s.skin += 0.5
	}
	s.skin = clamp(s.skin, 31, 36)
	s.met = clamp(1+3*s.busy, 0.8, 6)
	if sleep {
		s.met = 0.8
	}
}
