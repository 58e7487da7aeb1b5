package sim

import (
	"math"

	"github.com/gridlink/gridlink/cim"
)

// value is a channel's value in the cycle just stepped, in the quantity's
// canonical unit; false when the model has no physics for the quantity
// (it then takes a random walk).
func (m *Model) value(cs *chanState) (float64, bool) {
	s := &m.s
	k := cs.phase
	switch cs.q.Name {
	case "active_power":
		return phased(k, &s.P, sum3(&s.P)), true
	case "active_power_import":
		return max(phased(k, &s.P, sum3(&s.P)), 0), true
	case "active_power_export":
		return max(-phased(k, &s.P, sum3(&s.P)), 0), true
	case "reactive_power":
		return phased(k, &s.Q, sum3(&s.Q)), true
	case "apparent_power":
		return phased(k, &s.S, sum3(&s.S)), true
	case "voltage":
		switch k {
		case phTotal:
			return sum3(&s.V) / 3, true
		case phN:
			return s.vN, true
		case phL12:
			return lineToLine(s.V[0], s.V[1]), true
		case phL23:
			return lineToLine(s.V[1], s.V[2]), true
		case phL31:
			return lineToLine(s.V[2], s.V[0]), true
		}
		return s.V[k], true
	case "current":
		if k == phN {
			return s.iN, true
		}
		return phased(k, &s.I, sum3(&s.I)), true
	case "frequency":
		return 50 + s.freq, true
	case "power_factor":
		if k >= 0 && k < 3 {
			return s.pf[k], true
		}
		if tot := sum3(&s.S); tot > 0 {
			return (math.Abs(s.P[0]) + math.Abs(s.P[1]) + math.Abs(s.P[2])) / tot, true
		}
		return s.pf[0], true
	case "thd_voltage":
		return s.thdV, true
	case "thd_current":
		return s.thdI, true
	case "grid_state":
		return stateIndex(cs.q, "connected")
	case "pv_power":
		return s.pv, true
	case "battery_power":
		return s.batt, true
	case "battery_soc":
		return s.soc, true
	case "battery_energy_stored":
		return s.soc / 100 * m.p.batCap, true
	case "battery_soh":
		return m.p.batSoH, true
	case "battery_state":
		switch {
		case s.batt > 0:
			return stateIndex(cs.q, "charging")
		case s.batt < 0:
			return stateIndex(cs.q, "discharging")
		case s.soc >= 99.5:
			return stateIndex(cs.q, "full")
		case s.soc <= 5.5:
			return stateIndex(cs.q, "empty")
		}
		return stateIndex(cs.q, "idle")
	case "battery_voltage":
		return m.batteryVoltage(), true
	case "battery_current":
		return s.batt / m.batteryVoltage(), true
	case "ev_charging_power":
		return s.ev.power, true
	case "ev_session_energy":
		return s.ev.energy, true
	case "ev_session_state":
		return stateIndex(cs.q, s.ev.status)
	case "ev_current_offered":
		if s.ev.connected() {
			return m.p.evAmps, true
		}
		return 0, true
	case "ev_soc":
		return s.ev.soc, true
	case "temperature":
		return s.temp, true
	case "humidity":
		return s.hum, true
	case "co2":
		return s.co2, true
	case "pm2_5":
		return clamp(s.pm+s.pmSpike+s.cooking, 1, 500), true
	case "pm10":
		return clamp((s.pm+s.pmSpike+s.cooking)*m.p.pmRatio, 1, 800), true
	case "voc_index":
		occ := 0.0
		if s.occupied {
			occ = 40
		}
		return clamp(s.voc+occ, 1, 500), true
	case "noise":
		return s.noise, true
	case "illuminance":
		return s.lux, true
	case "pressure":
		return s.press, true
	case "uv_index":
		return s.uv, true
	case "electrosmog_hf":
		return clamp(math.Exp(s.hfLog), 1, 1e5), true
	case "electrosmog_lf_electric":
		return clamp(s.lfE, 0.5, 200), true
	case "electrosmog_lf_magnetic":
		return clamp(s.lfB+s.loadTotal/20, 5, 5000), true
	case "device_battery_level":
		return s.devBatt, true
	case "occupancy":
		return boolState(cs.q, s.occupied, "occupied", "vacant")
	case "door_window_state":
		return boolState(cs.q, s.doorOpen, "open", "closed")
	case "button_event":
		if s.button < len(cs.q.States) {
			return float64(s.button), true
		}
		return 0, true
	case "relay_state":
		return boolState(cs.q, s.relayOn, "on", "off")
	case "heart_rate":
		return s.hr, true
	case "rr_interval":
		return 60000 / s.hr, true
	case "heart_rate_variability":
		return s.hrv, true
	case "skin_temperature":
		return s.skin, true
	case "metabolic_rate":
		return s.met, true
	case "thermal_comfort_pmv":
		return clamp((s.temp-22)/2.5+0.3*(s.met-1.2), -3, 3), true
	}
	return 0, false
}

// rate is how fast a cumulative channel grows, in its unit per hour.
func (m *Model) rate(cs *chanState, e *env) float64 {
	s := &m.s
	k := cs.phase
	switch cs.q.Name {
	case "energy_active_import":
		return max(phased(k, &s.P, sum3(&s.P)), 0)
	case "energy_active_export":
		return max(-phased(k, &s.P, sum3(&s.P)), 0)
	case "energy_reactive_import":
		return max(phased(k, &s.Q, sum3(&s.Q)), 0)
	case "energy_reactive_export":
		return max(-phased(k, &s.Q, sum3(&s.Q)), 0)
	case "pv_energy_generated":
		return s.pv
	case "ev_energy_register":
		return s.ev.power
	case "energy_expenditure":
		return s.met * 70 // kcal/h: 1 met is about 1 kcal per kg and hour
	}
	// A counter the model knows nothing about grows at a wandering rate.
	lo, hi := typicalRange(cs.q)
	cs.cur = clamp(ou(e.r, cs.cur, (hi-lo)/10, (hi-lo)/20, 3600, e.dt), 0, hi-lo)
	return cs.cur
}

// intervalRate is the power behind a settlement interval register.
func (m *Model) intervalRate(cs *chanState) (float64, bool) {
	s := &m.s
	switch cs.q.Name {
	case "energy_active_import_interval":
		return max(sum3(&s.P), 0), true
	case "energy_active_export_interval":
		return max(-sum3(&s.P), 0), true
	}
	return 0, false
}

func (m *Model) batteryVoltage() float64 {
	// Open-circuit voltage rises with charge; the current moves it a bit.
	v := m.p.batVnom * (0.94 + 0.1*m.s.soc/100)
	return v * (1 + 0.01*m.s.batt/m.p.batMax)
}

// phased picks phase k (0..2) of a per-phase array, or the total.
func phased(k int, a *[3]float64, total float64) float64 {
	if k >= 0 && k < 3 {
		return a[k]
	}
	if k == phTotal {
		return total
	}
	return 0 // N or line-to-line: no such power
}

func sum3(a *[3]float64) float64 { return a[0] + a[1] + a[2] }

// lineToLine is the voltage between two phases 120° apart.
func lineToLine(a, b float64) float64 { return math.Sqrt(a*a + b*b + a*b) }

// stateIndex is the code of a state name; false when the catalogue's
// quantity lacks it (the channel then walks).
func stateIndex(q cim.Quantity, name string) (float64, bool) {
	for i, s := range q.States {
		if s == name {
			return float64(i), true
		}
	}
	return 0, false
}

func boolState(q cim.Quantity, b bool, yes, no string) (float64, bool) {
	if b {
		return stateIndex(q, yes)
	}
	return stateIndex(q, no)
}
