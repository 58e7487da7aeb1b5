package profile

import (
	"fmt"
	"math"
	"strconv"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/device"
)

// Mapping says how one raw device value becomes a value of a catalogue
// quantity: value = transform(raw × scale + offset), negated when Invert is
// set. The unit is the unit of that result; the platform converts it to the
// quantity's canonical unit (so "Wmin", "kWh" or "mW" need no scale).
type Mapping struct {
	Quantity string    `yaml:"quantity"`
	Phase    cim.Phase `yaml:"phase"`
	Unit     string    `yaml:"unit"`
	// Scale multiplies the raw value; zero means 1.
	Scale  float64 `yaml:"scale"`
	Offset float64 `yaml:"offset"`
	// Invert flips the sign, to bring a device's sign convention to the
	// catalogue's (battery power: + discharging; grid power: + import).
	Invert bool `yaml:"invert"`
	// States maps the text a device sends to catalogue state names, e.g.
	// {open: open, close: closed}. Text not listed is an error.
	States map[string]string `yaml:"states"`
	// Transform names a non-linear conversion applied after scale and
	// offset. See Transforms.
	Transform string `yaml:"transform"`
	// Optional points may be missing from a reply without an error; used
	// where firmware versions differ in shape (Kasa mW versus W).
	Optional bool `yaml:"optional"`
	// Decimals is the resolution of a number the device sends as text or
	// JSON (2 means hundredths), used by simulators; nil means as exact as
	// float64 allows.
	Decimals *int `yaml:"decimals"`
}

// transform is an invertible non-linear conversion.
type transform struct {
	to, from func(float64) float64
}

// transforms are the non-linear conversions profiles may name.
var transforms = map[string]transform{
	// Philips Hue ZLLLightLevel: lightlevel = 10000 × log10(lux) + 1.
	"hue_lightlevel": {
		to:   func(v float64) float64 { return math.Pow(10, (v-1)/10000) },
		from: func(lux float64) float64 { return 10000*math.Log10(max(lux, 1)) + 1 },
	},
}

// Transforms lists the names a Mapping's Transform may take.
func Transforms() []string {
	out := make([]string, 0, len(transforms))
	for k := range transforms {
		out = append(out, k)
	}
	return out
}

func (m *Mapping) scale() float64 {
	if m.Scale == 0 {
		return 1
	}
	return m.Scale
}

// Decode maps a raw number to the value in m.Unit.
func (m *Mapping) Decode(raw float64) float64 {
	v := raw*m.scale() + m.Offset
	if t, ok := transforms[m.Transform]; ok {
		v = t.to(v)
	}
	if m.Invert {
		v = -v
	}
	return v
}

// Encode is Decode's inverse: the raw number a device holds for value v
// (in m.Unit). Simulators use it.
func (m *Mapping) Encode(v float64) float64 {
	if m.Invert {
		v = -v
	}
	if t, ok := transforms[m.Transform]; ok {
		v = t.from(v)
	}
	return (v - m.Offset) / m.scale()
}

// Value builds the device value of a raw number.
func (m *Mapping) Value(raw float64) device.Value {
	return device.Value{Quantity: m.Quantity, Phase: m.Phase, Unit: m.Unit, Value: m.Decode(raw)}
}

// TextValue builds the device value of a text the device sent: a state
// name through States, else a number.
func (m *Mapping) TextValue(s string) (device.Value, error) {
	if len(m.States) > 0 {
		name, ok := m.States[s]
		if !ok {
			return device.Value{}, fmt.Errorf("%s: state %q is not one of the profile's states", m.Quantity, clip(s))
		}
		return device.Value{Quantity: m.Quantity, Phase: m.Phase, Unit: m.Unit, State: name}, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return device.Value{}, fmt.Errorf("%s: %q is not a number", m.Quantity, clip(s))
	}
	return m.Value(f), nil
}

// StateText is TextValue's inverse for simulators: the device text of the
// catalogue state name, or "" when the mapping has no such state.
func (m *Mapping) StateText(name string) string {
	for text, n := range m.States {
		if n == name {
			return text
		}
	}
	return ""
}

// Round rounds v, a raw JSON or text number, to the mapping's Decimals.
func (m *Mapping) Round(v float64) float64 {
	if m.Decimals == nil {
		return v
	}
	p := math.Pow(10, float64(*m.Decimals))
	return math.Round(v*p) / p
}

// check validates the mapping against the catalogue.
func (m *Mapping) check(cat *cim.Catalogue) error {
	q, ok := cat.Lookup(m.Quantity)
	if !ok {
		return fmt.Errorf("quantity %q is not in the catalogue", m.Quantity)
	}
	if !q.AllowsPhase(m.Phase) {
		return fmt.Errorf("quantity %s takes no phase %s", m.Quantity, m.Phase)
	}
	if _, err := q.Convert(1, m.Unit); err != nil {
		return fmt.Errorf("unit %q does not fit quantity %s (canonical unit %s)", m.Unit, m.Quantity, q.Unit)
	}
	if m.Transform != "" {
		if _, ok := transforms[m.Transform]; !ok {
			return fmt.Errorf("transform %q is unknown; known: %v", m.Transform, Transforms())
		}
	}
	for text, name := range m.States {
		if _, err := q.ParseValue(name); err != nil || len(q.States) == 0 {
			return fmt.Errorf("state %q (for device text %q) is not a state of %s; states: %v", name, text, m.Quantity, q.States)
		}
	}
	if m.Decimals != nil && (*m.Decimals < 0 || *m.Decimals > 12) {
		return fmt.Errorf("decimals %d: want 0 to 12", *m.Decimals)
	}
	return nil
}

// clip shortens device text quoted in errors.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Hold computes what a device holds for the true value v, given in q's
// canonical unit (q is the catalogue entry of m.Quantity): the raw number
// (after quantise, which models the register type or the decimals a device
// writes) and the value that raw number reads back as. Simulators serve raw
// and record the read-back value as the truth.
func (m *Mapping) Hold(q cim.Quantity, v float64, quantise func(float64) float64) (raw float64, held device.Value, err error) {
	u, err := q.ConvertTo(v, m.Unit)
	if err != nil {
		return 0, device.Value{}, fmt.Errorf("%s: %w", m.Quantity, err)
	}
	raw = quantise(m.Encode(u))
	return raw, m.Value(raw), nil
}
