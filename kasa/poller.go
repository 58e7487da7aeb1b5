package kasa

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gridlink/gridlink/device"
	"github.com/gridlink/gridlink/httpjson"
	"github.com/gridlink/gridlink/profile"
)

// Poller polls one Kasa plug. It is used by one goroutine at a time.
type Poller struct {
	addr    string
	timeout time.Duration
	reqs    []command
	log     *slog.Logger
}

// command is one profile request, compiled.
type command struct {
	json   []byte // compact
	name   string // module.method, for errors
	reader *httpjson.Reader
}

// NewPoller builds the poller of a kasa profile for one plug. cfg.Address is
// host[:port]; the port defaults to the profile's, else 9999.
func NewPoller(p *profile.Profile, cfg device.Config, log *slog.Logger) (device.Poller, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if p.Protocol != profile.Kasa || p.Kasa == nil {
		return nil, fmt.Errorf("profile %s: protocol %s is not kasa", p.Name, p.Protocol)
	}
	port := p.Kasa.Port
	if port == 0 {
		port = DefaultPort
	}
	addr, err := hostPort(cfg.Address, port)
	if err != nil {
		return nil, err
	}
	kp := &Poller{addr: addr, timeout: cfg.Timeout, log: log.With("profile", p.Name, "address", addr)}
	for i := range p.Kasa.Requests {
		r := &p.Kasa.Requests[i]
		where := fmt.Sprintf("profile %s: kasa.requests[%d]", p.Name, i)
		c, err := compile(r.Command)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if c.reader, err = httpjson.NewReader(r.Points, nil, cfg.Vars); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		kp.reqs = append(kp.reqs, c)
	}
	return kp, nil
}

// hostPort adds the default port to an address without one.
func hostPort(addr string, port int) (string, error) {
	a := strings.TrimSpace(addr)
	if a == "" {
		return "", fmt.Errorf("address: empty; want the plug's host or host:port")
	}
	if strings.Contains(a, "://") {
		return "", fmt.Errorf("address %q: want host or host:port, not a URL", addr)
	}
	if h, p, err := net.SplitHostPort(a); err == nil {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("address %q: port %q is not a port number", addr, p)
		}
		return net.JoinHostPort(h, p), nil
	}
	return net.JoinHostPort(strings.Trim(a, "[]"), strconv.Itoa(port)), nil
}

// compile checks a command and names it by its module and method.
func compile(cmd string) (command, error) {
	var doc map[string]any
	if err := json.Unmarshal([]byte(cmd), &doc); err != nil {
		return command{}, fmt.Errorf("command %q is not a JSON object: %w", cmd, err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(cmd)); err != nil {
		return command{}, fmt.Errorf("command %q: %w", cmd, err)
	}
	var names []string
	for module, m := range doc {
		methods, _ := m.(map[string]any)
		if len(methods) == 0 {
			names = append(names, module)
		}
		for method := range methods {
			names = append(names, module+"."+method)
		}
	}
	slices.Sort(names)
	return command{json: buf.Bytes(), name: strings.Join(names, "+")}, nil
}

// Poll sends every command of the profile and maps the replies. Plugs
// close or stall connections kept open between polls, so each command
// gets its own connection.
func (p *Poller) Poll(ctx context.Context) ([]device.Value, error) {
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	// One connection for the poll's commands, as python-kasa keeps one:
	// the plug answers each frame on it.
	conn, closeConn, err := p.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("kasa %s: %w", p.addr, err)
	}
	defer closeConn()
	var out []device.Value
	for i := range p.reqs {
		c := &p.reqs[i]
		reply, err := p.exchange(ctx, conn, c.json)
		if err != nil {
			return nil, fmt.Errorf("kasa %s %s: %w", p.addr, c.name, err)
		}
		doc, err := httpjson.DecodeBody(reply)
		if err != nil {
			return nil, fmt.Errorf("kasa %s %s: reply: %w", p.addr, c.name, err)
		}
		if err := checkErrCode(doc); err != nil {
			return nil, fmt.Errorf("kasa %s %s: %w", p.addr, c.name, err)
		}
		vals, err := c.reader.Read(doc)
		if err != nil {
			return nil, fmt.Errorf("kasa %s %s: %w; reply %s", p.addr, c.name, err, httpjson.Excerpt(reply))
		}
		out = append(out, vals...)
	}
	return out, nil
}

// dial opens the poll's connection; ctx's deadline and cancellation apply
// to every exchange on it. The returned stop closes it.
func (p *Poller) dial(ctx context.Context) (net.Conn, func(), error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// Cancellation without a deadline still unblocks the reads.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	return conn, func() { stop(); conn.Close() }, nil
}

// exchange sends one command on conn and reads the reply.
func (p *Poller) exchange(ctx context.Context, conn net.Conn, cmd []byte) ([]byte, error) {
	p.log.Debug("command", "json", string(cmd))
	if err := WriteFrame(conn, cmd); err != nil {
		return nil, fmt.Errorf("send: %w", ctxErr(ctx, err))
	}
	reply, err := ReadFrame(conn, MaxFrame)
	if err != nil {
		return nil, fmt.Errorf("reply: %w", ctxErr(ctx, err))
	}
	return reply, nil
}

// ctxErr prefers the context's error to the i/o timeout it caused.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// checkErrCode finds a non-zero err_code in a reply: per method
// ({"emeter":{"get_realtime":{"err_code":-2,"err_msg":"member not
// support"}}}) or per module ({"emeter":{"err_code":-1,...}}).
func checkErrCode(doc any) error {
	modules, ok := doc.(map[string]any)
	if !ok {
		return fmt.Errorf("reply is not a JSON object")
	}
	check := func(where string, m map[string]any) error {
		code, ok := m["err_code"]
		if !ok {
			return nil
		}
		if f, isNum := code.(float64); isNum && f == 0 {
			return nil
		}
		msg, _ := m["err_msg"].(string)
		return fmt.Errorf("%s: err_code %v (%s)", where, code, msg)
	}
	for _, module := range slices.Sorted(maps.Keys(modules)) {
		mm, ok := modules[module].(map[string]any)
		if !ok {
			continue
		}
		if err := check(module, mm); err != nil {
			return err
		}
		for _, method := range slices.Sorted(maps.Keys(mm)) {
			if r, ok := mm[method].(map[string]any); ok {
				if err := check(module+"."+method, r); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Close does nothing: a poll holds no connection between polls.
func (p *Poller) Close() error { return nil }
