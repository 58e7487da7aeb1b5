package kasa

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/device"
	"github.com/gridlink/gridlink/httpjson"
	"github.com/gridlink/gridlink/profile"
	"github.com/gridlink/gridlink/sim"
)

// devices holds recorded plug replies (each with a .src file naming its
// public origin) that simulators start from.
//
//go:embed devices/*.json
var devices embed.FS

// base is a simulator's starting reply: a recorded file, or a document
// written here where no recording is public.
type base struct {
	file, built string
}

// baseDocs by profile name and canonical command.
var baseDocs = map[string]map[string]base{
	"kasa-kp115": {
		`{"emeter":{"get_realtime":{}}}`: {file: "kasa-kp115-realtime.json"},
		// The sysinfo fields a KP115 1.0.16 reports, with made-up
		// identifiers.
		`{"system":{"get_sysinfo":{}}}`: {built: `{"system":{"get_sysinfo":{"sw_ver":"1.0.16 Build 210205 Rel.163735","hw_ver":"1.0","model":"KP115(EU)","type":"IOT.SMARTPLUGSWITCH","mac":"00:00:5E:00:53:01","deviceId":"0000000000000000000000000000000000000000","alias":"gridlink simulated plug","relay_state":1,"on_time":3600,"led_off":0,"rssi":-52,"updating":0,"feature":"TIM:ENE","err_code":0}}}`},
	},
}

// idleTimeout closes a client connection that sends nothing.
const idleTimeout = 30 * time.Second

// Simulator is a simulated Kasa plug: it answers each command of its
// profile with a Document in the plug's real shape, over the real wire
// protocol.
type Simulator struct {
	name string
	reqs []profile.KasaRequest
	vars map[string]string
	cat  *cim.Catalogue

	mu     sync.Mutex
	docs   map[string]*httpjson.Document // by canonical command
	order  []string                      // canonical commands in profile order
	ln     net.Listener
	closed bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// NewSimulator builds the simulator of a kasa profile.
func NewSimulator(p *profile.Profile, cfg device.Config, cat *cim.Catalogue) (*Simulator, error) {
	if p.Protocol != profile.Kasa || p.Kasa == nil {
		return nil, fmt.Errorf("profile %s: protocol %s is not kasa", p.Name, p.Protocol)
	}
	s := &Simulator{name: p.Name, reqs: p.Kasa.Requests, vars: cfg.Vars, cat: cat,
		docs: map[string]*httpjson.Document{}, conns: map[net.Conn]struct{}{}}
	for i, r := range s.reqs {
		key, err := canonical([]byte(r.Command))
		if err != nil {
			return nil, fmt.Errorf("profile %s: kasa.requests[%d]: %w", p.Name, i, err)
		}
		if _, dup := s.docs[key]; dup {
			return nil, fmt.Errorf("profile %s: kasa.requests[%d]: command %s is listed twice", p.Name, i, key)
		}
		b, err := baseDoc(p.Name, key)
		if err != nil {
			return nil, err
		}
		if s.docs[key], err = httpjson.NewDocument(b, r.Points, nil, cfg.Vars, cat); err != nil {
			return nil, fmt.Errorf("profile %s: kasa.requests[%d]: %w", p.Name, i, err)
		}
		s.order = append(s.order, key)
	}
	return s, nil
}

func baseDoc(profileName, key string) ([]byte, error) {
	b, ok := baseDocs[profileName][key]
	switch {
	case !ok:
		return nil, nil
	case b.file == "":
		return []byte(b.built), nil
	}
	return devices.ReadFile("devices/" + b.file)
}

// canonical writes a command with sorted keys and no spaces, so that
// equal commands compare equal.
func canonical(cmd []byte) (string, error) {
	var v map[string]any
	if err := json.Unmarshal(cmd, &v); err != nil {
		return "", fmt.Errorf("command is not a JSON object: %w", err)
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// SetDocument replaces the starting reply of a command, to serve another
// firmware's shape (an HS110 v1's floats in W, V, A and kWh instead of a
// KP115's integers). Values set by earlier Updates are dropped.
func (s *Simulator) SetDocument(cmd string, reply []byte) error {
	key, err := canonical([]byte(cmd))
	if err != nil {
		return err
	}
	for i, r := range s.reqs {
		k, _ := canonical([]byte(r.Command))
		if k != key {
			continue
		}
		d, err := httpjson.NewDocument(reply, r.Points, nil, s.vars, s.cat)
		if err != nil {
			return fmt.Errorf("profile %s: kasa.requests[%d]: %w", s.name, i, err)
		}
		s.mu.Lock()
		s.docs[key] = d
		s.mu.Unlock()
		return nil
	}
	return fmt.Errorf("profile %s has no command %s", s.name, key)
}

// Update sets what the plug holds for this cycle and returns the values a
// poller reads back, in profile order.
func (s *Simulator) Update(f sim.Frame) ([]device.Value, error) {
	out, err := s.documents().Update(f)
	if err != nil {
		return nil, fmt.Errorf("profile %s: %w", s.name, err)
	}
	return out, nil
}

// Held returns the values the plug holds now, in profile order.
func (s *Simulator) Held() []device.Value { return s.documents().Held() }

func (s *Simulator) documents() httpjson.Documents {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(httpjson.Documents, 0, len(s.order))
	for _, k := range s.order {
		out = append(out, s.docs[k])
	}
	return out
}

// Start serves the plug on addr ("127.0.0.1:0" picks a port) and returns
// the bound address.
func (s *Simulator) Start(addr string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return "", errors.New("simulator already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("simulator %s: %w", s.name, err)
	}
	s.ln = ln
	s.wg.Add(1)
	go s.accept(ln)
	return ln.Addr().String(), nil
}

func (s *Simulator) accept(ln net.Listener) {
	defer s.wg.Done()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return // closed
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = conn.Close()
			return
		}
		s.conns[conn] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(conn)
	}
}

// serve answers frames on one connection until the client closes it.
func (s *Simulator) serve(conn net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		_ = conn.Close()
	}()
	for {
		_ = conn.SetDeadline(time.Now().Add(idleTimeout))
		cmd, err := ReadFrame(conn, MaxFrame)
		if err != nil {
			return
		}
		reply, ok := s.reply(cmd)
		if !ok {
			return // a plug drops what it cannot parse
		}
		if err := WriteFrame(conn, reply); err != nil {
			return
		}
	}
}

// reply answers one command: the document of a profile command, or the
// plug's error for a module it does not have.
func (s *Simulator) reply(cmd []byte) ([]byte, bool) {
	key, err := canonical(cmd)
	if err != nil {
		return nil, false
	}
	s.mu.Lock()
	d := s.docs[key]
	s.mu.Unlock()
	if d != nil {
		b, err := d.JSON()
		return b, err == nil
	}
	var req map[string]any
	_ = json.Unmarshal(cmd, &req) // canonical parsed it already
	out := map[string]any{}
	for module := range req {
		out[module] = map[string]any{"err_code": -1, "err_msg": "module not support"}
	}
	b, err := json.Marshal(out)
	return b, err == nil
}

// Close stops serving and closes open connections.
func (s *Simulator) Close() error {
	s.mu.Lock()
	ln := s.ln
	s.closed = true
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	var err error
	if ln != nil {
		err = ln.Close()
	}
	s.wg.Wait()
	return err
}
