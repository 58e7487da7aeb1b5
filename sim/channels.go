package sim

import (
	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/profile"
)

// ChannelsOf lists the distinct (quantity, phase) pairs of a profile's
// mappings in file order: the channels a model of that device must feed.
func ChannelsOf(p *profile.Profile) []Channel {
	if p == nil {
		return nil
	}
	seen := map[Channel]bool{}
	var out []Channel
	for _, m := range p.Mappings() {
		ch := Channel{Quantity: m.Quantity, Phase: m.Phase}
		if seen[ch] {
			continue
		}
		seen[ch] = true
		out = append(out, ch)
	}
	return out
}

// GuessKind derives a model kind from the channels a device has, for a
// ModelConfig whose Kind is empty: EV quantities make a charge point, room
// climate quantities without electrical power an environment sensor, a
// battery without a grid meter a battery system, PV without a grid meter an
// inverter; everything else is a household.
func GuessKind(chs []Channel) string {
	var ev, env, electric, battery, pv, meter bool
	for _, ch := range chs {
		switch ch.Quantity {
		case "ev_charging_power", "ev_energy_register", "ev_session_energy", "ev_session_state",
			"ev_current_offered", "ev_soc":
			ev = true
		case "temperature", "humidity", "co2", "pm2_5", "pm10", "voc_index", "noise", "illuminance",
			"pressure", "uv_index", "electrosmog_hf", "electrosmog_lf_electric", "electrosmog_lf_magnetic",
			"occupancy", "door_window_state", "button_event", "heart_rate", "heart_rate_variability",
			"rr_interval", "skin_temperature", "energy_expenditure", "metabolic_rate", "thermal_comfort_pmv":
			env = true
		case "battery_power", "battery_soc", "battery_energy_stored", "battery_state",
			"battery_voltage", "battery_current", "battery_soh":
			battery = true
		case "pv_power", "pv_energy_generated":
			pv = true
		case "active_power", "active_power_import", "active_power_export", "energy_active_import",
			"energy_active_export", "reactive_power", "apparent_power", "current":
			meter = true
		}
		if meter || battery || pv || ev {
			electric = true
		}
	}
	switch {
	case ev:
		return KindEV
	case env && !electric:
		return KindEnvironment
	case battery && !meter:
		return KindBattery
	case pv && !meter && !battery:
		return KindPV
	}
	return KindHousehold
}

// KindOf is the model kind of a profile's device: from its asset type
// where that says enough, else GuessKind of its channels.
func KindOf(p *profile.Profile) string {
	chs := ChannelsOf(p)
	if p == nil {
		return GuessKind(chs)
	}
	guess := GuessKind(chs)
	switch p.AssetType {
	case cim.ChargingPoint, cim.ElectricVehicle:
		return KindEV
	case cim.CommunityBattery:
		return KindBattery
	case cim.MVLVTransformer:
		return KindTransformer
	case cim.EnvironmentalSensor, cim.PhysiologicalSensor:
		return KindEnvironment
	case cim.EnergyAsset:
		if guess == KindHousehold {
			return KindAppliance
		}
	case cim.Inverter:
		// A hybrid inverter with a battery and a grid meter sees the site.
		if guess == KindHousehold && !hasAny(chs, "battery_power", "battery_soc") {
			return KindPV
		}
	}
	return guess
}

func hasAny(chs []Channel, names ...string) bool {
	for _, ch := range chs {
		for _, n := range names {
			if ch.Quantity == n {
				return true
			}
		}
	}
	return false
}
