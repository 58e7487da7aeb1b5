package modbus

import (
	"fmt"
	"math"
	"strconv"

	"github.com/gridlink/gridlink/device"
	"github.com/gridlink/gridlink/profile"
)

// point is one profile value resolved to registers.
type point struct {
	m    *profile.Mapping
	unit uint8
	tbl  table
	addr uint16
	f    format
	// sf, when hasSF, is the register of an int16 power-of-ten exponent.
	hasSF bool
	sf    uint16
	// notImpl, when set, tells the SunSpec "not implemented" marker of
	// the value's bits; sunspec also makes SF 0x8000 mean not implemented.
	notImpl func(bits uint64) bool
	sunspec bool
	name    string // for messages: "register 33" or "model 103 W"
}

func (p *point) what() string {
	return fmt.Sprintf("%s %s %s", p.name, p.f.typ, p.m.Quantity)
}

// items lists the registers the point needs.
func (p *point) items() []item {
	its := []item{{unit: p.unit, tbl: p.tbl, start: p.addr, n: p.f.words, optional: p.m.Optional, what: p.what()}}
	if p.hasSF {
		its = append(its, item{unit: p.unit, tbl: p.tbl, start: p.sf, n: 1, optional: p.m.Optional,
			what: "scale factor of " + p.what()})
	}
	return its
}

// errNotImplemented marks a value the device says it does not have.
type errNotImplemented struct{ what string }

func (e errNotImplemented) Error() string { return e.what + " is not implemented by the device" }

// sfMarker is the SunSpec "not implemented" scale factor.
const sfMarker = 0x8000

// maxSF bounds a plausible power-of-ten exponent.
const maxSF = 20

// pow10 is 10^sf, the same float for the simulator and the poller so that
// a held value reads back exactly.
func pow10(sf int) float64 { return math.Pow10(sf) }

// read decodes the point from regs. It returns errNotImplemented for
// SunSpec "not implemented" markers.
func (p *point) read(regs map[regKey]uint16) (device.Value, error) {
	words, ok := have(regs, p.unit, p.tbl, p.addr, p.f.words)
	if !ok {
		return device.Value{}, fmt.Errorf("unit %d %s register %d (%s): not read", p.unit, p.tbl, p.addr, p.what())
	}
	bits := p.f.bits(words)
	if p.notImpl != nil && p.notImpl(bits) {
		return device.Value{}, errNotImplemented{p.what()}
	}
	raw := p.f.value(bits)
	if math.IsNaN(raw) || math.IsInf(raw, 0) {
		return device.Value{}, fmt.Errorf("unit %d %s register %d (%s): value %g is not a number", p.unit, p.tbl, p.addr, p.what(), raw)
	}
	if p.hasSF {
		w, ok := have(regs, p.unit, p.tbl, p.sf, 1)
		if !ok {
			return device.Value{}, fmt.Errorf("unit %d %s register %d (scale factor of %s): not read", p.unit, p.tbl, p.sf, p.what())
		}
		if p.sunspec && w[0] == sfMarker {
			return device.Value{}, errNotImplemented{"scale factor of " + p.what()}
		}
		sf := int(int16(w[0]))
		if sf < -maxSF || sf > maxSF {
			return device.Value{}, fmt.Errorf("unit %d %s register %d (scale factor of %s): exponent %d is out of range ±%d", p.unit, p.tbl, p.sf, p.what(), sf, maxSF)
		}
		raw *= pow10(sf)
	}
	if len(p.m.States) > 0 {
		v, err := p.m.TextValue(strconv.FormatFloat(raw, 'f', -1, 64))
		if err != nil {
			return device.Value{}, fmt.Errorf("unit %d %s register %d: %w", p.unit, p.tbl, p.addr, err)
		}
		return v, nil
	}
	return p.m.Value(raw), nil
}

// modbusPoints resolves the points of a modbus profile.
func modbusPoints(s *profile.ModbusSpec, unitID int) ([]point, error) {
	def := s.UnitID
	if unitID != 0 {
		def = unitID
	}
	if def == 0 {
		def = 1
	}
	var out []point
	for i := range s.Points {
		sp := &s.Points[i]
		f, err := newFormat(sp.Type, sp.WordOrder, sp.ByteOrder)
		if err != nil {
			return nil, fmt.Errorf("modbus.points[%d] (register %d): %w", i, sp.Register, err)
		}
		unit := def
		if sp.UnitID != 0 {
			unit = sp.UnitID
		}
		if unit < 0 || unit > 255 {
			return nil, fmt.Errorf("modbus.points[%d] (register %d): unit id %d: want 0 to 255", i, sp.Register, unit)
		}
		if int(sp.Register)+f.words > 65536 {
			return nil, fmt.Errorf("modbus.points[%d]: register %d with %d words runs past 65535", i, sp.Register, f.words)
		}
		p := point{m: &sp.Mapping, unit: uint8(unit), addr: sp.Register, f: f, name: "register " + strconv.Itoa(int(sp.Register))}
		switch sp.Table {
		case "", "holding":
		case "input":
			p.tbl = input
		default:
			return nil, fmt.Errorf("modbus.points[%d] (register %d): table %q: want holding or input", i, sp.Register, sp.Table)
		}
		if sp.ScaleRegister != nil {
			p.hasSF, p.sf = true, *sp.ScaleRegister
		}
		out = append(out, p)
	}
	return out, nil
}
