package cim

// storagePVAndEVQuantities are CIM-NOTES.md §4.2: batteries, PV and
// charging. Battery power follows the CIM load convention (+ charging);
// connectors for devices with the opposite sign (Powerwall) flip it.
func storagePVAndEVQuantities() []Quantity {
	return []Quantity{
		{
			Name: "battery_power", Unit: "W", Kind: Instantaneous, Class: Technical,
			Description: "battery power, signed: + charging, − discharging",
			SAREF:       "saref:Power", UNCEFACT: "WTT", Min: -maxGridPower, Max: maxGridPower,
		},
		{
			Name: "battery_soc", Unit: "%", Kind: Instantaneous, Class: Technical,
			Description: "state of charge of a storage battery (not a sensor's own battery)",
			UNCEFACT:    "P1", Min: 0, Max: maxPercent,
		},
		{
			Name: "battery_energy_stored", Unit: "Wh", Kind: Instantaneous, Class: Technical,
			Description: "energy stored in the battery (CIM BatteryUnit.storedE)",
			SAREF:       "saref:Energy", UNCEFACT: "WHR", Min: 0, Max: 1e12,
		},
		{
			// New packs report a little above 100 %.
			Name: "battery_soh", Unit: "%", Kind: Instantaneous, Class: Technical,
			Description: "state of health: usable capacity relative to rated",
			UNCEFACT:    "P1", Min: 0, Max: 150,
		},
		{
			// Order matches Victron's system state register (0 idle,
			// 1 charging, 2 discharging); CIM BatteryStateKind calls idle
			// "waiting".
			Name: "battery_state", Unit: "1", Kind: State, Class: Technical,
			Description: "battery operating state (CIM BatteryUnit.batteryState)",
			UNCEFACT:    "C62",
			States:      []string{"idle", "charging", "discharging", "full", "empty"},
		},
		{
			Name: "battery_voltage", Unit: "V", Kind: Instantaneous, Class: Technical,
			Description: "DC voltage of the battery",
			UNCEFACT:    "VLT", Min: 0, Max: maxDCVoltage,
		},
		{
			Name: "battery_current", Unit: "A", Kind: Instantaneous, Class: Technical,
			Description: "DC current of the battery, signed: + charging",
			UNCEFACT:    "AMP", Min: -maxGridAmps, Max: maxGridAmps,
		},
		{
			Name: "pv_power", Unit: "W", Kind: Instantaneous, Class: Technical,
			Description: "PV generation, non-negative",
			OBIS:        "1-0:2.7.0", SAREF: "saref:Power", UNCEFACT: "WTT", Min: 0, Max: maxGridPower,
		},
		{
			Name: "pv_energy_generated", Unit: "Wh", Kind: Cumulative, Class: Technical,
			Description: "PV generation register",
			OBIS:        "1-0:2.8.0", ReadingType: "0.0.0.1.19.1.12.0.0.0.0.0.0.0.0.0.72.0",
			SAREF: "saref:Energy", UNCEFACT: "WHR", Min: 0, Max: maxRegister,
		},
		{
			// Signed because bidirectional chargers (Steinheim's EVTEC)
			// discharge the vehicle.
			Name: "ev_charging_power", Unit: "W", Kind: Instantaneous, Class: Technical,
			Description: "charging power at the charge point, signed: + into the vehicle (OCPP Power.Active.Import)",
			OBIS:        "1-0:1.7.0", ReadingType: "0.0.0.12.1.1.37.0.0.0.0.0.0.0.0.0.38.0",
			SAREF: "saref:Power", UNCEFACT: "WTT", Min: -maxEVPower, Max: maxEVPower,
		},
		{
			Name: "ev_energy_register", Unit: "Wh", Kind: Cumulative, Class: Technical,
			Description: "charge point energy register (OCPP Energy.Active.Import.Register)",
			OBIS:        "1-0:1.8.0", ReadingType: "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.0.72.0",
			SAREF: "saref:Energy", UNCEFACT: "WHR", Min: 0, Max: maxRegister,
		},
		{
			Name: "ev_session_energy", Unit: "Wh", Kind: Delta, Class: Technical,
			Description: "energy delivered in a charging session so far (OCPP meterStop − meterStart)",
			SAREF:       "saref:Energy", UNCEFACT: "WHR", Min: 0, Max: 1e9,
		},
		{
			// OCPP 1.6 ChargePointStatus, in the specification's order.
			Name: "ev_session_state", Unit: "1", Kind: State, Class: Technical,
			Description: "charge point connector status (OCPP 1.6 ChargePointStatus)",
			UNCEFACT:    "C62",
			States: []string{"available", "preparing", "charging", "suspended_ev", "suspended_evse",
				"finishing", "reserved", "unavailable", "faulted"},
		},
		{
			Name: "ev_current_offered", Unit: "A", Kind: Instantaneous, Class: Technical,
			Description: "maximum current offered to the vehicle (OCPP Current.Offered)",
			UNCEFACT:    "AMP", Min: 0, Max: 1e4,
		},
		{
			Name: "ev_power_offered", Unit: "W", Kind: Instantaneous, Class: Technical,
			Description: "maximum power offered to the vehicle (OCPP Power.Offered)",
			SAREF:       "saref:Power", UNCEFACT: "WTT", Min: 0, Max: maxEVPower,
		},
		{
			// OCPP 1.6 ChargePointErrorCode, in the specification's order.
			Name: "ev_error_code", Unit: "1", Kind: State, Class: Technical,
			Description: "charge point connector error code (OCPP 1.6 ChargePointErrorCode)",
			UNCEFACT:    "C62",
			States: []string{"connector_lock_failure", "ev_communication_error", "ground_failure",
				"high_temperature", "internal_error", "local_list_conflict", "no_error", "other_error",
				"over_current_failure", "power_meter_failure", "power_switch_failure", "reader_failure",
				"reset_failure", "under_voltage", "over_voltage", "weak_signal"},
		},
		{
			// A vehicle's charge level tracks its owner's trips (CIM-NOTES §4.2).
			Name: "ev_soc", Unit: "%", Kind: Instantaneous, Class: Personal,
			Description: "vehicle battery state of charge (OCPP SoC)",
			UNCEFACT:    "P1", Min: 0, Max: maxPercent,
		},
	}
}
