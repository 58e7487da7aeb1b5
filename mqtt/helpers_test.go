package mqtt

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/device"
	"github.com/gridlink/gridlink/profile"
)

// hang guards a wait that should end at once; it is not a timing claim.
const hang = 30 * time.Second

// watchBus wraps a Bus and reports each subscription once the bus has
// made it, so a test knows when a Subscriber is listening.
type watchBus struct {
	Bus
	subscribed chan string
}

func newWatchBus(b Bus) *watchBus { return &watchBus{Bus: b, subscribed: make(chan string, 64)} }

func (w *watchBus) Subscribe(filter string, fn func(string, []byte)) (func(), error) {
	u, err := w.Bus.Subscribe(filter, fn)
	if err == nil {
		w.subscribed <- filter
	}
	return u, err
}

// Done passes the wrapped bus's end through.
func (w *watchBus) Done() <-chan struct{} {
	if d, ok := w.Bus.(doner); ok {
		return d.Done()
	}
	return nil
}

// running is a Subscriber's Subscribe running in the background.
type running struct {
	values chan []device.Value
	err    chan error
	sub    *Subscriber
}

// startSubscriber builds and runs a Subscriber for p on bus and waits
// until all its subscriptions are made.
func startSubscriber(t *testing.T, ctx context.Context, p *profile.Profile, cfg device.Config, bus Bus) *running {
	t.Helper()
	w := newWatchBus(bus)
	ds, err := NewSubscriber(p, cfg, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := ds.(*Subscriber)
	r := &running{values: make(chan []device.Value, 256), err: make(chan error, 1), sub: s}
	go func() { r.err <- s.Subscribe(ctx, func(v []device.Value) { r.values <- v }) }()
	for range s.Filters() {
		select {
		case <-w.subscribed:
		case err := <-r.err:
			t.Fatalf("subscribe ended early: %v", err)
		case <-time.After(hang):
			t.Fatal("subscriptions not made")
		}
	}
	return r
}

// next waits for the next emitted values.
func (r *running) next(t *testing.T) []device.Value {
	t.Helper()
	select {
	case v := <-r.values:
		return v
	case err := <-r.err:
		t.Fatalf("subscribe ended: %v", err)
	case <-time.After(hang):
		t.Fatal("no values emitted")
	}
	return nil
}

// canonical converts a device value to its quantity's canonical unit.
func canonical(t *testing.T, cat *cim.Catalogue, v device.Value) float64 {
	t.Helper()
	q, ok := cat.Lookup(v.Quantity)
	if !ok {
		t.Fatalf("quantity %q not in catalogue", v.Quantity)
	}
	c, err := q.Convert(v.Value, v.Unit)
	if err != nil {
		t.Fatalf("%s: convert %g %s: %v", v.Quantity, v.Value, v.Unit, err)
	}
	return c
}

func near(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// embeddedProfile loads one embedded profile.
func embeddedProfile(t testing.TB, name string) *profile.Profile {
	t.Helper()
	set, err := profile.Embedded(cim.Default())
	if err != nil {
		t.Fatal(err)
	}
	p, ok := set.Get(name)
	if !ok {
		t.Fatalf("profile %s not embedded", name)
	}
	return p
}

// tool finds a mosquitto binary: a skip when missing, a failure in CI.
func tool(t *testing.T, name string) string {
	t.Helper()
	for _, p := range []string{name, "/usr/sbin/" + name, "/usr/bin/" + name} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not installed (apt-get install mosquitto mosquitto-clients)", name)
	}
	t.Skipf("%s not installed (apt-get install mosquitto mosquitto-clients)", name)
	return ""
}

// freePort finds a port no one listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// mosquitto is a real broker process of the test's own.
type mosquitto struct {
	t    *testing.T
	bin  string
	conf string
	port int
	cmd  *exec.Cmd
	logf string // the broker's stderr
	// exited receives the process's end.
	exited chan error
}

// startMosquitto writes a config with one user and starts the broker.
func startMosquitto(t *testing.T, name, pass string) *mosquitto {
	t.Helper()
	bin := tool(t, "mosquitto")
	passwd := tool(t, "mosquitto_passwd")
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "passwd")
	if out, err := exec.Command(passwd, "-b", "-c", pwFile, name, pass).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v: %s", err, out)
	}
	m := &mosquitto{t: t, bin: bin, port: freePort(t), conf: filepath.Join(dir, "mosquitto.conf"), logf: filepath.Join(dir, "mosquitto.log")}
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n", m.port, pwFile)
	// Run as root, mosquitto drops to user "mosquitto", who cannot read
	// the test's private temp dir; stay the test's user instead.
	if u, err := user.Current(); err == nil {
		conf += "user " + u.Username + "\n"
	}
	if err := os.WriteFile(m.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	m.start()
	t.Cleanup(m.stop)
	return m
}

func (m *mosquitto) addr() string { return "127.0.0.1:" + strconv.Itoa(m.port) }

func (m *mosquitto) start() {
	m.t.Helper()
	f, err := os.OpenFile(m.logf, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		m.t.Fatal(err)
	}
	defer f.Close()
	m.cmd = exec.Command(m.bin, "-c", m.conf)
	m.cmd.Stderr = f
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start mosquitto: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- m.cmd.Wait() }()
	// Ready when it accepts a connection.
	deadline := time.Now().Add(hang)
	for {
		c, err := net.DialTimeout("tcp", m.addr(), time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			m.t.Fatalf("mosquitto exited: %v\n%s", err, m.logText())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mosquitto does not listen on %s\n%s", m.addr(), m.logText())
		}
	}
	m.exited = exited
}

func (m *mosquitto) logText() string {
	b, _ := os.ReadFile(m.logf)
	return string(b)
}

func (m *mosquitto) stop() {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(hang):
		_ = m.cmd.Process.Kill()
		<-m.exited
	}
	m.cmd = nil
}

// pub runs mosquitto_pub with QoS 1 and returns its error and output.
func pub(t *testing.T, addr string, args ...string) (string, error) {
	t.Helper()
	bin := tool(t, "mosquitto_pub")
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(t.Context(), hang)
	defer cancel()
	all := append([]string{"-h", host, "-p", port, "-q", "1", "-i", "gridlink-test-pub"}, args...)
	out, err := exec.CommandContext(ctx, bin, all...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("mosquitto_pub %v hangs", args)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("mosquitto_pub: %v", err)
	}
	return string(out), err
}

// mustPub publishes and fails the test when mosquitto_pub fails.
func mustPub(t *testing.T, addr, user, pass, topic, payload string) {
	t.Helper()
	if out, err := pub(t, addr, "-u", user, "-P", pass, "-t", topic, "-m", payload); err != nil {
		t.Fatalf("mosquitto_pub %s %s: %v: %s", topic, payload, err, out)
	}
}

func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithCancel(t.Context())
}
