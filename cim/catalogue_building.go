package cim

// buildingQuantities are CIM-NOTES.md §4.3, indoor environment and
// building, plus the extra readings of the pilot sensors (AIRCARE
// electrosmog, Aeotec UV, sensor batteries).
func buildingQuantities() []Quantity {
	return []Quantity{
		{
			Name: "temperature", Unit: "°C", Kind: Instantaneous, Class: Technical,
			Description: "air or device temperature",
			OBIS:        "0-0:96.9.0", ReadingType: "0.0.0.12.0.4.46.0.0.0.0.0.0.0.0.0.23.0",
			SAREF: "saref:Temperature", UNCEFACT: "CEL", Min: -100, Max: 200,
		},
		{
			Name: "humidity", Unit: "%", Kind: Instantaneous, Class: Technical,
			Description: "relative humidity",
			OBIS:        "0-0:96.9.2", SAREF: "saref:Humidity", UNCEFACT: "P1", Min: 0, Max: maxPercent,
		},
		{
			Name: "co2", Unit: "ppm", Kind: Instantaneous, Class: Technical,
			Description: "carbon dioxide concentration",
			UNCEFACT:    "59", Min: 0, Max: 1e6,
		},
		{
			Name: "pm2_5", Unit: "µg/m³", Kind: Instantaneous, Class: Technical,
			Description: "fine dust, particles up to 2.5 µm",
			UNCEFACT:    "GQ", Min: 0, Max: 1e5,
		},
		{
			Name: "pm10", Unit: "µg/m³", Kind: Instantaneous, Class: Technical,
			Description: "fine dust, particles up to 10 µm",
			UNCEFACT:    "GQ", Min: 0, Max: 1e5,
		},
		{
			Name: "voc_index", Unit: "1", Kind: Instantaneous, Class: Technical,
			Description: "volatile organic compounds index (Sensirion scale, 100 = typical)",
			UNCEFACT:    "C62", Min: 0, Max: 500,
		},
		{
			Name: "noise", Unit: "dB", Kind: Instantaneous, Class: Technical,
			Description: "A-weighted sound level",
			UNCEFACT:    "2N", Min: 0, Max: 200,
		},
		{
			Name: "illuminance", Unit: "lx", Kind: Instantaneous, Class: Technical,
			Description: "illuminance (ambient brightness)",
			SAREF:       "saref:Light", UNCEFACT: "LUX", Min: 0, Max: 1e6,
		},
		{
			// Narrow on purpose: no inhabited place lies outside it, and it
			// catches Pa or kPa sent as hPa.
			Name: "pressure", Unit: "hPa", Kind: Instantaneous, Class: Technical,
			Description: "atmospheric pressure",
			OBIS:        "0-0:96.9.1", SAREF: "saref:Pressure", UNCEFACT: "A97", Min: 300, Max: 1200,
		},
		{
			Name: "uv_index", Unit: "1", Kind: Instantaneous, Class: Technical,
			Description: "ultraviolet index (WHO scale)",
			UNCEFACT:    "C62", Min: 0, Max: 50,
		},
		{
			Name: "electrosmog_hf", Unit: "µW/m²", Kind: Instantaneous, Class: Technical,
			Description: "high-frequency field power density (AIRCARE: 10 MHz – 8 GHz)",
			Min:         0, Max: 1e10,
		},
		{
			Name: "electrosmog_lf_electric", Unit: "V/m", Kind: Instantaneous, Class: Technical,
			Description: "low-frequency (50 Hz) electric field strength",
			Min:         0, Max: 1e5,
		},
		{
			Name: "electrosmog_lf_magnetic", Unit: "nT", Kind: Instantaneous, Class: Technical,
			Description: "low-frequency (50 Hz) magnetic flux density",
			Min:         0, Max: 1e8,
		},
		{
			Name: "device_battery_level", Unit: "%", Kind: Instantaneous, Class: Technical,
			Description: "charge of a sensor's own battery (not a storage battery)",
			UNCEFACT:    "P1", Min: 0, Max: maxPercent,
		},
		{
			// Presence over time reveals a household's routine (CIM-NOTES §4.3).
			Name: "occupancy", Unit: "1", Kind: State, Class: Personal,
			Description: "whether a room is occupied (presence or motion)",
			SAREF:       "saref:Occupancy", UNCEFACT: "C62",
			States: []string{"vacant", "occupied"},
		},
		{
			Name: "door_window_state", Unit: "1", Kind: State, Class: Technical,
			Description: "door or window contact",
			SAREF:       "saref:OpenCloseState", UNCEFACT: "C62",
			States: []string{"closed", "open"},
		},
		{
			// Shelly Button1 S/L/SS/SSS map to press/long_press/double/triple.
			Name: "button_event", Unit: "1", Kind: Event, Class: Technical,
			Description: "a push button was used",
			UNCEFACT:    "C62",
			States:      []string{"press", "long_press", "double_press", "triple_press", "release"},
		},
		{
			Name: "relay_state", Unit: "1", Kind: State, Class: Technical,
			Description: "relay or switched socket position",
			OBIS:        "0-0:96.3.10", SAREF: "saref:OnOffState", UNCEFACT: "C62",
			States: []string{"off", "on"},
		},
	}
}
