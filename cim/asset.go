package cim

import "fmt"

// AssetType is the kind of a physical asset, from the seed's tables 4 and 9.
type AssetType string

// The asset types of the pilot installations.
const (
	SmartMeter          AssetType = "smart_meter"
	ChargingPoint       AssetType = "charging_point"
	CommunityBattery    AssetType = "community_battery"
	ElectricVehicle     AssetType = "electric_vehicle"
	EnergyAsset         AssetType = "energy_asset" // an appliance or other flexible load
	EnvironmentalSensor AssetType = "environmental_sensor"
	HomeBattery         AssetType = "home_battery"
	Inverter            AssetType = "inverter"
	MVLVTransformer     AssetType = "mv_lv_transformer"
	PhysiologicalSensor AssetType = "physiological_sensor"
	Gateway             AssetType = "gateway"
)

// AssetTypes lists every asset type in a stable order.
func AssetTypes() []AssetType {
	return []AssetType{SmartMeter, ChargingPoint, CommunityBattery, ElectricVehicle, EnergyAsset,
		EnvironmentalSensor, HomeBattery, Inverter, MVLVTransformer, PhysiologicalSensor, Gateway}
}

// ParseAssetType checks that s names an asset type.
func ParseAssetType(s string) (AssetType, error) {
	for _, t := range AssetTypes() {
		if string(t) == s {
			return t, nil
		}
	}
	return "", fmt.Errorf("unknown asset type %q", s)
}

// Location is where an asset stands. Zero fields are unknown.
type Location struct {
	Latitude  float64 `json:"lat,omitempty" yaml:"lat,omitempty"`
	Longitude float64 `json:"lon,omitempty" yaml:"lon,omitempty"`
	Address   string  `json:"address,omitempty" yaml:"address,omitempty"`
}

// Asset is a physical device or installation that produces readings.
type Asset struct {
	Site      string    `json:"site" yaml:"site,omitempty"`
	ID        string    `json:"id" yaml:"id"` // unique in the site, e.g. "house-01/meter"
	Type      AssetType `json:"type" yaml:"type"`
	Name      string    `json:"name,omitempty" yaml:"name,omitempty"`
	Make      string    `json:"make,omitempty" yaml:"make,omitempty"`
	Model     string    `json:"model,omitempty" yaml:"model,omitempty"`
	Household string    `json:"household,omitempty" yaml:"household,omitempty"`
	Location  *Location `json:"location,omitempty" yaml:"location,omitempty"`
	// Ledger marks an asset whose readings (signed by its gateway) and
	// 15-minute energy records go into the energy ledger.
	Ledger bool `json:"ledger,omitempty" yaml:"ledger,omitempty"`
}

// Site is a tenant: one pilot site or energy community.
type Site struct {
	ID       string `json:"id" yaml:"id"` // e.g. "bristol"
	Name     string `json:"name" yaml:"name"`
	Country  string `json:"country,omitempty" yaml:"country,omitempty"`   // ISO 3166-1 alpha-2
	Timezone string `json:"timezone,omitempty" yaml:"timezone,omitempty"` // IANA name
}

// CheckLedger refuses a ledger mark the ledger must not carry: health data
// (a physiological sensor's) never enters it.
func (a Asset) CheckLedger() error {
	if a.Ledger && a.Type == PhysiologicalSensor {
		return &FieldError{Field: "ledger", Value: "true", Reason: "a physiological sensor's readings are health data and never enter the ledger"}
	}
	return nil
}
