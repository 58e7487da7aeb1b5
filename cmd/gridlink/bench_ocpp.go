//go:build !edge

package main

// `gridlink bench ocpp` measures how many OCPP 1.6 charge points one
// platform node holds: it runs `gridlink serve --ocpp-listen` as a child
// process (so /proc figures are the platform's alone) and connects many
// light simulated chargers to it, each sending MeterValues every interval,
// timing every call from its write to its CALLRESULT.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/bits"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/sqlite"
)

// Targets of issue 4.
const (
	ocppTargetChargers = 10000
	ocppTargetP99MS    = 50.0
	ocppBenchSite      = "bench"
	// ocppCallTimeout is how long a charger waits for a CALLRESULT before
	// it counts the call as an error and drops the connection.
	ocppCallTimeout = 30 * time.Second
)

// ocppBenchConfig says what `gridlink bench ocpp` measures.
type ocppBenchConfig struct {
	chargers int
	interval time.Duration
	window   time.Duration
	ramp     int // connections started per second
	jsonOut  bool
	quiet    bool
	keep     string
	exe      string
}

// ocppBenchResult is what one run measured.
type ocppBenchResult struct {
	Machine            gwMachine        `json:"machine"`
	Chargers           int              `json:"chargers"`
	Interval           string           `json:"interval"`
	WindowSeconds      float64          `json:"window_seconds"`
	RampPerSecond      int              `json:"ramp_per_second"`
	RampSeconds        float64          `json:"ramp_seconds"`
	OpenFilesLimit     uint64           `json:"open_files_limit"`
	LimitNote          string           `json:"limit_note,omitempty"`
	Connected          int64            `json:"connected"`
	Held               int64            `json:"held"` // connected at the end, no call failed
	Dropped            int64            `json:"dropped"`
	DialErrors         int64            `json:"dial_errors"`
	Booted             int64            `json:"booted"`
	MeterSent          int64            `json:"meter_values_sent"`
	MeterAnswered      int64            `json:"meter_values_answered"`
	MeterErrored       int64            `json:"meter_values_errored"`
	MeterPerSecond     float64          `json:"meter_values_per_second_in_window"`
	Latency            ocppLatency      `json:"meter_values_handling_ms"` // ramp-up and window
	WindowLatency      ocppLatency      `json:"meter_values_handling_ms_after_ramp"`
	BootLatency        ocppLatency      `json:"boot_and_status_handling_ms"`
	FirstErrors        []string         `json:"first_errors,omitempty"`
	RSSBeforeMB        float64          `json:"platform_rss_before_mb"`
	RSSEndMB           float64          `json:"platform_rss_end_mb"`
	HWMMB              float64          `json:"platform_vm_hwm_mb"`
	KBPerConnection    float64          `json:"platform_kb_per_connection"`
	Threads            int              `json:"platform_threads"`
	CPUSeconds         float64          `json:"platform_cpu_seconds"`
	CPUPercent         float64          `json:"platform_cpu_percent_of_one_core"`
	ReadingsExpected   int64            `json:"readings_expected"` // 5 per answered MeterValues
	ReadingsStored     int64            `json:"readings_stored"`   // with StatusNotification's state readings
	ReadingsByQuantity map[string]int64 `json:"readings_stored_by_quantity"`
	CleanExit          bool             `json:"clean_exit"`
	ExitError          string           `json:"exit_error,omitempty"`
	Targets            []gwGoal         `json:"targets"`
	Process            ocppLoadProc     `json:"load_generator"`
}

// ocppLatency summarises a latency histogram, in milliseconds.
type ocppLatency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// ocppLoadProc is what the load generator (this process) used.
type ocppLoadProc struct {
	CPUSeconds float64 `json:"cpu_seconds"`
	RSSMB      float64 `json:"rss_mb"`
}

// runBenchOCPP is `gridlink bench ocpp`.
func runBenchOCPP(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c ocppBenchConfig
	fs := flag.NewFlagSet("bench ocpp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.chargers, "chargers", ocppTargetChargers, "number of simulated charge `points`")
	fs.DurationVar(&c.interval, "interval", 10*time.Second, "MeterValues interval of every charger")
	fs.DurationVar(&c.window, "for", 60*time.Second, "measuring time after the ramp-up")
	fs.IntVar(&c.ramp, "ramp", 500, "connections started per `second`")
	fs.BoolVar(&c.jsonOut, "json", false, "print the results as JSON")
	fs.BoolVar(&c.quiet, "quiet", false, "no progress lines")
	fs.StringVar(&c.keep, "keep", "", "`directory` to keep the run's files in (platform store, serve.log); default a temporary one, removed after")
	fs.StringVar(&c.exe, "platform-binary", "", "run this gridlink `executable` as the platform instead of this one")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case c.chargers < 1:
		return fmt.Errorf("--chargers %d: want at least 1", c.chargers)
	case c.chargers > 99999:
		return fmt.Errorf("--chargers %d: want at most 99999", c.chargers)
	case c.interval < 100*time.Millisecond:
		return fmt.Errorf("--interval %v: want at least 100ms", c.interval)
	case c.window < time.Second:
		return fmt.Errorf("--for %v: want at least 1s", c.window)
	case c.ramp < 1:
		return fmt.Errorf("--ramp %d: want at least 1 per second", c.ramp)
	}
	if runtime.GOOS != "linux" {
		return fmt.Errorf("bench ocpp reads /proc and runs on Linux only, not %s", runtime.GOOS)
	}
	dir, cleanup, err := benchWorkDir(c.keep, "gridlink-bench-ocpp")
	if err != nil {
		return err
	}
	defer cleanup()
	res, err := benchOCPP(ctx, c, dir, stderr)
	if err != nil {
		return err
	}
	return writeBenchResult(stdout, c.jsonOut, res, func() { printOCPPBench(stdout, res) })
}

// raiseOpenFiles sets the soft RLIMIT_NOFILE to the hard limit. Setting it
// explicitly (rather than relying on the Go runtime's own raise) makes
// child processes inherit it.
func raiseOpenFiles() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("getrlimit nofile: %w", err)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return lim.Cur, fmt.Errorf("setrlimit nofile %d: %w", lim.Max, err)
	}
	return lim.Cur, nil
}

func benchOCPP(ctx context.Context, c ocppBenchConfig, dir string, log io.Writer) (ocppBenchResult, error) {
	res := ocppBenchResult{Machine: machineInfo(), Chargers: c.chargers, Interval: c.interval.String(),
		WindowSeconds: c.window.Seconds(), RampPerSecond: c.ramp}
	nofile, err := raiseOpenFiles()
	res.OpenFilesLimit = nofile
	if err != nil {
		res.LimitNote = err.Error()
	}
	// Each side holds one descriptor per charger plus the store, the API
	// and the runtime's own.
	if need := uint64(c.chargers) + 256; nofile < need {
		res.LimitNote = strings.TrimSpace(res.LimitNote + fmt.Sprintf(" open-files limit %d is below the %d this run needs: connections beyond it fail", nofile, need))
	}
	if res.LimitNote != "" {
		fmt.Fprintln(log, "bench ocpp:", res.LimitNote)
	}

	siteDir := filepath.Join(dir, "sites")
	if err := os.MkdirAll(siteDir, 0o750); err != nil {
		return res, err
	}
	if err := os.WriteFile(filepath.Join(siteDir, "bench.yaml"), ocppSiteFile(c.chargers), 0o640); err != nil {
		return res, err
	}
	dataDir := filepath.Join(dir, "data")
	plat, err := startChildPlatform(c.exe, dataDir, siteDir, filepath.Join(dir, "serve.log"))
	if err != nil {
		return res, err
	}
	defer plat.kill()
	pid := plat.cmd.Process.Pid
	keyBytes, err := os.ReadFile(filepath.Join(dataDir, AdminKeyFile))
	if err != nil {
		return res, fmt.Errorf("admin key: %w", err)
	}
	key := strings.TrimSpace(string(keyBytes))
	if !c.quiet {
		fmt.Fprintf(log, "bench ocpp: platform pid %d on %s, ocpp on %s; registering %d charge points\n", pid, plat.api, plat.ocpp, c.chargers)
	}
	if err := registerChargePoints(ctx, plat.api, key, c.chargers); err != nil {
		return res, plat.explain(err)
	}
	runtime.GC()
	time.Sleep(time.Second) // let the registration's garbage settle before the baseline
	memBefore, err := procStatus(pid)
	if err != nil {
		return res, plat.explain(err)
	}
	res.RSSBeforeMB = memBefore.rss
	cpuBefore, err := procCPU(pid)
	if err != nil {
		return res, plat.explain(err)
	}
	selfBefore, _ := procCPU(os.Getpid())
	start := time.Now()

	// The chargers run until stop; the measuring window ends it.
	load := &ocppLoad{url: "ws://" + plat.ocpp + "/ocpp/", interval: c.interval}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	rampDone := make(chan struct{})
	go func() {
		defer close(rampDone)
		for i := range c.chargers {
			at := start.Add(time.Duration(float64(i) / float64(c.ramp) * float64(time.Second)))
			if d := time.Until(at); d > 0 {
				select {
				case <-runCtx.Done():
					return
				case <-time.After(d):
				}
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				load.run(runCtx, i)
			}()
		}
	}()

	// Progress every 5 s until the ramp is done and the window is over.
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	var windowEnd <-chan time.Time
	var sentAtWindow int64
measure:
	for {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-plat.exited:
			return res, plat.explain(errors.New("the platform exited during the run"))
		case <-rampDone:
			rampDone = nil
			res.RampSeconds = time.Since(start).Seconds()
			sentAtWindow = load.meterAnswered.Load()
			load.inWindow.Store(true)
			windowEnd = time.After(c.window)
			if !c.quiet {
				fmt.Fprintf(log, "bench ocpp: ramp-up done in %.1f s, measuring for %v\n", res.RampSeconds, c.window)
			}
		case <-tick.C:
			if !c.quiet {
				m, _ := procStatus(pid)
				last := load.tickLat.summary()
				load.tickLat.reset()
				fmt.Fprintf(log, "bench ocpp: %4.0fs connected %d dropped %d dial-errors %d meter values sent %d answered %d errored %d; last 5 s p99 %.1f max %.1f ms; run p99 %.1f ms; platform RSS %.0f MB\n",
					time.Since(start).Seconds(), load.connected.Load()-load.dropped.Load(), load.dropped.Load(), load.dialErrors.Load(),
					load.meterSent.Load(), load.meterAnswered.Load(), load.meterErrored.Load(), last.P99, last.Max, load.meterLat.quantile(0.99), m.rss)
				if load.inWindow.Load() {
					fmt.Fprintf(log, "bench ocpp:        after the ramp-up: p99 %.1f ms\n", load.windowLat.quantile(0.99))
				}
			}
		case <-windowEnd:
			break measure
		}
	}
	elapsed := time.Since(start)
	res.MeterPerSecond = float64(load.meterAnswered.Load()-sentAtWindow) / c.window.Seconds()
	res.Held = load.connected.Load() - load.dropped.Load()
	memEnd, err := procStatus(pid)
	if err != nil {
		return res, plat.explain(err)
	}
	cpuEnd, err := procCPU(pid)
	if err != nil {
		return res, plat.explain(err)
	}
	res.RSSEndMB, res.HWMMB, res.Threads = memEnd.rss, memEnd.hwm, memEnd.threads
	if res.Held > 0 {
		res.KBPerConnection = (memEnd.rss - memBefore.rss) * 1024 / float64(res.Held)
	}
	ticks := (cpuEnd.user + cpuEnd.sys) - (cpuBefore.user + cpuBefore.sys)
	res.CPUSeconds = float64(ticks) / clockTicks
	res.CPUPercent = 100 * res.CPUSeconds / elapsed.Seconds()
	if selfEnd, err := procCPU(os.Getpid()); err == nil {
		res.Process.CPUSeconds = float64((selfEnd.user+selfEnd.sys)-(selfBefore.user+selfBefore.sys)) / clockTicks
	}
	if m, err := procStatus(os.Getpid()); err == nil {
		res.Process.RSSMB = m.rss
	}

	stop()
	wg.Wait()
	res.Connected = load.connected.Load()
	res.Dropped = load.dropped.Load()
	res.DialErrors = load.dialErrors.Load()
	res.Booted = load.booted.Load()
	res.MeterSent, res.MeterAnswered, res.MeterErrored = load.meterSent.Load(), load.meterAnswered.Load(), load.meterErrored.Load()
	res.Latency = load.meterLat.summary()
	res.WindowLatency = load.windowLat.summary()
	res.BootLatency = load.bootLat.summary()
	res.FirstErrors = load.errorSample()
	res.ReadingsExpected = 5 * res.MeterAnswered

	res.CleanExit, res.ExitError = plat.stop(60 * time.Second)
	if n, err := countReadings(ctx, dataDir, start.Add(-time.Hour)); err != nil {
		res.ExitError = strings.TrimSpace(res.ExitError + " count readings: " + err.Error())
	} else {
		res.ReadingsByQuantity = n
		for _, v := range n {
			res.ReadingsStored += v
		}
	}
	res.Targets = []gwGoal{
		{Name: "charge points held", Target: ocppTargetChargers, Reached: float64(res.Held), Met: res.Held >= ocppTargetChargers},
		{Name: "MeterValues p99 handling ms (whole run)", Target: ocppTargetP99MS, Reached: res.Latency.P99, Met: res.Latency.Count > 0 && res.Latency.P99 < ocppTargetP99MS},
		{Name: "MeterValues p99 handling ms after the ramp-up", Target: ocppTargetP99MS, Reached: res.WindowLatency.P99, Met: res.WindowLatency.Count > 0 && res.WindowLatency.P99 < ocppTargetP99MS},
	}
	return res, nil
}

// ocppSiteFile is a site with n charging points evse-00001….
func ocppSiteFile(n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "site: {id: %s, name: OCPP benchmark, country: DE, timezone: Europe/Berlin}\nassets:\n", ocppBenchSite)
	for i := range n {
		fmt.Fprintf(&b, "  - {id: %s, type: charging_point, make: Bench, model: Light}\n", ocppChargerID(i))
	}
	return b.Bytes()
}

func ocppChargerID(i int) string { return fmt.Sprintf("evse-%05d", i+1) }

// ocppPassword is charger i's OCPP AuthorizationKey (16 to 40 characters).
func ocppPassword(i int) string { return fmt.Sprintf("bench-password-%05d", i+1) }

// registerChargePoints registers n charge point passwords through the
// admin API with a few concurrent clients.
func registerChargePoints(ctx context.Context, api, key string, n int) error {
	const workers = 8
	client := &http.Client{Timeout: 30 * time.Second}
	next := atomic.Int64{}
	errs := make(chan error, workers)
	for range workers {
		go func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					errs <- nil
					return
				}
				body, _ := json.Marshal(map[string]string{"id": ocppChargerID(i), "password": ocppPassword(i)})
				req, err := http.NewRequestWithContext(ctx, "POST", api+"/api/v1/sites/"+ocppBenchSite+"/chargepoints", bytes.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					errs <- fmt.Errorf("register charge point %s: %w", ocppChargerID(i), err)
					return
				}
				msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1000))
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("register charge point %s: %s: %s", ocppChargerID(i), resp.Status, msg)
					return
				}
			}
		}()
	}
	var first error
	for range workers {
		if err := <-errs; err != nil && first == nil {
			first = err
			next.Store(int64(n)) // stop the others
		}
	}
	return first
}

// countReadings counts the points of the benchmark site stored since from,
// opening the store once the platform has exited.
func countReadings(ctx context.Context, dataDir string, from time.Time) (map[string]int64, error) {
	st, err := sqlite.Open(ctx, dataDir, sqlite.Options{})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	n := map[string]int64{}
	err = st.Read(ctx, store.Selector{Site: ocppBenchSite, From: from.UnixMilli()}, func(se store.Series, pts []cim.Point) error {
		n[se.Quantity] += int64(len(pts))
		return nil
	})
	return n, err
}

// ocppLoad is the load generator: light charge points speaking raw OCPP-J.
type ocppLoad struct {
	url      string
	interval time.Duration

	connected, dropped, dialErrors, booted atomic.Int64
	meterSent, meterAnswered, meterErrored atomic.Int64
	meterLat, bootLat                      latHist
	windowLat                              latHist     // MeterValues written after the ramp-up
	tickLat                                latHist     // MeterValues answered since the last progress line
	inWindow                               atomic.Bool // the ramp-up is over

	mu     sync.Mutex
	errors []string
}

// fail notes an error; the first few are kept for the report.
func (l *ocppLoad) fail(id string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errors) < 5 {
		l.errors = append(l.errors, id+": "+err.Error())
	}
}

func (l *ocppLoad) errorSample() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errors...)
}

// ocppDialer keeps the chargers' buffers small: their frames are a few
// hundred bytes.
var ocppDialer = websocket.Dialer{
	HandshakeTimeout: ocppCallTimeout,
	Subprotocols:     []string{"ocpp1.6"},
	ReadBufferSize:   1024,
	WriteBufferSize:  1024,
}

// run is charger i: connect, boot, report status, then send MeterValues
// every interval (at a random phase) until ctx ends.
func (l *ocppLoad) run(ctx context.Context, i int) {
	id := ocppChargerID(i)
	h := http.Header{}
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(id+":"+ocppPassword(i))))
	conn, resp, err := ocppDialer.DialContext(ctx, l.url+id, h)
	if err != nil {
		if ctx.Err() == nil {
			l.dialErrors.Add(1)
			if resp != nil {
				err = fmt.Errorf("%w (%s)", err, resp.Status)
			}
			l.fail(id, fmt.Errorf("dial: %w", err))
		}
		return
	}
	l.connected.Add(1)
	cp := &ocppCharger{conn: conn, id: id}
	// Closing the connection when ctx ends unblocks a pending read.
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
		}
		conn.Close()
	}()
	bad := func(err error) {
		if ctx.Err() == nil {
			l.dropped.Add(1)
			l.fail(id, err)
		}
	}
	boot := `{"chargePointVendor":"Bench","chargePointModel":"Light","chargePointSerialNumber":"` + id + `","firmwareVersion":"1.0"}`
	d, err := cp.call("BootNotification", boot)
	if err != nil {
		bad(err)
		return
	}
	l.bootLat.add(d)
	d, err = cp.call("StatusNotification", `{"connectorId":1,"errorCode":"NoError","status":"Charging"}`)
	if err != nil {
		bad(err)
		return
	}
	l.bootLat.add(d)
	l.booted.Add(1)

	rng := rand.New(rand.NewPCG(uint64(i), 42))
	energy := 1000 + rng.Float64()*1e6 // Wh
	power := 3700 + rng.Float64()*7300 // W
	t := time.NewTimer(time.Duration(rng.Int64N(int64(l.interval))))
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		energy += power * now.Sub(last).Hours()
		last = now
		amps := power / 230 / 3
		ts := now.UTC().Format("2006-01-02T15:04:05.000Z")
		payload := fmt.Sprintf(`{"connectorId":1,"meterValue":[{"timestamp":"%s","sampledValue":[`+
			`{"value":"%.1f","context":"Sample.Periodic","measurand":"Energy.Active.Import.Register","unit":"Wh"},`+
			`{"value":"%.1f","context":"Sample.Periodic","measurand":"Power.Active.Import","unit":"W"},`+
			`{"value":"%.2f","context":"Sample.Periodic","measurand":"Current.Import","phase":"L1","unit":"A"},`+
			`{"value":"%.2f","context":"Sample.Periodic","measurand":"Current.Import","phase":"L2","unit":"A"},`+
			`{"value":"%.2f","context":"Sample.Periodic","measurand":"Current.Import","phase":"L3","unit":"A"}]}]}`,
			ts, energy, power, amps, amps*0.99, amps*1.01)
		l.meterSent.Add(1)
		steady := l.inWindow.Load()
		d, err := cp.call("MeterValues", payload)
		if err != nil {
			if ctx.Err() == nil {
				l.meterErrored.Add(1)
			}
			var ce *ocppCallError
			if errors.As(err, &ce) { // the connection is still fine
				l.fail(id, err)
			} else {
				bad(err)
				return
			}
		} else {
			l.meterAnswered.Add(1)
			l.meterLat.add(d)
			l.tickLat.add(d)
			if steady {
				l.windowLat.add(d)
			}
		}
		t.Reset(l.interval - time.Since(now)%l.interval)
	}
}

// ocppCharger is one charger's connection; its calls are sequential, as
// OCPP-J requires.
type ocppCharger struct {
	conn *websocket.Conn
	id   string
	seq  int
}

// ocppCallError is a CALLERROR answer.
type ocppCallError struct{ action, code, desc string }

func (e *ocppCallError) Error() string {
	return fmt.Sprintf("%s: CALLERROR %s %s", e.action, e.code, e.desc)
}

// call sends a CALL and waits for its answer, returning the time from the
// write to the answer. CALLs from the central system get a CALLERROR
// NotSupported: the light charger implements no commands.
func (c *ocppCharger) call(action, payload string) (time.Duration, error) {
	c.seq++
	uid := strconv.Itoa(c.seq)
	frame := `[2,"` + uid + `","` + action + `",` + payload + `]`
	start := time.Now()
	c.conn.SetWriteDeadline(start.Add(ocppCallTimeout))
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		return 0, fmt.Errorf("%s: write: %w", action, err)
	}
	c.conn.SetReadDeadline(start.Add(ocppCallTimeout))
	for {
		_, msg, err := c.conn.ReadMessage()
		if err != nil {
			return 0, fmt.Errorf("%s: read: %w", action, err)
		}
		var f []json.RawMessage
		if err := json.Unmarshal(msg, &f); err != nil || len(f) < 3 {
			return 0, fmt.Errorf("%s: bad frame %.100q", action, msg)
		}
		var typ int
		var got string
		json.Unmarshal(f[0], &typ)
		json.Unmarshal(f[1], &got)
		switch {
		case typ == 2:
			reply := `[4,` + string(f[1]) + `,"NotSupported","bench charger",{}]`
			if err := c.conn.WriteMessage(websocket.TextMessage, []byte(reply)); err != nil {
				return 0, fmt.Errorf("%s: answer a CALL: %w", action, err)
			}
		case got != uid:
			// An answer to an earlier, timed-out call: skip it.
		case typ == 3:
			return time.Since(start), nil
		case typ == 4 && len(f) >= 4:
			var code, desc string
			json.Unmarshal(f[2], &code)
			json.Unmarshal(f[3], &desc)
			return 0, &ocppCallError{action: action, code: code, desc: desc}
		default:
			return 0, fmt.Errorf("%s: unexpected frame %.100q", action, msg)
		}
	}
}

// latHist is a concurrent latency histogram in microseconds with 64 linear
// sub-buckets per power of two (about 1.6 % resolution), as HDR histograms.
type latHist struct {
	counts [64 * 40]atomic.Int64
	max    atomic.Int64
	n      atomic.Int64
}

func latBucket(us int64) int {
	if us < 64 {
		return int(max(us, 0))
	}
	e := bits.Len64(uint64(us)) - 6 // ≥ 1
	return e*64 + int(us>>(e-1)) - 64
}

// latValue is the upper bound of bucket b in microseconds.
func latValue(b int) int64 {
	if b < 64 {
		return int64(b)
	}
	e, sub := b/64, b%64
	return (int64(sub+64)+1)<<(e-1) - 1
}

func (h *latHist) add(d time.Duration) {
	us := d.Microseconds()
	b := min(latBucket(us), len(h.counts)-1)
	h.counts[b].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			break
		}
	}
}

// quantile is the q-quantile in milliseconds (0 when empty).
func (h *latHist) quantile(q float64) float64 {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(n)))
	var seen int64
	for b := range h.counts {
		seen += h.counts[b].Load()
		if seen >= rank {
			return math.Min(float64(latValue(b)), float64(h.max.Load())) / 1000
		}
	}
	return float64(h.max.Load()) / 1000
}

// reset empties the histogram; values added meanwhile may be lost, which
// only the progress lines use it for.
func (h *latHist) reset() {
	for b := range h.counts {
		h.counts[b].Store(0)
	}
	h.max.Store(0)
	h.n.Store(0)
}

func (h *latHist) summary() ocppLatency {
	return ocppLatency{Count: h.n.Load(), P50: h.quantile(0.5), P90: h.quantile(0.9), P99: h.quantile(0.99), Max: float64(h.max.Load()) / 1000}
}

// childPlatform is the `gridlink serve` process being measured.
type childPlatform struct {
	*child
	api, ocpp string
}

var (
	ocppServingLine = regexp.MustCompile(`serving on (https?://\S+)`)
	ocppCSLine      = regexp.MustCompile(`ocpp central system on wss?://(\S+)/ocpp/`)
)

// startChildPlatform runs exe (empty: this executable) as `serve` with the
// OCPP central system, both on free loopback ports, and waits until it
// prints both addresses.
func startChildPlatform(exe, dataDir, siteDir, logPath string) (*childPlatform, error) {
	args := []string{"serve", "--data", dataDir, "--sites", siteDir,
		"--listen", "127.0.0.1:0", "--ocpp-listen", "127.0.0.1:0", "--log-level", "warn"}
	c, got, err := startChild("platform", exe, args, nil, logPath, 120*time.Second, ocppServingLine, ocppCSLine)
	if err != nil {
		return nil, err
	}
	return &childPlatform{child: c, api: got[0], ocpp: got[1]}, nil
}

func printOCPPBench(w io.Writer, r ocppBenchResult) {
	fmt.Fprintf(w, "OCPP charge points on one platform node (%s, %d CPUs, %.0f GB, %s)\n", r.Machine.CPUModel, r.Machine.CPUs, r.Machine.MemoryGB, r.Machine.Go)
	fmt.Fprintf(w, "  chargers %d, MeterValues every %s, ramp %d/s (%.1f s), measured %.0f s after the ramp; open-files limit %d\n",
		r.Chargers, r.Interval, r.RampPerSecond, r.RampSeconds, r.WindowSeconds, r.OpenFilesLimit)
	if r.LimitNote != "" {
		fmt.Fprintf(w, "  LIMIT: %s\n", r.LimitNote)
	}
	fmt.Fprintf(w, "  connected %d, booted %d, held to the end %d, dropped %d, dial errors %d\n", r.Connected, r.Booted, r.Held, r.Dropped, r.DialErrors)
	fmt.Fprintf(w, "  MeterValues sent %d, answered %d, errored %d; %.0f/s in the window\n", r.MeterSent, r.MeterAnswered, r.MeterErrored, r.MeterPerSecond)
	fmt.Fprintf(w, "  MeterValues handling time: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms (%d calls)\n", r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max, r.Latency.Count)
	fmt.Fprintf(w, "  the same after the ramp-up only: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms (%d calls)\n", r.WindowLatency.P50, r.WindowLatency.P90, r.WindowLatency.P99, r.WindowLatency.Max, r.WindowLatency.Count)
	fmt.Fprintf(w, "  Boot/Status handling time: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", r.BootLatency.P50, r.BootLatency.P99, r.BootLatency.Max)
	fmt.Fprintf(w, "  platform RSS %.1f MB before, %.1f MB at the end (peak %.1f MB) → %.1f KB per connection; %d threads\n", r.RSSBeforeMB, r.RSSEndMB, r.HWMMB, r.KBPerConnection, r.Threads)
	fmt.Fprintf(w, "  platform CPU %.1f s = %.0f %% of one core; load generator CPU %.1f s, RSS %.0f MB (same machine)\n", r.CPUSeconds, r.CPUPercent, r.Process.CPUSeconds, r.Process.RSSMB)
	fmt.Fprintf(w, "  readings stored %d (5 per answered MeterValues: %d expected, + StatusNotification states): %v\n", r.ReadingsStored, r.ReadingsExpected, r.ReadingsByQuantity)
	for _, e := range r.FirstErrors {
		fmt.Fprintf(w, "  error: %s\n", e)
	}
	if !r.CleanExit {
		fmt.Fprintf(w, "  platform exit: %s\n", r.ExitError)
	}
	for _, g := range r.Targets {
		mark := "NOT met"
		if g.Met {
			mark = "met"
		}
		fmt.Fprintf(w, "  target %s: %.0f, reached %.2f: %s\n", g.Name, g.Target, g.Reached, mark)
	}
}
