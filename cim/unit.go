package cim

import "strconv"

// dimension groups the units that convert into each other. Dimensions are
// finer than physics where mixing would only hide mistakes: a percentage is
// not a plain ratio, and a power factor sent in % is refused rather than
// guessed at.
type dimension uint8

const (
	dimNone dimension = iota
	dimRatio
	dimPercent
	dimPower
	dimReactivePower
	dimApparentPower
	dimEnergy
	dimReactiveEnergy
	dimVoltage
	dimCurrent
	dimFrequency
	dimTemperature
	dimPPM
	dimMassConcentration
	dimSoundLevel
	dimIlluminance
	dimPressure
	dimRate
	dimDuration
	dimPowerFlux // W/m²: RF exposure and metabolic rate (1 met = 58.2 W/m²)
	dimElectricField
	dimMagneticFlux
)

// unitDef places a unit in its dimension: base = value*scale + offset, where
// base is the dimension's reference unit (W, Wh, °C, hPa, ...).
type unitDef struct {
	dim           dimension
	scale, offset float64
}

// lookupUnit finds a unit by its exact spelling, then by a folded spelling
// for the forms that are unambiguous without case (kwh, KWH, ug/m3, ...).
// It does not allocate.
func lookupUnit(s string) (unitDef, bool) {
	if u, ok := exactUnit(s); ok {
		return u, true
	}
	var buf [24]byte
	f, ok := foldUnit(s, buf[:0])
	if !ok {
		return unitDef{}, false
	}
	return foldedUnit(f)
}

// exactUnit knows the symbols as the SI, IEC 60027 and common device APIs
// (OCPP 1.6 UnitOfMeasure, SmartThings, Shelly, Netatmo) write them. Case
// matters here: mW is not MW.
func exactUnit(s string) (unitDef, bool) {
	u := func(d dimension, scale float64) (unitDef, bool) { return unitDef{dim: d, scale: scale}, true }
	switch s {
	case "1":
		return u(dimRatio, 1)
	case "%", "Percent":
		return u(dimPercent, 1)

	case "mW":
		return u(dimPower, 1e-3)
	case "W":
		return u(dimPower, 1)
	case "kW":
		return u(dimPower, 1e3)
	case "MW":
		return u(dimPower, 1e6)
	case "GW":
		return u(dimPower, 1e9)

	case "var", "VAr", "VAR":
		return u(dimReactivePower, 1)
	case "kvar", "kVAr", "kVAR":
		return u(dimReactivePower, 1e3)
	case "Mvar", "MVAr", "MVAR":
		return u(dimReactivePower, 1e6)
	case "VA":
		return u(dimApparentPower, 1)
	case "kVA":
		return u(dimApparentPower, 1e3)
	case "MVA":
		return u(dimApparentPower, 1e6)

	case "Wmin": // Shelly Gen1 relay energy counters
		return u(dimEnergy, 1.0/60)
	case "Wh":
		return u(dimEnergy, 1)
	case "kWh":
		return u(dimEnergy, 1e3)
	case "MWh":
		return u(dimEnergy, 1e6)
	case "GWh":
		return u(dimEnergy, 1e9)
	case "J":
		return u(dimEnergy, 1.0/3600)
	case "kJ":
		return u(dimEnergy, 1e3/3600)
	case "MJ":
		return u(dimEnergy, 1e6/3600)
	case "kcal":
		return u(dimEnergy, 4186.8/3600) // International Table kilocalorie (UN/CEFACT E14)
	case "varh", "VArh", "VARh":
		return u(dimReactiveEnergy, 1)
	case "kvarh", "kVArh", "kVARh":
		return u(dimReactiveEnergy, 1e3)
	case "Mvarh", "MVArh", "MVARh":
		return u(dimReactiveEnergy, 1e6)

	case "mV":
		return u(dimVoltage, 1e-3)
	case "V":
		return u(dimVoltage, 1)
	case "kV":
		return u(dimVoltage, 1e3)
	case "MV":
		return u(dimVoltage, 1e6)
	case "µA", "μA":
		return u(dimCurrent, 1e-6)
	case "mA":
		return u(dimCurrent, 1e-3)
	case "A":
		return u(dimCurrent, 1)
	case "kA":
		return u(dimCurrent, 1e3)
	case "mHz":
		return u(dimFrequency, 1e-3)
	case "Hz":
		return u(dimFrequency, 1)
	case "kHz":
		return u(dimFrequency, 1e3)
	case "MHz":
		return u(dimFrequency, 1e6)

	case "°C", "℃", "degC", "C", "Celsius":
		return u(dimTemperature, 1)
	case "K", "Kelvin":
		return unitDef{dim: dimTemperature, scale: 1, offset: -273.15}, true
	case "°F", "℉", "degF", "F", "Fahrenheit":
		return unitDef{dim: dimTemperature, scale: 5.0 / 9, offset: -32 * 5.0 / 9}, true

	case "ppm":
		return u(dimPPM, 1)
	case "ppb":
		return u(dimPPM, 1e-3)
	case "µg/m³", "μg/m³":
		return u(dimMassConcentration, 1)
	case "ng/m³":
		return u(dimMassConcentration, 1e-3)
	case "mg/m³":
		return u(dimMassConcentration, 1e3)
	case "dB", "dBA", "dB(A)":
		// Indoor sensors report A-weighted levels whatever they call them.
		return u(dimSoundLevel, 1)
	case "lx", "lux":
		return u(dimIlluminance, 1)

	case "Pa":
		return u(dimPressure, 1e-2)
	case "hPa", "mbar":
		return u(dimPressure, 1)
	case "kPa":
		return u(dimPressure, 10)
	case "bar":
		return u(dimPressure, 1e3)

	case "1/min", "/min", "bpm", "min⁻¹", "min-1":
		return u(dimRate, 1)
	case "µs", "μs":
		return u(dimDuration, 1e-3)
	case "ms":
		return u(dimDuration, 1)
	case "s":
		return u(dimDuration, 1e3)
	case "min":
		return u(dimDuration, 60e3)

	case "W/m²":
		return u(dimPowerFlux, 1)
	case "mW/m²":
		return u(dimPowerFlux, 1e-3)
	case "µW/m²", "μW/m²":
		return u(dimPowerFlux, 1e-6)
	case "met":
		return u(dimPowerFlux, 58.2) // ISO 7730: 1 met = 58.2 W/m²
	case "V/m":
		return u(dimElectricField, 1)
	case "mV/m":
		return u(dimElectricField, 1e-3)
	case "kV/m":
		return u(dimElectricField, 1e3)
	case "nT":
		return u(dimMagneticFlux, 1)
	case "µT", "μT":
		return u(dimMagneticFlux, 1e3)
	case "mT":
		return u(dimMagneticFlux, 1e6)
	case "mG":
		return u(dimMagneticFlux, 100) // milligauss, common on consumer field meters
	}
	return unitDef{}, false
}

// foldUnit appends s to dst lower-cased, with µ and μ written u, ² and ³
// written 2 and 3, ° written deg and spaces dropped. It reports false if the
// result would not fit dst's capacity (no unit is that long), so that it
// never allocates.
func foldUnit(s string, dst []byte) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		b := s[i]
		var add string
		switch {
		case b == ' ':
			continue
		case b < 0x80:
			if len(dst) == cap(dst) {
				return nil, false
			}
			if 'A' <= b && b <= 'Z' {
				b += 'a' - 'A'
			}
			dst = append(dst, b)
			continue
		case b == 0xC2 && i+1 < len(s) && s[i+1] == 0xB5: // µ micro sign
			add = "u"
		case b == 0xCE && i+1 < len(s) && s[i+1] == 0xBC: // μ Greek mu
			add = "u"
		case b == 0xC2 && i+1 < len(s) && s[i+1] == 0xB2: // ²
			add = "2"
		case b == 0xC2 && i+1 < len(s) && s[i+1] == 0xB3: // ³
			add = "3"
		case b == 0xC2 && i+1 < len(s) && s[i+1] == 0xB0: // °
			add = "deg"
		default:
			return nil, false
		}
		i++
		if len(dst)+len(add) > cap(dst) {
			return nil, false
		}
		dst = append(dst, add...)
	}
	return dst, true
}

// foldedUnit knows the folded spellings that are unambiguous. Forms whose
// case carries a prefix (mw: milli or mega?) are deliberately absent.
func foldedUnit(f []byte) (unitDef, bool) {
	var s string
	switch string(f) {
	case "percent", "pct":
		s = "%"
	case "w":
		s = "W"
	case "kw":
		s = "kW"
	case "gw":
		s = "GW"
	case "var":
		s = "var"
	case "kvar":
		s = "kvar"
	case "va":
		s = "VA"
	case "kva":
		s = "kVA"
	case "wh":
		s = "Wh"
	case "kwh":
		s = "kWh"
	case "gwh":
		s = "GWh"
	case "kj":
		s = "kJ"
	case "kcal":
		s = "kcal"
	case "varh":
		s = "varh"
	case "kvarh":
		s = "kvarh"
	case "v":
		s = "V"
	case "kv":
		s = "kV"
	case "ua":
		s = "µA"
	case "a":
		s = "A"
	case "ka":
		s = "kA"
	case "hz":
		s = "Hz"
	case "khz":
		s = "kHz"
	case "degc", "celsius":
		s = "°C"
	case "kelvin":
		s = "K"
	case "degf", "fahrenheit":
		s = "°F"
	case "ppm":
		s = "ppm"
	case "ppb":
		s = "ppb"
	case "ug/m3":
		s = "µg/m³"
	case "ng/m3":
		s = "ng/m³"
	case "mg/m3":
		s = "mg/m³"
	case "db", "dba", "db(a)":
		s = "dB"
	case "lx", "lux":
		s = "lx"
	case "pa":
		s = "Pa"
	case "hpa", "mbar", "mb":
		s = "hPa"
	case "kpa":
		s = "kPa"
	case "bar":
		s = "bar"
	case "bpm", "1/min", "/min", "min-1":
		s = "1/min"
	case "us":
		s = "µs"
	case "ms":
		s = "ms"
	case "s", "sec":
		s = "s"
	case "min":
		s = "min"
	case "w/m2":
		s = "W/m²"
	case "uw/m2":
		s = "µW/m²"
	case "met":
		s = "met"
	case "v/m":
		s = "V/m"
	case "kv/m":
		s = "kV/m"
	case "nt":
		s = "nT"
	case "ut":
		s = "µT"
	default:
		return unitDef{}, false
	}
	return exactUnit(s)
}

// Convert converts value, given in unit, to q's canonical unit. The empty
// unit means the canonical one. Symbols are case-sensitive where case
// carries meaning (mW, MW); unambiguous forms are also accepted in any case
// (KWH, Lux). The error is a *FieldError for the field "unit".
func (q Quantity) Convert(value float64, unit string) (float64, error) {
	if unit == "" || unit == q.Unit {
		return value, nil
	}
	from, ok := lookupUnit(unit)
	if !ok {
		return 0, &FieldError{Field: "unit", Value: unit, Reason: "unknown unit"}
	}
	to, ok := lookupUnit(q.Unit)
	if !ok {
		return 0, &FieldError{Field: "unit", Value: unit,
			Reason: "canonical unit " + strconv.Quote(q.Unit) + " of " + q.Name + " is not convertible"}
	}
	if from.dim != to.dim {
		return 0, &FieldError{Field: "unit", Value: unit,
			Reason: "not a unit of " + q.Name + " (canonical unit " + q.Unit + ")"}
	}
	if from == to {
		return value, nil // another spelling of the canonical unit
	}
	v := value*from.scale + from.offset
	if to.scale != 1 || to.offset != 0 {
		v = (v - to.offset) / to.scale
	}
	return v, nil
}

// ConvertTo is Convert's inverse: it converts value, in q's canonical unit,
// to unit. Simulators use it to hold a value the way a device would.
func (q Quantity) ConvertTo(value float64, unit string) (float64, error) {
	zero, err := q.Convert(0, unit)
	if err != nil {
		return 0, err
	}
	one, _ := q.Convert(1, unit)
	if one == zero {
		return 0, &FieldError{Field: "unit", Value: unit, Reason: "not invertible"}
	}
	return (value - zero) / (one - zero), nil
}
