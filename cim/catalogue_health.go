package cim

// healthQuantities are CIM-NOTES.md §4.4: data concerning health (GDPR
// Art. 9), readable only with the restricted scope. No OBIS or CIM codes
// exist for them, and they stay out of the ledger.
func healthQuantities() []Quantity {
	return []Quantity{
		{
			Name: "heart_rate", Unit: "1/min", Kind: Instantaneous, Class: SpecialHealth,
			Description: "heart rate in beats per minute",
			UNCEFACT:    "BPM", Min: 0, Max: 300,
		},
		{
			Name: "heart_rate_variability", Unit: "ms", Kind: Instantaneous, Class: SpecialHealth,
			Description: "heart rate variability (RMSSD)",
			UNCEFACT:    "C26", Min: 0, Max: 5000,
		},
		{
			Name: "rr_interval", Unit: "ms", Kind: Instantaneous, Class: SpecialHealth,
			Description: "time between two heart beats",
			UNCEFACT:    "C26", Min: 0, Max: 10000,
		},
		{
			Name: "skin_temperature", Unit: "°C", Kind: Instantaneous, Class: SpecialHealth,
			Description: "skin temperature measured by a wearable",
			UNCEFACT:    "CEL", Min: -20, Max: 60,
		},
		{
			Name: "energy_expenditure", Unit: "kcal", Kind: Cumulative, Class: SpecialHealth,
			Description: "energy a person has spent, as counted by a wearable",
			UNCEFACT:    "E14", Min: 0, Max: 1e7,
		},
		{
			// Rec. 20 has no code for met; 1 met = 58.2 W/m² (ISO 7730), so
			// W/m² converts.
			Name: "metabolic_rate", Unit: "met", Kind: Instantaneous, Class: SpecialHealth,
			Description: "metabolic rate (TwinERGY tc_met, 1..6 in practice)",
			Min:         0, Max: 20,
		},
		{
			// Derived from physiological data, so health data once linked to
			// a person (CIM-NOTES §4.4).
			Name: "thermal_comfort_pmv", Unit: "1", Kind: Instantaneous, Class: SpecialHealth,
			Description: "predicted mean vote, ISO 7730 (−3 cold … +3 hot)",
			UNCEFACT:    "C62", Min: -3, Max: 3,
		},
	}
}
