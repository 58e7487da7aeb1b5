package modbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	mb "github.com/simonvetter/modbus"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/device"
	"github.com/gridlink/gridlink/profile"
	"github.com/gridlink/gridlink/sim"
)

// hangGuard bounds a test's network calls so a bug hangs no test run; it
// is not a performance assertion.
const hangGuard = 30 * time.Second

// plausible is a realistic true value of a channel, in canonical units.
func plausible(q cim.Quantity, ph cim.Phase) float64 {
	idx := map[cim.Phase]float64{"": 0, "L1": 0, "L2": 1, "L3": 2}[ph]
	switch q.Name {
	case "active_power":
		if ph == "" {
			return -1234.5
		}
		return 411.3 + 97.1*idx
	case "energy_active_import":
		return 1234567.8
	case "energy_active_export":
		return 345678.9
	case "current":
		return 5.43 + 0.61*idx
	case "voltage":
		return 230.16 - 0.56*idx
	case "frequency":
		return 50.02
	case "battery_soc":
		return 55.3
	case "battery_power":
		return -1500.4
	case "battery_voltage":
		return 52.48
	case "battery_current":
		return -28.6
	case "battery_soh":
		return 98.5
	case "pv_power":
		return 3456.7
	case "pv_energy_generated":
		return 9876543.2
	case "temperature":
		return 24.6
	case "apparent_power":
		return 1500.5
	case "reactive_power":
		return -300.25
	case "ev_charging_power":
		return 7360.5
	case "ev_energy_register":
		return 302806.25
	}
	if len(q.States) > 1 {
		return 1
	}
	return 42
}

// frameFor builds a frame with a plausible value for every channel of p.
func frameFor(t *testing.T, p *profile.Profile, cat *cim.Catalogue) sim.Frame {
	t.Helper()
	f := sim.Frame{Cycle: 1, Start: time.Unix(1_700_000_000, 0).UTC(), Values: map[sim.Channel]float64{}}
	for _, m := range p.Mappings() {
		q, ok := cat.Lookup(m.Quantity)
		if !ok {
			t.Fatalf("%s: quantity %s not in catalogue", p.Name, m.Quantity)
		}
		f.Values[sim.Channel{Quantity: m.Quantity, Phase: m.Phase}] = plausible(q, m.Phase)
	}
	return f
}

// canonical converts a device value to its quantity's canonical unit.
func canonical(t *testing.T, cat *cim.Catalogue, v device.Value) float64 {
	t.Helper()
	q, _ := cat.Lookup(v.Quantity)
	c, err := q.Convert(v.Value, v.Unit)
	if err != nil {
		t.Fatalf("%s: %v", v.Quantity, err)
	}
	return c
}

func modbusProfiles(t *testing.T, cat *cim.Catalogue) []*profile.Profile {
	t.Helper()
	set, err := profile.Embedded(cat)
	if err != nil {
		t.Fatal(err)
	}
	var out []*profile.Profile
	for _, p := range set.All() {
		if p.Protocol == profile.Modbus || p.Protocol == profile.SunSpec {
			out = append(out, p)
		}
	}
	return out
}

// startSim starts a simulator of p on a free local port.
func startSim(t *testing.T, p *profile.Profile, cfg device.Config, cat *cim.Catalogue) (*Simulator, string) {
	t.Helper()
	s, err := NewSimulator(p, cfg, cat)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, addr
}

func poll(t *testing.T, pl device.Poller) ([]device.Value, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), hangGuard)
	defer cancel()
	return pl.Poll(ctx)
}

type chanKey struct {
	q  string
	ph cim.Phase
}

// TestProfilesAgainstSimulator polls every embedded modbus and sunspec
// profile from its simulator over TCP: what the poller reads must be what
// the simulator says it holds.
func TestProfilesAgainstSimulator(t *testing.T) {
	cat := cim.Default()
	profiles := modbusProfiles(t, cat)
	names := map[string]bool{}
	for _, p := range profiles {
		names[p.Name] = true
	}
	for _, want := range []string{"alphaess-smile5", "intilion-scalebloc", "victron-gx", "transformer-box",
		"alfen-eve-modbus", "sunspec-inverter", "sunspec-inverter-1ph", "sunspec-meter", "sunspec-battery"} {
		if !names[want] {
			t.Errorf("embedded profile %s missing", want)
		}
	}
	for _, p := range profiles {
		t.Run(p.Name, func(t *testing.T) {
			cfg := device.Config{Asset: "a1", Profile: p.Name}
			s, addr := startSim(t, p, cfg, cat)
			frame := frameFor(t, p, cat)
			held, err := s.Update(frame)
			if err != nil {
				t.Fatal(err)
			}
			if len(held) != len(p.Mappings()) {
				t.Fatalf("Update held %d values, profile has %d points", len(held), len(p.Mappings()))
			}
			cfg.Address = addr
			pl, err := NewPoller(p, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer pl.Close()
			// Twice: the second poll runs on the plan the first one
			// learnt (split reads, discovered SunSpec layout).
			for range 2 {
				got, err := poll(t, pl)
				if err != nil {
					t.Fatal(err)
				}
				compare(t, cat, held, got)
			}
			// A new cycle's values reach the poller too.
			for c, v := range frame.Values {
				if q, _ := cat.Lookup(c.Quantity); len(q.States) == 0 {
					frame.Values[c] = v * 1.01
				}
			}
			if held, err = s.Update(frame); err != nil {
				t.Fatal(err)
			}
			got, err := poll(t, pl)
			if err != nil {
				t.Fatal(err)
			}
			compare(t, cat, held, got)
		})
	}
}

func compare(t *testing.T, cat *cim.Catalogue, held, got []device.Value) {
	t.Helper()
	byKey := map[chanKey]device.Value{}
	for _, v := range got {
		byKey[chanKey{v.Quantity, v.Phase}] = v
	}
	if len(got) != len(held) {
		t.Errorf("polled %d values, held %d", len(got), len(held))
	}
	for _, h := range held {
		g, ok := byKey[chanKey{h.Quantity, h.Phase}]
		if !ok {
			t.Errorf("%s %s: held but not polled", h.Quantity, h.Phase)
			continue
		}
		if g.State != h.State {
			t.Errorf("%s %s: polled state %q, held %q", h.Quantity, h.Phase, g.State, h.State)
		}
		if gv, hv := canonical(t, cat, g), canonical(t, cat, h); gv != hv {
			t.Errorf("%s %s: polled %v, held %v", h.Quantity, h.Phase, gv, hv)
		}
	}
}

// TestSimulatorTruthIsClose checks the held values stay near the true ones:
// the register types and scales of the profiles lose no more than their
// resolution.
func TestSimulatorTruthIsClose(t *testing.T) {
	cat := cim.Default()
	for _, p := range modbusProfiles(t, cat) {
		s, err := NewSimulator(p, device.Config{}, cat)
		if err != nil {
			t.Fatal(err)
		}
		frame := frameFor(t, p, cat)
		held, err := s.Update(frame)
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		for _, h := range held {
			want := frame.Values[sim.Channel{Quantity: h.Quantity, Phase: h.Phase}]
			got := canonical(t, cat, h)
			// Intilion's power registers count 100 W.
			if math.Abs(got-want) > 50 || (math.Abs(want) > 1 && math.Abs(got-want)/math.Abs(want) > 0.05) {
				t.Errorf("%s %s %s: held %v for true %v", p.Name, h.Quantity, h.Phase, got, want)
			}
		}
	}
}

// TestSimulatorAnswersExceptions: unknown unit ids, unmapped registers and
// writes are refused with Modbus exceptions.
func TestSimulatorAnswersExceptions(t *testing.T) {
	cat := cim.Default()
	p := mustProfile(t, cat, "alphaess-smile5")
	_, addr := startSim(t, p, device.Config{}, cat)
	c := rawClient(t, addr)
	c.SetUnitId(85)
	if v, err := c.ReadRegisters(33, 2, mb.HOLDING_REGISTER); err != nil || len(v) != 2 {
		t.Fatalf("read 33: %v %v", v, err)
	}
	if _, err := c.ReadRegisters(40, 1, mb.HOLDING_REGISTER); !errors.Is(err, mb.ErrIllegalDataAddress) {
		t.Errorf("unmapped register: %v, want illegal data address", err)
	}
	if _, err := c.ReadRegisters(33, 2, mb.INPUT_REGISTER); !errors.Is(err, mb.ErrIllegalDataAddress) {
		t.Errorf("wrong table: %v, want illegal data address", err)
	}
	if err := c.WriteRegister(33, 1); !errors.Is(err, mb.ErrIllegalFunction) {
		t.Errorf("write: %v, want illegal function", err)
	}
	c.SetUnitId(1)
	if _, err := c.ReadRegisters(33, 2, mb.HOLDING_REGISTER); !errors.Is(err, mb.ErrIllegalDataAddress) {
		t.Errorf("unknown unit: %v, want illegal data address", err)
	}
}

// TestSunSpecSimulatorMap checks the simulator's SunSpec map with plain
// reads: marker, common model strings, model 103 at full length, end.
func TestSunSpecSimulatorMap(t *testing.T) {
	cat := cim.Default()
	p := mustProfile(t, cat, "sunspec-inverter")
	_, addr := startSim(t, p, device.Config{Vars: map[string]string{"serial": "INV-0042"}}, cat)
	c := rawClient(t, addr)
	c.SetUnitId(1)
	r := func(a, n uint16) ([]uint16, error) { return c.ReadRegisters(a, n, mb.HOLDING_REGISTER) }
	base, err := findBase(r, sunspecBases)
	if err != nil || base != 40000 {
		t.Fatalf("base %d, %v", base, err)
	}
	blocks, err := walk(r, base)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(blocks) != "[{1 40002 66} {103 40070 50}]" {
		t.Fatalf("blocks %v", blocks)
	}
	regs, err := r(40004, 64)
	if err != nil {
		t.Fatal(err)
	}
	if mn, sn := ssString(regs[:16]), ssString(regs[48:64]); mn != "generic" || sn != "INV-0042" {
		t.Errorf("Mn %q SN %q", mn, sn)
	}
	// An unused point holds the "not implemented" marker (VA, int16).
	regs, err = r(40070+18, 2)
	if err != nil || regs[0] != 0x8000 || regs[1] != 0x8000 {
		t.Errorf("VA, VA_SF = %04x, %v", regs, err)
	}
}

func mustProfile(t *testing.T, cat *cim.Catalogue, name string) *profile.Profile {
	t.Helper()
	set, err := profile.Embedded(cat)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := set.Get(name)
	if !ok {
		t.Fatalf("no embedded profile %s", name)
	}
	return p
}

func rawClient(t *testing.T, addr string) *mb.ModbusClient {
	t.Helper()
	c, err := mb.NewClient(&mb.ClientConfiguration{URL: "tcp://" + addr, Timeout: hangGuard, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// mapServer serves fixed registers of one unit and table (holding), for
// maps the simulator would never build.
type mapServer struct {
	mu    sync.Mutex
	unit  uint8
	regs  map[uint16]uint16
	reads int
}

func (m *mapServer) HandleCoils(*mb.CoilsRequest) ([]bool, error) { return nil, mb.ErrIllegalFunction }
func (m *mapServer) HandleDiscreteInputs(*mb.DiscreteInputsRequest) ([]bool, error) {
	return nil, mb.ErrIllegalFunction
}
func (m *mapServer) HandleInputRegisters(*mb.InputRegistersRequest) ([]uint16, error) {
	return nil, mb.ErrIllegalDataAddress
}
func (m *mapServer) HandleHoldingRegisters(req *mb.HoldingRegistersRequest) ([]uint16, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	if req.IsWrite || req.UnitId != m.unit {
		return nil, mb.ErrIllegalDataAddress
	}
	out := make([]uint16, req.Quantity)
	for i := range out {
		v, ok := m.regs[req.Addr+uint16(i)]
		if !ok {
			return nil, mb.ErrIllegalDataAddress
		}
		out[i] = v
	}
	return out, nil
}

func serveMap(t *testing.T, m *mapServer) string {
	t.Helper()
	for range 10 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		srv, err := mb.NewServer(&mb.ServerConfiguration{URL: "tcp://" + addr, Logger: log.New(io.Discard, "", 0)}, m)
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(); err != nil {
			continue
		}
		t.Cleanup(func() { srv.Stop() })
		return addr
	}
	t.Fatal("no free port")
	return ""
}

// TestExceptionNamesUnitAndRegister: a register the device does not have
// fails the poll with an error naming unit, table and register, while the
// other points are still read.
func TestExceptionNamesUnitAndRegister(t *testing.T) {
	cat := cim.Default()
	m := &mapServer{unit: 7, regs: map[uint16]uint16{0: 0xFFFF, 1: 0xFB2E, 2: 553}} // -1234 W, 55.3 %
	addr := serveMap(t, m)
	p := parseProfile(t, cat, `
name: partial
protocol: modbus
modbus:
  unit_id: 7
  points:
    - {register: 0, type: int32, quantity: active_power, unit: W}
    - {register: 2, type: uint16, quantity: battery_soc, unit: "%", scale: 0.1}
    - {register: 5, type: uint16, quantity: voltage, phase: L1, unit: V}
    - {register: 9, type: uint16, quantity: voltage, phase: L2, unit: V, optional: true}
`)
	pl, err := NewPoller(p, device.Config{Address: addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	vals, err := poll(t, pl)
	if err == nil || !strings.Contains(err.Error(), "unit 7 holding register 5") || !errors.Is(err, mb.ErrIllegalDataAddress) {
		t.Fatalf("err = %v, want one naming unit 7 holding register 5", err)
	}
	if strings.Contains(err.Error(), "register 9") {
		t.Errorf("optional register 9 reported: %v", err)
	}
	got := map[string]float64{}
	for _, v := range vals {
		got[v.Quantity] = v.Value
	}
	if got["active_power"] != -1234 || math.Abs(got["battery_soc"]-55.3) > 1e-9 || len(got) != 2 {
		t.Errorf("values %v, want active_power -1234 and battery_soc 55.3", got)
	}
	// The split is remembered: a second poll asks for no refused span.
	m.mu.Lock()
	first := m.reads
	m.mu.Unlock()
	if _, err := poll(t, pl); err == nil {
		t.Fatal("second poll: no error")
	}
	m.mu.Lock()
	second := m.reads - first
	m.mu.Unlock()
	if second != 3 { // 0-2, 5, 9
		t.Errorf("second poll made %d reads, want 3", second)
	}
}

func parseProfile(t *testing.T, cat *cim.Catalogue, y string) *profile.Profile {
	t.Helper()
	p, err := profile.Parse([]byte(y), "test.yaml", cat)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDeviceDown: nothing listening gives an error at once, not a hang,
// and the poller recovers when the device comes up.
func TestDeviceDown(t *testing.T) {
	cat := cim.Default()
	p := mustProfile(t, cat, "transformer-box")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	pl, err := NewPoller(p, device.Config{Address: addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	if _, err := poll(t, pl); err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("err = %v, want a connect error naming %s", err, addr)
	}
	s, err := NewSimulator(p, device.Config{}, cat)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(addr); err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	defer s.Close()
	if _, err := poll(t, pl); err != nil {
		t.Fatalf("after the device came up: %v", err)
	}
	// The device restarts: the poll fails, the next one reconnects.
	s.Close()
	if _, err := poll(t, pl); err == nil {
		t.Fatal("poll of a stopped device: no error")
	}
	if _, err := s.Start(addr); err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	if _, err := poll(t, pl); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

// TestPollHonoursContext: a device that accepts the connection and never
// answers must not hold Poll past its context.
func TestPollHonoursContext(t *testing.T) {
	cat := cim.Default()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // read nothing, answer nothing
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	p := mustProfile(t, cat, "alfen-eve-modbus")
	// The request timeout is the hang guard; the context ends first.
	pl, err := NewPoller(p, device.Config{Address: l.Addr().String(), Timeout: hangGuard}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	res := make(chan error, 1)
	go func() {
		_, err := pl.Poll(ctx)
		res <- err
	}()
	cancel()
	select {
	case err := <-res:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(hangGuard):
		t.Fatal("Poll did not return after its context ended")
	}
	// Close the sockets so the abandoned read ends and Close returns.
	mu.Lock()
	for _, c := range conns {
		c.Close()
	}
	mu.Unlock()
	pl.Close()
}

// TestSunSpecMalformed: maps that are not SunSpec, or whose block lengths
// lead astray, give errors that say what is wrong.
func TestSunSpecMalformed(t *testing.T) {
	cat := cim.Default()
	p := mustProfile(t, cat, "sunspec-meter")
	hdr := func(regs map[uint16]uint16, at uint16, vals ...uint16) {
		for i, v := range vals {
			regs[at+uint16(i)] = v
		}
	}
	fill := func(regs map[uint16]uint16, from, n uint16) {
		for i := range n {
			regs[from+i] = 0
		}
	}
	cases := []struct {
		name string
		regs func() map[uint16]uint16
		want string
	}{
		{"no marker", func() map[uint16]uint16 {
			r := map[uint16]uint16{}
			hdr(r, 40000, 1, 2)
			hdr(r, 0, 0, 0)
			return r
		}, `no SunSpec marker "SunS"`},
		{"length past the end", func() map[uint16]uint16 {
			r := map[uint16]uint16{}
			hdr(r, 40000, sunsHi, sunsLo, 1, 66)
			fill(r, 40004, 66)
			hdr(r, 40070, 203, 500) // claims 500 registers; the device has 105
			fill(r, 40072, 105)
			hdr(r, 40177, endID, 0)
			return r
		}, "model 203 at 40070 (length 500)"},
		{"runs off the register space", func() map[uint16]uint16 {
			r := map[uint16]uint16{}
			hdr(r, 40000, sunsHi, sunsLo, 1, 30000)
			return r
		}, "runs past register 65535"},
		{"model id 0", func() map[uint16]uint16 {
			r := map[uint16]uint16{}
			hdr(r, 40000, sunsHi, sunsLo, 1, 2, 0, 0, 0, 0)
			return r
		}, "model id 0 at 40006"},
		{"model missing", func() map[uint16]uint16 {
			r := map[uint16]uint16{}
			hdr(r, 40000, sunsHi, sunsLo, 1, 66)
			fill(r, 40004, 66)
			hdr(r, 40070, endID, 0)
			return r
		}, "model 203 is not in the device's map (models: [1])"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr := serveMap(t, &mapServer{unit: 1, regs: c.regs()})
			pl, err := NewPoller(p, device.Config{Address: addr}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer pl.Close()
			_, err = poll(t, pl)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want …%s…", err, c.want)
			}
		})
	}
}

// TestSunSpecNotImplemented: points holding the "not implemented" marker
// are left out without an error.
func TestSunSpecNotImplemented(t *testing.T) {
	cat := cim.Default()
	p := mustProfile(t, cat, "sunspec-meter")
	s, addr := startSim(t, p, device.Config{}, cat)
	frame := frameFor(t, p, cat)
	// Only total power: every other point keeps its initial zero, and
	// the energy counters (acc32 0) read as not implemented.
	frame.Values = map[sim.Channel]float64{{Quantity: "active_power"}: 2000}
	if _, err := s.Update(frame); err != nil {
		t.Fatal(err)
	}
	// Mark phase C voltage not implemented (int16 0x8000).
	s.mu.Lock()
	s.regs[regKey{1, holding, 40070 + 10}] = 0x8000
	s.mu.Unlock()
	pl, err := NewPoller(p, device.Config{Address: addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	vals, err := poll(t, pl)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vals {
		if v.Quantity == "energy_active_import" || v.Quantity == "energy_active_export" || (v.Quantity == "voltage" && v.Phase == "L3") {
			t.Errorf("not-implemented %s %s was emitted: %v", v.Quantity, v.Phase, v.Value)
		}
		if v.Quantity == "active_power" && v.Phase == "" && v.Value != 2000 {
			t.Errorf("W = %v, want 2000", v.Value)
		}
	}
	if len(vals) != 10 {
		t.Errorf("got %d values, want 10 (13 points less 2 counters and phase C voltage)", len(vals))
	}
}

func TestHostPort(t *testing.T) {
	for _, c := range []struct {
		in   string
		port int
		want string
	}{
		{"192.168.2.2", 0, "192.168.2.2:502"},
		{"gx.local", 5020, "gx.local:5020"},
		{"10.0.0.1:1502", 0, "10.0.0.1:1502"},
		{"tcp://10.0.0.1", 0, "10.0.0.1:502"},
		{"fe80::1", 0, "[fe80::1]:502"},
		{"[fe80::1]:503", 0, "[fe80::1]:503"},
	} {
		got, err := hostPort(c.in, c.port)
		if err != nil || got != c.want {
			t.Errorf("hostPort(%q, %d) = %q, %v; want %q", c.in, c.port, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "host:0", "host:x"} {
		if _, err := hostPort(bad, 0); err == nil {
			t.Errorf("hostPort(%q): no error", bad)
		}
	}
}

func TestNewPollerRefusesBadProfiles(t *testing.T) {
	cat := cim.Default()
	for _, c := range []struct{ yaml, want string }{
		{"name: x\nprotocol: sunspec\nsunspec: {points: [{model: 999, point: W, quantity: active_power}]}\n", "model 999 is not built in"},
		{"name: x\nprotocol: sunspec\nsunspec: {points: [{model: 103, point: Watts, quantity: active_power}]}\n", `model 103 has no point "Watts"`},
		{"name: x\nprotocol: sunspec\nsunspec: {points: [{model: 1, point: Mn, quantity: active_power}]}\n", "not a number"},
	} {
		p := parseProfile(t, cat, c.yaml)
		if _, err := NewPoller(p, device.Config{Address: "127.0.0.1"}, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want …%s…", c.yaml, err, c.want)
		}
	}
}
