//go:build !edge

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gridlink/gridlink/itc"
)

// TestDemo runs `gridlink demo` as a user would, with a short window: the
// platform, the four pilot sites' simulated devices behind their gateways
// and the OCPP chargers start in one process, the whole catalogue runs,
// the summary says every seed case passed, and FLT1.01 passed with the
// platform really stopped and started again (the demo says when), the
// printed page answers while the demo runs (on the restarted platform, with
// the same key), and the process ends by itself with exit status 0.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run")
	}
	cmd := exec.CommandContext(t.Context(), binary, "demo", "--for", "150s", "--listen", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &lockedWriter{w: &stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	open := regexp.MustCompile(`^open (http://\S+/\?key=(\S+))$`)
	passedRE := regexp.MustCompile(`^gridlink demo: (\d+) of (\d+) seed cases passed$`)
	flt1RE := regexp.MustCompile(`^FLT1\.01\s+\S+\s+(\S+)\s`)
	restartRE := regexp.MustCompile(`^gridlink demo: platform_down stopped the platform at \S+ and started it again at \S+ \(down \S+\)$`)
	var page, key, flt1 string
	var passed []string
	restarts := 0
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		if m := passedRE.FindStringSubmatch(line); m != nil {
			passed = m
		}
		if m := flt1RE.FindStringSubmatch(line); m != nil {
			flt1 = m[1]
		}
		if restartRE.MatchString(line) {
			restarts++
		}
		if m := open.FindStringSubmatch(line); m != nil {
			page, key = m[1], m[2]
			break
		}
	}
	if page == "" {
		cmd.Wait()
		t.Fatalf("the demo printed no page address:\n%s\nstderr:\n%s", out.String(), tail(stderr.String(), 3000))
	}

	// The page and the API answer while the demo runs.
	resp, err := http.Get(page)
	if err != nil {
		t.Fatalf("GET %s: %v", page, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(strings.ToLower(string(body)), "<html") {
		t.Errorf("GET %s: %d %q", page, resp.StatusCode, tail(string(body), 200))
	}
	base := strings.TrimSuffix(page, "/?key="+key)
	var sites struct{ Sites []struct{ ID string } }
	if code := call(t, "GET", base+"/api/v1/sites", key, nil, &sites); code != http.StatusOK || len(sites.Sites) != 4 {
		t.Errorf("GET /api/v1/sites with the printed key: %d, %d sites", code, len(sites.Sites))
	}
	var runs struct {
		Runs []map[string]any `json:"runs"`
	}
	if code := call(t, "GET", base+"/api/v1/itc/runs", key, nil, &runs); code != http.StatusOK || len(runs.Runs) != 1 {
		t.Errorf("GET /api/v1/itc/runs: %d, %d runs; want the demo's run kept", code, len(runs.Runs))
	}

	go io.Copy(io.Discard, stdout)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("the demo did not stop by itself after --for 150s")
	}
	if passed == nil || passed[1] != passed[2] || err != nil {
		t.Errorf("the demo ended with %v; not every case passed:\n%s\nstderr:\n%s", err, out.String(), tail(stderr.String(), 3000))
	}
	if flt1 != "passed" || restarts != 1 {
		t.Errorf("FLT1.01 %q with %d platform restarts; want passed, the platform stopped and started once:\n%s", flt1, restarts, out.String())
	}
	t.Logf("demo output:\n%s", out.String())
}

// testDemoPlatform starts a demo platform on free ports in a temporary
// data directory, stopped at the end.
func testDemoPlatform(t testing.TB) (*demoPlatform, string) {
	t.Helper()
	cfg := defaultServeConfig()
	cfg.Data, cfg.Listen, cfg.OCPPListen, cfg.NoFsync = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", true
	dp, err := startDemoPlatform(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dp.Close)
	key, err := os.ReadFile(filepath.Join(cfg.Data, AdminKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return dp, strings.TrimSpace(string(key))
}

// TestDemoPlatformRestart stops the demo's platform and starts it again:
// while stopped its API and OCPP ports refuse connections; started, it
// answers on the same API address and OCPP port, with the same data and
// admin key, and the outage is recorded.
func TestDemoPlatformRestart(t *testing.T) {
	dp, admin := testDemoPlatform(t)
	base, ocppAddr := dp.Base(), dp.OCPPAddr()
	if strings.HasSuffix(base, ":0") || strings.HasSuffix(ocppAddr, ":0") {
		t.Fatalf("ports not pinned: %s, %s", base, ocppAddr)
	}
	site := map[string]string{"id": "athens", "name": "Athens", "country": "GR", "timezone": "Europe/Athens"}
	if code := call(t, "POST", base+"/api/v1/sites", admin, site, nil); code/100 != 2 {
		t.Fatalf("POST /api/v1/sites: %d", code)
	}
	ctx := t.Context()
	if err := dp.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if dp.Running() != nil || !strings.HasPrefix(dp.State(), "platform stopped at ") {
		t.Errorf("stopped: running %v, state %q", dp.Running() != nil, dp.State())
	}
	for _, addr := range []string{strings.TrimPrefix(base, "http://"), ocppAddr} {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Errorf("%s accepts connections while the platform is stopped", addr)
		}
	}
	if err := dp.Stop(ctx); err != nil {
		t.Errorf("stop a stopped platform: %v", err)
	}
	if err := dp.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if dp.Base() != base || dp.OCPPAddr() != ocppAddr {
		t.Errorf("restarted on %s, %s; want %s, %s", dp.Base(), dp.OCPPAddr(), base, ocppAddr)
	}
	var sites struct{ Sites []struct{ ID string } }
	if code := call(t, "GET", base+"/api/v1/sites", admin, nil, &sites); code != http.StatusOK || len(sites.Sites) != 1 || sites.Sites[0].ID != "athens" {
		t.Errorf("after the restart, GET /api/v1/sites with the same key: %d %+v", code, sites)
	}
	if c, err := net.Dial("tcp", ocppAddr); err != nil {
		t.Errorf("OCPP port after the restart: %v", err)
	} else {
		c.Close()
	}
	if o := dp.Outages(); len(o) != 1 || !o[0].Started.After(o[0].Stopped) || !strings.HasPrefix(dp.State(), "platform started again at ") {
		t.Errorf("outages %+v, state %q", o, dp.State())
	}
}

// TestRetryInUse: an address in use is waited for, within a bound, and
// the error names what and where.
func TestRetryInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	tries := 0
	// The wait ends with ctx; the error says what and where.
	cctx, cancel := context.WithCancel(t.Context())
	cancel()
	got, err := listenRetry(cctx, "the API", addr)
	if err == nil {
		got.Close()
		t.Fatalf("listen on %s, in use, succeeded", addr)
	}
	if !strings.Contains(err.Error(), "the API: "+addr+" in use") || !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("listen on an address in use: %v", err)
	}
	// Freed after a few attempts: the retry gets it.
	err = retryInUse(t.Context(), "the API", addr, func() error {
		if tries++; tries == 3 {
			ln.Close()
		}
		l, err := net.Listen("tcp", addr)
		if err == nil {
			l.Close()
		}
		return err
	})
	if err != nil || tries != 3 {
		t.Errorf("after %d tries: %v", tries, err)
	}
	if err := retryInUse(t.Context(), "x", addr, func() error { return errors.New("no") }); err == nil || err.Error() != "no" {
		t.Errorf("other errors are not retried: %v", err)
	}
}

// fakeFaults records what it is asked to do.
type fakeFaults struct{ got []string }

func (f *fakeFaults) Inject(_ context.Context, fault, site string) (func(context.Context) error, error) {
	f.got = append(f.got, fault+"@"+site)
	return func(context.Context) error { return nil }, nil
}

func (f *fakeFaults) InjectClock(_ context.Context, site string, offset time.Duration) (func(context.Context) error, error) {
	f.got = append(f.got, "clock@"+site+"+"+offset.String())
	return func(context.Context) error { return nil }, nil
}

func (f *fakeFaults) StampedByGateway(site, asset string) bool { return asset != "own-time" }

func (f *fakeFaults) Diagnose(site string) string { return "uplink of " + site }

// TestDemoFaults: platform_down stops the demo's platform and its undo
// starts it again; other faults and the optional parts go to the
// simulation's injector.
func TestDemoFaults(t *testing.T) {
	dp, _ := testDemoPlatform(t)
	sim := &fakeFaults{}
	f := &demoFaults{sim: sim, plat: dp, log: slog.New(slog.DiscardHandler)}
	ctx := t.Context()
	undo, err := f.Inject(ctx, itc.FaultPlatformDown, "athens")
	if err != nil || dp.Running() != nil {
		t.Fatalf("platform_down: %v, running %v", err, dp.Running() != nil)
	}
	if d := f.Diagnose("athens"); !strings.Contains(d, "uplink of athens") || !strings.Contains(d, "platform stopped at") {
		t.Errorf("diagnosis while down: %q", d)
	}
	if err := undo(ctx); err != nil || dp.Running() == nil {
		t.Fatalf("undo: %v, running %v", err, dp.Running() != nil)
	}
	if d := f.Diagnose("athens"); d != "uplink of athens" {
		t.Errorf("diagnosis when up: %q", d)
	}
	if _, err := f.Inject(ctx, itc.FaultDeviceSilent, "bristol"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.InjectClock(ctx, "benetutti", time.Minute); err != nil {
		t.Fatal(err)
	}
	if !f.StampedByGateway("a", "meter") || f.StampedByGateway("a", "own-time") {
		t.Error("StampedByGateway not forwarded")
	}
	if want := []string{"device_silent@bristol", "clock@benetutti+1m0s"}; !slices.Equal(sim.got, want) {
		t.Errorf("forwarded %v, want %v", sim.got, want)
	}
}

// BenchmarkDemoPlatformRestart times one platform_down outage's overhead:
// stopping the demo's platform (SQLite store, ledger, OCPP) and starting
// it again on the same addresses.
func BenchmarkDemoPlatformRestart(b *testing.B) {
	dp, _ := testDemoPlatform(b)
	ctx := b.Context()
	for b.Loop() {
		if err := dp.Stop(ctx); err != nil {
			b.Fatal(err)
		}
		if err := dp.Start(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
