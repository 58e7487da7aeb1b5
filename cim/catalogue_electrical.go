package cim

// electricalQuantities are CIM-NOTES.md §4.1: site meters, sub-meters, smart
// plugs, inverters. Power follows the load convention: positive when drawn
// from the grid into the subject.
func electricalQuantities() []Quantity {
	return []Quantity{
		{
			Name: "active_power", Unit: "W", Kind: Instantaneous, Class: Technical, Phased: true,
			Description: "net active power, signed: + import, − export",
			OBIS:        "1-0:16.7.0", ReadingType: "0.0.0.12.4.1.37.0.0.0.0.0.0.0.0.0.38.0",
			SAREF: "saref:Power", UNCEFACT: "WTT", Min: -maxGridPower, Max: maxGridPower,
		},
		{
			Name: "active_power_import", Unit: "W", Kind: Instantaneous, Class: Technical, Phased: true,
			Description: "active power drawn from the grid (P+), non-negative",
			OBIS:        "1-0:1.7.0", ReadingType: "0.0.0.12.1.1.37.0.0.0.0.0.0.0.0.0.38.0",
			SAREF: "saref:Power", UNCEFACT: "WTT", Min: 0, Max: maxGridPower,
		},
		{
			Name: "active_power_export", Unit: "W", Kind: Instantaneous, Class: Technical, Phased: true,
			Description: "active power fed into the grid (P−), non-negative",
			OBIS:        "1-0:2.7.0", ReadingType: "0.0.0.12.19.1.37.0.0.0.0.0.0.0.0.0.38.0",
			SAREF: "saref:Power", UNCEFACT: "WTT", Min: 0, Max: maxGridPower,
		},
		{
			// OBIS has Q+ (3.7.0) and Q− (4.7.0) but no code for the signed
			// difference, so none is given.
			Name: "reactive_power", Unit: "var", Kind: Instantaneous, Class: Technical, Phased: true,
			Description: "reactive power, signed: Q+ − Q−",
			ReadingType: "0.0.0.12.4.1.37.0.0.0.0.0.0.0.0.0.63.0",
			UNCEFACT:    "D44", Min: -maxGridPower, Max: maxGridPower,
		},
		{
			Name: "apparent_power", Unit: "VA", Kind: Instantaneous, Class: Technical, Phased: true,
			Description: "apparent power, non-negative",
			OBIS:        "1-0:9.7.0", ReadingType: "0.0.0.12.0.1.37.0.0.0.0.0.0.0.0.0.61.0",
			UNCEFACT: "D46", Min: 0, Max: maxGridPower,
		},
		{
			Name: "energy_active_import", Unit: "Wh", Kind: Cumulative, Class: Technical, Phased: true,
			Description: "active energy import register (total of all tariffs)",
			OBIS:        "1-0:1.8.0", ReadingType: "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.0.72.0",
			SAREF: "saref:Energy", UNCEFACT: "WHR", Min: 0, Max: maxRegister,
		},
		{
			Name: "energy_active_export", Unit: "Wh", Kind: Cumulative, Class: Technical, Phased: true,
			Description: "active energy export register (total of all tariffs)",
			OBIS:        "1-0:2.8.0", ReadingType: "0.0.0.1.19.1.12.0.0.0.0.0.0.0.0.0.72.0",
			SAREF: "saref:Energy", UNCEFACT: "WHR", Min: 0, Max: maxRegister,
		},
		{
			// Interval energy of a usage point is what settlement and the
			// customer data-access rules (Reg. 2023/1162) are about; CIM-NOTES
			// §3 classes it as personal data.
			Name: "energy_active_import_interval", Unit: "Wh", Kind: Delta, Class: Personal,
			Description: "active energy imported in the interval ending at the reading's time (15 min for settlement)",
			ReadingType: "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.0.72.0",
			SAREF:       "saref:Energy", UNCEFACT: "WHR", Min: 0, Max: maxInterval,
		},
		{
			Name: "energy_active_export_interval", Unit: "Wh", Kind: Delta, Class: Personal,
			Description: "active energy exported in the interval ending at the reading's time (15 min for settlement)",
			ReadingType: "0.0.2.4.19.1.12.0.0.0.0.0.0.0.0.0.72.0",
			SAREF:       "saref:Energy", UNCEFACT: "WHR", Min: 0, Max: maxInterval,
		},
		{
			// Rec. 20 has kvarh (K3) but no plain varh code.
			Name: "energy_reactive_import", Unit: "varh", Kind: Cumulative, Class: Technical, Phased: true,
			Description: "reactive energy import register (Q+)",
			OBIS:        "1-0:3.8.0", ReadingType: "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.0.73.0",
			Min: 0, Max: maxRegister,
		},
		{
			Name: "energy_reactive_export", Unit: "varh", Kind: Cumulative, Class: Technical, Phased: true,
			Description: "reactive energy export register (Q−)",
			OBIS:        "1-0:4.8.0", ReadingType: "0.0.0.1.19.1.12.0.0.0.0.0.0.0.0.0.73.0",
			Min: 0, Max: maxRegister,
		},
		{
			// 12.7.0 is "voltage, any phase": right for a single-phase
			// device's total, and the base of the per-phase codes.
			Name: "voltage", Unit: "V", Kind: Instantaneous, Class: Technical, Phased: true,
			Description: "RMS voltage; L1..L3 to neutral, L12..L31 line to line, N neutral to earth",
			OBIS:        "1-0:12.7.0", ReadingType: "0.0.0.12.0.1.54.0.0.0.0.0.0.0.0.0.29.0",
			UNCEFACT: "VLT", Min: 0, Max: maxGridVolt,
		},
		{
			// Signed: some meters and battery systems report the direction
			// in the current's sign.
			Name: "current", Unit: "A", Kind: Instantaneous, Class: Technical, Phased: true,
			Description: "RMS current; L1..L3 or N",
			OBIS:        "1-0:11.7.0", ReadingType: "0.0.0.12.0.1.4.0.0.0.0.0.0.0.0.0.5.0",
			UNCEFACT: "AMP", Min: -maxGridAmps, Max: maxGridAmps,
		},
		{
			Name: "frequency", Unit: "Hz", Kind: Instantaneous, Class: Technical,
			Description: "grid frequency",
			OBIS:        "1-0:14.7.0", ReadingType: "0.0.0.12.0.1.15.0.0.0.0.0.0.0.0.0.33.0",
			UNCEFACT: "HTZ", Min: 0, Max: 1000,
		},
		{
			Name: "power_factor", Unit: "1", Kind: Instantaneous, Class: Technical, Phased: true,
			Description: "power factor P/S; the sign convention varies by device (− often means leading or export)",
			OBIS:        "1-0:13.7.0", ReadingType: "0.0.0.12.0.1.38.0.0.0.0.0.0.0.0.0.65.0",
			UNCEFACT: "C62", Min: -1, Max: 1,
		},
		{
			Name: "thd_voltage", Unit: "%", Kind: Instantaneous, Class: Technical, Phased: true,
			Description: "total harmonic distortion of the voltage",
			UNCEFACT:    "P1", Min: 0, Max: maxPercentTHD,
		},
		{
			Name: "thd_current", Unit: "%", Kind: Instantaneous, Class: Technical, Phased: true,
			Description: "total harmonic distortion of the current",
			UNCEFACT:    "P1", Min: 0, Max: maxPercentTHD,
		},
		{
			// Tesla Powerwall's grid_status; states follow its System* values.
			Name: "grid_state", Unit: "1", Kind: State, Class: Technical,
			Description: "whether the site runs on the grid or islanded",
			UNCEFACT:    "C62",
			States:      []string{"connected", "islanded", "islanded_ready", "transition_to_island", "transition_to_grid", "faulted"},
		},
	}
}
