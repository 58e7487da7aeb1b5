package ocpp

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lorenzodonini/ocpp-go/ocpp1.6/types"

	"github.com/gridlink/gridlink/cim"
)

// measurandMap says where an OCPP 1.6 measurand goes in the catalogue.
type measurandMap struct {
	total  string  // quantity of a value without phase
	phased string  // quantity of a per-phase value; "" when phases make no sense
	sign   float64 // −1 folds an export direction into a signed quantity
}

// measurands maps every OCPP 1.6 measurand that has a catalogue quantity.
// Import and export directions of power and current are folded into the
// signed quantity (+ into the vehicle): when a charger sends both for the
// same instant the two are summed into the net value. Not mapped, for want
// of a quantity: Energy.Reactive.Import.Interval,
// Energy.Reactive.Export.Interval and RPM (fan speed).
var measurands = map[types.Measurand]measurandMap{
	types.MeasurandEnergyActiveImportRegister:   {"ev_energy_register", "energy_active_import", 1},
	types.MeasurandEnergyActiveExportRegister:   {"energy_active_export", "energy_active_export", 1},
	types.MeasurandEnergyReactiveImportRegister: {"energy_reactive_import", "energy_reactive_import", 1},
	types.MeasurandEnergyReactiveExportRegister: {"energy_reactive_export", "energy_reactive_export", 1},
	types.MeasurandEnergyActiveImportInterval:   {"energy_active_import_interval", "", 1},
	types.MeasurandEnergyActiveExportInterval:   {"energy_active_export_interval", "", 1},
	types.MeasurandPowerActiveImport:            {"ev_charging_power", "active_power", 1},
	types.MeasurandPowerActiveExport:            {"ev_charging_power", "active_power", -1},
	types.MeasurandPowerReactiveImport:          {"reactive_power", "reactive_power", 1},
	types.MeasurandPowerReactiveExport:          {"reactive_power", "reactive_power", -1},
	types.MeasurandPowerOffered:                 {"ev_power_offered", "", 1},
	types.MeasurandPowerFactor:                  {"power_factor", "power_factor", 1},
	types.MeasurandCurrentImport:                {"current", "current", 1},
	types.MeasurandCurrentExport:                {"current", "current", -1},
	types.MeasurandCurrentOffered:               {"ev_current_offered", "", 1},
	types.MeasurandVoltage:                      {"voltage", "voltage", 1},
	types.MeasurandFrequency:                    {"frequency", "", 1},
	types.MeasurandTemperature:                  {"temperature", "", 1},
	types.MeasurandSoC:                          {"ev_soc", "", 1},
}

// netQuantities are the signed quantities whose import and export values
// for one instant are summed.
var netQuantities = map[string]bool{"ev_charging_power": true, "active_power": true, "reactive_power": true, "current": true}

// phases maps OCPP phases to catalogue phases. Voltages are to neutral
// unless line to line; "L1-N" on a current is read as L1.
var phases = map[types.Phase]cim.Phase{
	"": cim.PhaseTotal, types.PhaseL1: cim.PhaseL1, types.PhaseL2: cim.PhaseL2, types.PhaseL3: cim.PhaseL3,
	types.PhaseN: cim.PhaseN, types.PhaseL1N: cim.PhaseL1, types.PhaseL2N: cim.PhaseL2, types.PhaseL3N: cim.PhaseL3,
	types.PhaseL1L2: cim.PhaseL12, types.PhaseL2L3: cim.PhaseL23, types.PhaseL3L1: cim.PhaseL31,
}

// locationSuffix places a value measured elsewhere than at the outlet (the
// OCPP default) on a sub-asset of the connector, so that, say, the inlet's
// energy register and the outlet's never share a series. SoC is always the
// vehicle's and stays on the connector's asset.
var locationSuffix = map[types.Location]string{
	"": "", types.LocationOutlet: "", types.LocationInlet: "/inlet", types.LocationBody: "/body",
	types.LocationCable: "/cable", types.LocationEV: "/ev",
}

var knownContexts = map[types.ReadingContext]bool{
	"": true, types.ReadingContextInterruptionBegin: true, types.ReadingContextInterruptionEnd: true,
	types.ReadingContextOther: true, types.ReadingContextSampleClock: true, types.ReadingContextSamplePeriodic: true,
	types.ReadingContextTransactionBegin: true, types.ReadingContextTransactionEnd: true, types.ReadingContextTrigger: true,
}

// connectorAsset is the asset of a connector's readings: the charge point's
// own asset for connector 0 (the whole charger) and 1, asset/connector-N
// for the further connectors of a multi-socket charger.
func connectorAsset(asset string, connector int) string {
	if connector <= 1 {
		return asset
	}
	return asset + "/connector-" + strconv.Itoa(connector)
}

// meterReadings maps OCPP meter values to readings of asset (a connector's
// asset). Each sampled value that cannot be stored yields an error in
// skipped, naming it, and no reading; the others still map. Values repeated
// for the same measurand, phase, location and instant keep the first.
func meterReadings(cat *cim.Catalogue, asset string, mvs []types.MeterValue, now time.Time) (rs []cim.Reading, skipped []error) {
	type sampleKey struct {
		measurand types.Measurand
		phase     types.Phase
		location  types.Location
		time      int64
	}
	type seriesTime struct {
		cim.SeriesKey
		time int64
	}
	seenSample := map[sampleKey]bool{}
	index := map[seriesTime]int{}
	for i, mv := range mvs {
		if mv.Timestamp == nil || mv.Timestamp.IsZero() {
			skipped = append(skipped, fmt.Errorf("meterValue[%d]: no timestamp", i))
			continue
		}
		t := mv.Timestamp.Time
		for j, sv := range mv.SampledValue {
			r, err := sampleReading(cat, asset, t, sv, now)
			if err != nil {
				skipped = append(skipped, fmt.Errorf("meterValue[%d].sampledValue[%d]: %w", i, j, err))
				continue
			}
			meas := sv.Measurand
			if meas == "" {
				meas = types.MeasurandEnergyActiveImportRegister
			}
			sk := sampleKey{meas, sv.Phase, sv.Location, r.Time}
			if seenSample[sk] {
				skipped = append(skipped, fmt.Errorf("meterValue[%d].sampledValue[%d]: second %s value for the same phase, location and time; the first is kept", i, j, meas))
				continue
			}
			seenSample[sk] = true
			st := seriesTime{r.SeriesKey, r.Time}
			if k, dup := index[st]; dup {
				if netQuantities[r.Quantity] {
					rs[k].Value += r.Value
					continue
				}
				skipped = append(skipped, fmt.Errorf("meterValue[%d].sampledValue[%d]: %s maps to %s %s already given for this time; the first is kept",
					i, j, meas, r.Quantity, r.Phase))
				continue
			}
			index[st] = len(rs)
			rs = append(rs, r)
		}
	}
	return rs, skipped
}

// sampleReading maps one sampled value.
func sampleReading(cat *cim.Catalogue, asset string, t time.Time, sv types.SampledValue, now time.Time) (cim.Reading, error) {
	if !knownContexts[sv.Context] {
		// A vendor context (Alfen's "CurrentMax") says the value is not a
		// sample of the measurand; storing it as one would be wrong.
		return cim.Reading{}, fmt.Errorf("context %q is not an OCPP 1.6 reading context; value %q not stored", sv.Context, sv.Value)
	}
	switch sv.Format {
	case "", types.ValueFormatRaw:
	case types.ValueFormatSignedData:
		return cim.Reading{}, fmt.Errorf("format SignedData: signed meter values are not decoded")
	default:
		return cim.Reading{}, fmt.Errorf("format %q is not Raw or SignedData", sv.Format)
	}
	meas := sv.Measurand
	if meas == "" {
		meas = types.MeasurandEnergyActiveImportRegister // the OCPP default
	}
	m, ok := measurands[meas]
	if !ok {
		return cim.Reading{}, fmt.Errorf("measurand %q has no catalogue quantity", meas)
	}
	phase, ok := phases[sv.Phase]
	if !ok {
		return cim.Reading{}, fmt.Errorf("phase %q is not an OCPP 1.6 phase", sv.Phase)
	}
	quantity := m.total
	if phase != cim.PhaseTotal {
		if m.phased == "" {
			return cim.Reading{}, fmt.Errorf("measurand %s has no phases, got phase %q", meas, sv.Phase)
		}
		quantity = m.phased
	}
	suffix, ok := locationSuffix[sv.Location]
	if !ok {
		return cim.Reading{}, fmt.Errorf("location %q is not an OCPP 1.6 location", sv.Location)
	}
	if meas == types.MeasurandSoC {
		suffix = ""
	}
	unit := string(sv.Unit)
	if unit == string(types.UnitOfMeasureCelcius) { // sic, in the OCPP 1.6 schema
		unit = "Celsius"
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(sv.Value), 64)
	if err != nil {
		return cim.Reading{}, fmt.Errorf("measurand %s: value %q is not a number", meas, sv.Value)
	}
	v *= m.sign
	if v == 0 {
		v = 0 // no −0 from the sign
	}
	r, err := cat.Normalize(cim.Input{
		Asset: asset + suffix, Quantity: quantity, Phase: string(phase), Unit: unit,
		Time: t.UnixMilli(), Value: v,
	}, now)
	if err != nil {
		return cim.Reading{}, fmt.Errorf("measurand %s: %w", meas, err)
	}
	return r, nil
}

// latestRegister returns the newest energy register reading of asset.
func latestRegister(rs []cim.Reading, asset string) (cim.Reading, bool) {
	var best cim.Reading
	found := false
	for _, r := range rs {
		if r.Asset == asset && r.Quantity == "ev_energy_register" && r.Phase == cim.PhaseTotal && (!found || r.Time > best.Time) {
			best, found = r, true
		}
	}
	return best, found
}

// beginRegister returns the energy register at the start of a transaction,
// from transaction data: the Transaction.Begin sample, else the oldest.
func beginRegister(cat *cim.Catalogue, asset string, mvs []types.MeterValue, now time.Time) (float64, bool) {
	var best cim.Reading
	found, begin := false, false
	for _, mv := range mvs {
		if mv.Timestamp == nil {
			continue
		}
		for _, sv := range mv.SampledValue {
			if sv.Measurand != "" && sv.Measurand != types.MeasurandEnergyActiveImportRegister || sv.Phase != "" {
				continue
			}
			if sv.Location != "" && sv.Location != types.LocationOutlet {
				continue
			}
			r, err := sampleReading(cat, asset, mv.Timestamp.Time, sv, now)
			if err != nil {
				continue
			}
			isBegin := sv.Context == types.ReadingContextTransactionBegin
			if !found || isBegin && !begin || isBegin == begin && r.Time < best.Time {
				best, found, begin = r, true, isBegin
			}
		}
	}
	return best.Value, found
}
