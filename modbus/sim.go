package modbus

import (
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"strconv"
	"sync"

	mb "github.com/simonvetter/modbus"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/device"
	"github.com/gridlink/gridlink/profile"
	"github.com/gridlink/gridlink/sim"
)

// Scale-factor exponents the simulator picks from, finest first.
const (
	simMinSF = -2
	simMaxSF = 6
)

// Simulator serves a profile's registers over Modbus TCP from simulated
// values. For a sunspec profile it lays out a complete SunSpec map at
// 40000 (or the profile's base): the marker, the common model 1, each
// model the profile uses at its full length with unused points holding
// the "not implemented" marker, and the end model.
//
// Reads of a unit id or register the device does not have are answered
// with the exception "illegal data address", as strict devices do.
type Simulator struct {
	prof *profile.Profile
	cat  *cim.Catalogue

	mu   sync.Mutex
	regs map[regKey]uint16
	pts  []simPoint
	srv  *mb.ModbusServer
}

// simPoint is a point and the true value it holds.
type simPoint struct {
	point
	q   cim.Quantity
	set bool
	val float64 // canonical unit
}

// NewSimulator builds the simulator of a modbus or sunspec profile. cfg
// gives the unit id (overriding the profile's) and, for SunSpec, the
// serial number in cfg.Vars["serial"].
func NewSimulator(p *profile.Profile, cfg device.Config, cat *cim.Catalogue) (*Simulator, error) {
	s := &Simulator{prof: p, cat: cat, regs: map[regKey]uint16{}}
	var pts []point
	switch {
	case p.Protocol == profile.Modbus && p.Modbus != nil:
		var err error
		if pts, err = modbusPoints(p.Modbus, cfg.UnitID); err != nil {
			return nil, fmt.Errorf("profile %s: %w", p.Name, err)
		}
	case p.Protocol == profile.SunSpec && p.SunSpec != nil:
		var err error
		if pts, err = s.layoutSunSpec(cfg); err != nil {
			return nil, fmt.Errorf("profile %s: %w", p.Name, err)
		}
	default:
		return nil, fmt.Errorf("profile %s: protocol %s is not modbus or sunspec", p.Name, p.Protocol)
	}
	for _, pt := range pts {
		q, ok := cat.Lookup(pt.m.Quantity)
		if !ok {
			return nil, fmt.Errorf("profile %s: %s: quantity %q is not in the catalogue", p.Name, pt.name, pt.m.Quantity)
		}
		// Every mapped register is readable from the start, as zero.
		for i := range pt.f.words {
			s.regs[regKey{pt.unit, pt.tbl, pt.addr + uint16(i)}] = 0
		}
		if pt.hasSF {
			s.regs[regKey{pt.unit, pt.tbl, pt.sf}] = 0
		}
		s.pts = append(s.pts, simPoint{point: pt, q: q})
	}
	return s, nil
}

// layoutSunSpec writes the SunSpec map and returns the profile's points in it.
func (s *Simulator) layoutSunSpec(cfg device.Config) ([]point, error) {
	spec := s.prof.SunSpec
	unit := spec.UnitID
	if cfg.UnitID != 0 {
		unit = cfg.UnitID
	}
	if unit == 0 {
		unit = 1
	}
	if unit < 0 || unit > 255 {
		return nil, fmt.Errorf("unit id %d: want 0 to 255", unit)
	}
	base := 40000
	if spec.Base != 0 {
		base = spec.Base
	}
	u := uint8(unit)
	set := func(addr int, vals ...uint16) error {
		if addr+len(vals) > 65536 {
			return fmt.Errorf("SunSpec map at %d does not fit below register 65536", base)
		}
		for i, v := range vals {
			s.regs[regKey{u, holding, uint16(addr + i)}] = v
		}
		return nil
	}
	ids := []int{1}
	for i := range spec.Points {
		sp := &spec.Points[i]
		if _, _, err := ssDef(sp); err != nil {
			return nil, fmt.Errorf("sunspec.points[%d]: %w", i, err)
		}
		seen := false
		for _, id := range ids {
			seen = seen || id == sp.Model
		}
		if !seen {
			ids = append(ids, sp.Model)
		}
	}
	if err := set(base, sunsHi, sunsLo); err != nil {
		return nil, err
	}
	addr := base + 2
	var blocks []ssBlock
	for _, id := range ids {
		def := models[id]
		if err := set(addr, uint16(id), uint16(def.length)); err != nil {
			return nil, err
		}
		for _, pd := range def.points[2:] {
			if err := set(addr+pd.offset, ssMarker(pd.typ, pd.size)...); err != nil {
				return nil, err
			}
		}
		if id == 1 {
			serial := cfg.Vars["serial"]
			if serial == "" {
				serial = "SIM-" + s.prof.Name
			}
			for _, f := range []struct {
				name, val string
			}{{"Mn", s.prof.Vendor}, {"Md", s.prof.Model}, {"Vr", "gridlink-sim"}, {"SN", serial}} {
				pd, _ := def.point(f.name)
				_ = set(addr+pd.offset, ssStringRegs(f.val, pd.size)...)
			}
			pd, _ := def.point("DA")
			_ = set(addr+pd.offset, uint16(unit))
		}
		blocks = append(blocks, ssBlock{id: id, start: uint16(addr), l: def.length})
		addr += 2 + def.length
	}
	if err := set(addr, endID, 0); err != nil {
		return nil, err
	}
	pts, _, err := resolveSunSpec(spec, u, blocks)
	return pts, err
}

// ssMarker is the "not implemented" value of a SunSpec type, in registers.
func ssMarker(typ string, size int) []uint16 {
	out := make([]uint16, size)
	var u uint64
	switch typ {
	case "int16", "sunssf":
		u = 0x8000
	case "uint16", "enum16", "bitfield16", "count":
		u = 0xFFFF
	case "int32":
		u = 0x80000000
	case "uint32", "enum32", "bitfield32":
		u = 0xFFFFFFFF
	case "int64":
		u = 1 << 63
	case "uint64":
		u = math.MaxUint64
	case "float32":
		u = 0x7FC00000
	case "float64":
		u = 0x7FF8000000000000
	default: // acc*, string, pad
		return out
	}
	for i := size - 1; i >= 0; i-- {
		out[i] = uint16(u)
		u >>= 16
	}
	return out
}

// Update sets what the device holds for the frame's true values and
// returns the held values, as the poller will read them. Channels missing
// from the frame keep their last value; points never set are not
// returned. Scale-factor registers are chosen per cycle, the finest that
// lets every value of its group fit the register type.
func (s *Simulator) Update(f sim.Frame) ([]device.Value, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pts := make([]simPoint, len(s.pts))
	copy(pts, s.pts)
	for i := range pts {
		if v, ok := f.Value(pts[i].m.Quantity, pts[i].m.Phase); ok {
			pts[i].val, pts[i].set = v, true
		}
	}
	// Pick each scale factor for all the points that share it.
	sfs := map[regKey]int{}
	for i := range pts {
		p := &pts[i]
		if !p.hasSF || !p.set {
			continue
		}
		k := regKey{p.unit, p.tbl, p.sf}
		if _, done := sfs[k]; done {
			continue
		}
		sf, err := s.pickSF(pts, k)
		if err != nil {
			return nil, err
		}
		sfs[k] = sf
	}
	writes := map[regKey]uint16{}
	for k, sf := range sfs {
		writes[k] = uint16(int16(sf))
	}
	var held []device.Value
	for i := range pts {
		p := &pts[i]
		if !p.set {
			continue
		}
		sf := sfs[regKey{p.unit, p.tbl, p.sf}]
		regs, h, err := p.hold(sf)
		if err != nil {
			return nil, err
		}
		for j, w := range regs {
			writes[regKey{p.unit, p.tbl, p.addr + uint16(j)}] = w
		}
		held = append(held, h)
	}
	for k, w := range writes {
		s.regs[k] = w
	}
	s.pts = pts
	return held, nil
}

// pickSF finds the finest exponent that lets every set point of the
// scale-factor register k hold its value.
func (s *Simulator) pickSF(pts []simPoint, k regKey) (int, error) {
next:
	for sf := simMinSF; sf <= simMaxSF; sf++ {
		for i := range pts {
			p := &pts[i]
			if !p.set || !p.hasSF || (regKey{p.unit, p.tbl, p.sf}) != k {
				continue
			}
			if _, _, err := p.hold(sf); err != nil {
				continue next
			}
		}
		return sf, nil
	}
	return 0, fmt.Errorf("unit %d register %d: no scale factor %d..%d lets its values fit", k.unit, k.addr, simMinSF, simMaxSF)
}

// hold computes the registers and the held value of a set point under the
// exponent sf (ignored without a scale register).
func (p *simPoint) hold(sf int) ([]uint16, device.Value, error) {
	where := fmt.Sprintf("unit %d %s %s (%s)", p.unit, p.tbl, p.name, p.m.Quantity)
	if len(p.m.States) > 0 {
		i := int(p.val)
		if float64(i) != p.val || i < 0 || i >= len(p.q.States) {
			return nil, device.Value{}, fmt.Errorf("%s: %g is not a state code", where, p.val)
		}
		text := p.m.StateText(p.q.States[i])
		raw, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return nil, device.Value{}, fmt.Errorf("%s: state %s has no numeric device code", where, p.q.States[i])
		}
		regs, err := p.f.encode(p.f.quantise(raw))
		if err != nil {
			return nil, device.Value{}, fmt.Errorf("%s: %w", where, err)
		}
		h, err := p.m.TextValue(text)
		return regs, h, err
	}
	scale := 1.0
	if p.hasSF {
		scale = pow10(sf)
	}
	var stored float64
	raw, h, err := p.m.Hold(p.q, p.val, func(x float64) float64 {
		stored = p.f.quantise(x / scale)
		if !p.hasSF {
			return stored
		}
		return stored * scale // as the poller computes it
	})
	if err != nil {
		return nil, device.Value{}, fmt.Errorf("%s: %w", where, err)
	}
	if math.IsNaN(raw) || math.IsInf(raw, 0) {
		return nil, device.Value{}, fmt.Errorf("%s: value %g is not a number", where, raw)
	}
	regs, err := p.f.encode(stored)
	if err != nil {
		return nil, device.Value{}, fmt.Errorf("%s: value %g: %w", where, p.val, err)
	}
	if bits := p.f.bits(regs); p.notImpl != nil && bits != 0 && p.notImpl(bits) {
		// Keep clear of the marker except for acc32's 0, which a
		// counter at zero cannot avoid.
		return nil, device.Value{}, fmt.Errorf("%s: value %g would read as \"not implemented\"", where, p.val)
	}
	return regs, h, nil
}

// Start serves the registers on addr ("host:port"; port 0 picks a free
// one) and returns the address it listens on.
func (s *Simulator) Start(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("modbus simulator address %q: %w", addr, err)
	}
	// The library listens itself and does not tell its port, so a free
	// port is found first; another process may grab it in between, hence
	// the retries.
	var last error
	for range 10 {
		bind := addr
		if port == "0" || port == "" {
			l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
			if err != nil {
				return "", fmt.Errorf("modbus simulator: %w", err)
			}
			bind = l.Addr().String()
			l.Close()
		}
		srv, err := mb.NewServer(&mb.ServerConfiguration{
			URL:        "tcp://" + bind,
			MaxClients: 16,
			Logger:     log.New(io.Discard, "", 0),
		}, &simHandler{s})
		if err != nil {
			return "", fmt.Errorf("modbus simulator %s: %w", bind, err)
		}
		if err := srv.Start(); err != nil {
			last = err
			if port == "0" || port == "" {
				continue
			}
			break
		}
		s.mu.Lock()
		s.srv = srv
		s.mu.Unlock()
		return bind, nil
	}
	return "", fmt.Errorf("modbus simulator: listen on %s: %w", addr, last)
}

// Close stops serving and drops the connections.
func (s *Simulator) Close() error {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Stop()
}

// read answers a read request.
func (s *Simulator) read(unit uint8, tbl table, addr, n uint16) ([]uint16, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]uint16, n)
	for i := range out {
		v, ok := s.regs[regKey{unit, tbl, addr + uint16(i)}]
		if !ok {
			return nil, mb.ErrIllegalDataAddress
		}
		out[i] = v
	}
	return out, nil
}

// simHandler adapts the simulator to the library's server.
type simHandler struct{ s *Simulator }

func (h *simHandler) HandleCoils(*mb.CoilsRequest) ([]bool, error) {
	return nil, mb.ErrIllegalFunction
}

func (h *simHandler) HandleDiscreteInputs(*mb.DiscreteInputsRequest) ([]bool, error) {
	return nil, mb.ErrIllegalFunction
}

func (h *simHandler) HandleHoldingRegisters(req *mb.HoldingRegistersRequest) ([]uint16, error) {
	if req.IsWrite {
		return nil, mb.ErrIllegalFunction // a read-only simulation
	}
	return h.s.read(req.UnitId, holding, req.Addr, req.Quantity)
}

func (h *simHandler) HandleInputRegisters(req *mb.InputRegistersRequest) ([]uint16, error) {
	return h.s.read(req.UnitId, input, req.Addr, req.Quantity)
}
