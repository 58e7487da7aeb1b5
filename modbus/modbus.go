// Package modbus is the gateway's Modbus TCP connector and device
// simulator: it reads the registers a device profile lists (protocol
// modbus) or the SunSpec model points it names (protocol sunspec, with
// discovery of the model map), and serves a profile's registers from
// simulated values so that tests and `gridlink sim` speak real Modbus.
//
// One TCP connection per device is kept open, because devices such as the
// Alfen charger or a Victron GX allow few clients; reads are grouped into
// as few requests as the device accepts.
package modbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	mb "github.com/simonvetter/modbus"

	"github.com/gridlink/gridlink/device"
	"github.com/gridlink/gridlink/profile"
)

// DefaultPort is the Modbus TCP port.
const DefaultPort = 502

// defaultTimeout is a request's timeout when neither the device config
// nor the poll's context gives one.
const defaultTimeout = 5 * time.Second

// maxGap is how many unused registers a plain Modbus read may span to save
// a request; devices that refuse such reads get split ones.
const maxGap = 8

// poller reads one device.
type poller struct {
	prof *profile.Profile
	cfg  device.Config
	log  *slog.Logger
	addr string // host:port
	unit uint8  // the SunSpec unit id

	// busy is closed when the running poll's worker ends. Only Poll's
	// goroutine touches it.
	busy chan struct{}

	mu     sync.Mutex // held by the worker for a whole poll, and by Close
	client *mb.ModbusClient
	closed bool
	// modbus: fixed points and plan; sunspec: found at discovery.
	points []point
	plan   *plan
	found  bool // sunspec layout discovered
}

// NewPoller builds the connector of a modbus or sunspec profile. cfg.Address
// is host[:port]; the port defaults to the profile's, else 502. No
// connection is made until the first Poll.
func NewPoller(p *profile.Profile, cfg device.Config, log *slog.Logger) (device.Poller, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var port, unit int
	switch {
	case p.Protocol == profile.Modbus && p.Modbus != nil:
		port = p.Modbus.Port
	case p.Protocol == profile.SunSpec && p.SunSpec != nil:
		port, unit = p.SunSpec.Port, p.SunSpec.UnitID
	default:
		return nil, fmt.Errorf("profile %s: protocol %s is not modbus or sunspec", p.Name, p.Protocol)
	}
	addr, err := hostPort(cfg.Address, port)
	if err != nil {
		return nil, fmt.Errorf("profile %s: %w", p.Name, err)
	}
	if cfg.UnitID != 0 {
		unit = cfg.UnitID
	}
	if unit == 0 {
		unit = 1
	}
	if unit < 0 || unit > 255 {
		return nil, fmt.Errorf("profile %s: unit id %d: want 0 to 255", p.Name, unit)
	}
	pl := &poller{prof: p, cfg: cfg, addr: addr, unit: uint8(unit),
		log: log.With("device", cfg.Asset, "profile", p.Name, "address", addr)}
	if p.Protocol == profile.Modbus {
		pl.points, err = modbusPoints(p.Modbus, cfg.UnitID)
		if err != nil {
			return nil, fmt.Errorf("profile %s: %w", p.Name, err)
		}
		pl.plan = newPlan(pl.points, maxGap)
	} else {
		// Check the points against the built-in models now, so a bad
		// profile fails at start and not at the first poll.
		for i := range p.SunSpec.Points {
			if _, _, err := ssDef(&p.SunSpec.Points[i]); err != nil {
				return nil, fmt.Errorf("profile %s: sunspec.points[%d]: %w", p.Name, i, err)
			}
		}
	}
	return pl, nil
}

// hostPort adds the default port to an address without one.
func hostPort(addr string, port int) (string, error) {
	addr = strings.TrimPrefix(addr, "tcp://")
	if addr == "" {
		return "", errors.New("device address is empty; want host[:port]")
	}
	if port == 0 {
		port = DefaultPort
	}
	if _, p, err := net.SplitHostPort(addr); err == nil {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("device address %q: bad port", addr)
		}
		return addr, nil
	}
	if strings.Count(addr, ":") > 1 && !strings.HasPrefix(addr, "[") {
		addr = "[" + addr + "]" // a bare IPv6 address
	}
	return net.JoinHostPort(strings.Trim(addr, "[]"), strconv.Itoa(port)), nil
}

func newPlan(pts []point, gap int) *plan {
	var items []item
	for i := range pts {
		items = append(items, pts[i].items()...)
	}
	return &plan{blocks: group(items, gap)}
}

// Poll reads the device once. It returns when ctx ends even if the device
// hangs; the abandoned read finishes in the background (bounded by the
// request timeout) before the next poll starts, so there is never more
// than one connection. Values read before a failing point are returned
// with the error.
func (p *poller) Poll(ctx context.Context) ([]device.Value, error) {
	if p.busy != nil {
		select {
		case <-p.busy:
			p.busy = nil
		case <-ctx.Done():
			return nil, fmt.Errorf("modbus %s: the previous poll is still running: %w", p.addr, ctx.Err())
		}
	}
	done := make(chan struct{})
	var vals []device.Value
	var err error
	go func() {
		defer close(done)
		vals, err = p.poll(ctx)
	}()
	select {
	case <-done:
		return vals, err
	case <-ctx.Done():
		p.busy = done
		return nil, fmt.Errorf("modbus %s: %w", p.addr, ctx.Err())
	}
}

// Close closes the connection; it waits for a running read to end.
func (p *poller) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return p.disconnect()
}

func (p *poller) disconnect() error {
	if p.client == nil {
		return nil
	}
	err := p.client.Close()
	p.client = nil
	if p.prof.Protocol == profile.SunSpec {
		p.found = false // the device may have changed: rediscover
	}
	return err
}

// poll is one poll, run by the worker goroutine.
func (p *poller) poll(ctx context.Context) ([]device.Value, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("modbus %s: poller is closed", p.addr)
	}
	if err := p.connect(ctx); err != nil {
		return nil, err
	}
	read := func(unit uint8, tbl table, start, n uint16) ([]uint16, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := p.client.SetUnitId(unit); err != nil {
			return nil, err
		}
		return p.client.ReadRegisters(start, n, tbl.regType())
	}
	if p.prof.Protocol == profile.SunSpec && !p.found {
		if err := p.discover(read); err != nil {
			if !isException(err) {
				p.disconnect()
			}
			return nil, fmt.Errorf("modbus %s unit %d: %w", p.addr, p.unit, err)
		}
	}
	regs := map[regKey]uint16{}
	skipped := func(it item, err error) {
		p.log.Debug("optional point not read", "unit", it.unit, "table", it.tbl.String(), "register", it.start, "point", it.what, "err", err)
	}
	itemErrs, err := p.plan.execute(ctx, read, regs, skipped)
	if err != nil {
		p.disconnect()
		return nil, fmt.Errorf("modbus %s: %w", p.addr, err)
	}
	vals := make([]device.Value, 0, len(p.points))
	errs := itemErrs
	for i := range p.points {
		pt := &p.points[i]
		v, err := pt.read(regs)
		var ni errNotImplemented
		switch {
		case errors.As(err, &ni):
			p.log.Debug("value not implemented by the device", "unit", pt.unit, "register", pt.addr, "point", pt.what())
		case err != nil && pt.m.Optional:
			p.log.Debug("optional point skipped", "err", err)
		case err != nil:
			if _, read := have(regs, pt.unit, pt.tbl, pt.addr, pt.f.words); read {
				errs = append(errs, err) // read but not decodable
			}
		default:
			vals = append(vals, v)
		}
	}
	if len(errs) > 0 {
		if p.prof.Protocol == profile.SunSpec {
			p.found = false // the map may have changed: rediscover
		}
		return vals, fmt.Errorf("modbus %s: %w", p.addr, errors.Join(errs...))
	}
	return vals, nil
}

// connect opens the connection if there is none.
func (p *poller) connect(ctx context.Context) error {
	if p.client != nil {
		return nil
	}
	timeout := p.cfg.Timeout
	if d, ok := ctx.Deadline(); ok && timeout == 0 {
		timeout = time.Until(d)
	}
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	c, err := mb.NewClient(&mb.ClientConfiguration{
		URL:     "tcp://" + p.addr,
		Timeout: timeout,
		Logger:  slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	})
	if err != nil {
		return fmt.Errorf("modbus %s: %w", p.addr, err)
	}
	if err := c.Open(); err != nil {
		return fmt.Errorf("modbus %s: connect: %w", p.addr, err)
	}
	p.client = c
	p.log.Debug("connected", "timeout", timeout)
	return nil
}

// discover finds the SunSpec map, logs the device's identity and plans the
// reads of the profile's points.
func (p *poller) discover(read readFunc) error {
	r := func(addr, n uint16) ([]uint16, error) { return read(p.unit, holding, addr, n) }
	bases := sunspecBases
	if b := p.prof.SunSpec.Base; b != 0 {
		bases = []uint16{uint16(b)}
	}
	base, err := findBase(r, bases)
	if err != nil {
		return err
	}
	blocks, err := walk(r, base)
	if err != nil {
		return err
	}
	attrs := []any{"unit", p.unit, "base", base, "models", ids(blocks)}
	if len(blocks) > 0 && blocks[0].id == 1 && blocks[0].l >= 64 {
		if regs, err := r(blocks[0].start+2, 64); err == nil {
			attrs = append(attrs, "manufacturer", ssString(regs[0:16]), "model", ssString(regs[16:32]),
				"serial", ssString(regs[48:64]))
		} else if !isException(err) {
			return fmt.Errorf("read SunSpec common model: %w", err)
		}
	}
	p.log.Info("SunSpec device found", attrs...)
	pts, missing, err := resolveSunSpec(p.prof.SunSpec, p.unit, blocks)
	if err != nil {
		return err
	}
	for _, m := range missing {
		p.log.Debug("optional SunSpec point absent", "why", m)
	}
	p.points = pts
	// Every register inside a SunSpec map is readable, so a read may
	// span any gap.
	p.plan = newPlan(pts, maxRead)
	p.found = true
	return nil
}
