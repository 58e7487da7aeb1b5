//go:build !edge

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/schollz/progressbar/v3"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/internal/loadgen"
	"github.com/gridlink/gridlink/platform"
	"github.com/gridlink/gridlink/platform/auth"
	"github.com/gridlink/gridlink/store"
)

// benchConfig says what `gridlink bench ingest` measures.
type benchConfig struct {
	series     int           // series written (assets × 2 quantities)
	seconds    int           // seconds of 1 s data sent through the batch path, SQLite
	pgSeconds  int           // the same for PostgreSQL
	pgURL      string        // PostgreSQL server; empty skips it
	clients    int           // concurrent clients of the single-reading test
	duration   time.Duration // length of each request test
	dir        string        // where the SQLite store goes; empty = a temporary directory
	jsonOut    bool
	noProgress bool
	noFsync    bool   // SQLite without fsync at commit
	cpuProfile string // file for a CPU profile of the whole run
}

// benchResult is what one store measured.
type benchResult struct {
	Store               string  `json:"store"`
	BatchReadings       int64   `json:"batch_readings"`
	BatchPerSecond      float64 `json:"batch_readings_per_second"`
	SingleRequestsPerS  float64 `json:"single_reading_requests_per_second"`
	Clients             int     `json:"single_reading_clients"`
	KiloRequestsReadPS  float64 `json:"readings_per_second_in_requests_of_1000"`
	BytesPerReading     float64 `json:"bytes_on_disk_per_reading"`
	AggregateStoreMS    float64 `json:"one_day_15min_aggregate_ms_store"`
	AggregateHTTPMS     float64 `json:"one_day_15min_aggregate_ms_http"`
	AggregateAllSeriesS float64 `json:"one_day_15min_aggregate_all_series_s"`
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "gateway" {
		return runBenchGateway(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "ocpp" {
		return runBenchOCPP(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "ingest" {
		fmt.Fprintln(stderr, "usage: gridlink bench ingest|gateway|ocpp [flags]")
		return errUsage
	}
	var c benchConfig
	fs := flag.NewFlagSet("bench ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.series, "series", 1000, "number of `series` (1 s data each)")
	fs.IntVar(&c.seconds, "seconds", 86400, "`seconds` of data per series sent through the batch path into SQLite")
	fs.IntVar(&c.pgSeconds, "pg-seconds", 3600, "`seconds` of data per series sent into PostgreSQL")
	fs.StringVar(&c.pgURL, "postgres", os.Getenv("GRIDLINK_TEST_POSTGRES"), "PostgreSQL server `url` to measure too (a fresh database is made on it); empty skips")
	fs.IntVar(&c.clients, "clients", 64, "concurrent `clients` sending one reading per request")
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "length of each request test")
	fs.StringVar(&c.dir, "dir", "", "`directory` for the SQLite store (default: a temporary one, removed after)")
	fs.BoolVar(&c.jsonOut, "json", false, "print the results as JSON")
	fs.BoolVar(&c.noProgress, "quiet", false, "no progress bars")
	fs.BoolVar(&c.noFsync, "no-fsync", false, "run SQLite without fsync at commit (survives process crashes, not power cuts)")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile to `file`")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if c.series < 2 || c.seconds < 900 || c.pgSeconds < 900 || c.clients < 1 {
		return errors.New("need at least 2 series, 900 seconds of data and 1 client")
	}
	host, _ := os.Hostname()
	fmt.Fprintf(stderr, "bench ingest on %s: %s/%s, %d CPUs, %s; %d series at 1 s\n",
		host, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), c.series)

	var results []benchResult
	dir := c.dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "gridlink-bench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	r, err := benchStore(ctx, c, storeOptions{data: dir, noFsync: c.noFsync}, c.seconds, stderr)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	results = append(results, r)
	if c.pgURL != "" {
		url, drop, err := freshDatabase(ctx, c.pgURL)
		if err != nil {
			return err
		}
		defer drop()
		r, err := benchStore(ctx, c, storeOptions{data: filepath.Join(dir, "pg"), url: url}, c.pgSeconds, stderr)
		if err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		results = append(results, r)
	}
	if c.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	fmt.Fprintln(stdout, "| store | batch readings/s | single-reading requests/s | readings/s in requests of 1,000 | bytes/reading | one-day 15-min aggregate, one series (store / HTTP) | same, every series |")
	fmt.Fprintln(stdout, "|---|---|---|---|---|---|---|")
	for _, r := range results {
		fmt.Fprintf(stdout, "| %s | %.0f (%d readings) | %.0f (%d clients) | %.0f | %.2f | %.2f ms / %.2f ms | %.2f s |\n",
			r.Store, r.BatchPerSecond, r.BatchReadings, r.SingleRequestsPerS, r.Clients, r.KiloRequestsReadPS,
			r.BytesPerReading, r.AggregateStoreMS, r.AggregateHTTPMS, r.AggregateAllSeriesS)
	}
	return nil
}

// freshDatabase makes a new database on the server and returns its URL and
// a function that drops it.
func freshDatabase(ctx context.Context, base string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, fmt.Errorf("postgres: %w", err)
	}
	name := fmt.Sprintf("gridlink_bench_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		conn.Close(ctx)
		return "", nil, fmt.Errorf("postgres: create database: %w", err)
	}
	conn.Close(ctx)
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		return "", nil, err
	}
	url := fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Password, cfg.Host, cfg.Port, name)
	drop := func() {
		c, err := pgx.Connect(context.Background(), base)
		if err == nil {
			c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(context.Background())
		}
	}
	return url, drop, nil
}

// benchEnv is a platform served on loopback with one site of assets.
type benchEnv struct {
	url    string
	key    string
	store  store.Store
	client *http.Client
	start  int64 // first timestamp of the data, ms (a UTC midnight)
}

func benchStore(ctx context.Context, c benchConfig, so storeOptions, seconds int, log io.Writer) (benchResult, error) {
	so.logger = slog.New(slog.DiscardHandler)
	st, where, err := openStore(ctx, so)
	if err != nil {
		return benchResult{}, err
	}
	closed := false
	defer func() {
		if !closed {
			st.Close()
		}
	}()
	if so.noFsync && so.url == "" {
		where += " (no fsync)"
	}
	res := benchResult{Store: where, Clients: c.clients}
	api, err := platform.New(platform.Config{Store: st, Catalogue: cim.Default()})
	if err != nil {
		return res, err
	}
	defer api.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	srv := &http.Server{Handler: api}
	go srv.Serve(ln)
	defer srv.Close()
	secret, key := auth.NewKey("", string(auth.ScopeAdmin), "bench", time.Now())
	if err := st.CreateKey(ctx, key); err != nil {
		return res, err
	}
	if err := st.PutSite(ctx, cim.Site{ID: "bench", Name: "Bench"}); err != nil {
		return res, err
	}
	for a := 0; a < (c.series+1)/2; a++ {
		if err := st.PutAsset(ctx, cim.Asset{Site: "bench", ID: benchAsset(a), Type: cim.SmartMeter}); err != nil {
			return res, err
		}
	}
	tr := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512}
	defer tr.CloseIdleConnections()
	// Data starts at a UTC midnight two days back, so that none of it lies
	// in the future and the first day is whole.
	day := int64(24 * time.Hour / time.Millisecond)
	start := (time.Now().UnixMilli()/day - 2) * day
	if seconds > 86400 {
		start -= int64(seconds/86400) * day
	}
	env := &benchEnv{url: "http://" + ln.Addr().String(), key: secret, store: st, client: &http.Client{Transport: tr}, start: start}

	fmt.Fprintf(log, "[%s] batch path: %d series × %d s = %d readings\n", where, c.series, seconds, int64(c.series)*int64(seconds))
	n, elapsed, err := env.batches(ctx, c.series, seconds, !c.noProgress, log)
	if err != nil {
		return res, err
	}
	res.BatchReadings, res.BatchPerSecond = n, float64(n)/elapsed.Seconds()

	fmt.Fprintf(log, "[%s] one-day 15-minute aggregates\n", where)
	if res.AggregateStoreMS, res.AggregateHTTPMS, res.AggregateAllSeriesS, err = env.aggregates(ctx, min(96, (seconds+899)/900)); err != nil {
		return res, err
	}

	fmt.Fprintf(log, "[%s] %d clients, one reading per request, %s\n", where, c.clients, c.duration)
	// Request tests write after the batch data, to new timestamps.
	after := start + int64(seconds)*1000
	reqs, err := env.requests(ctx, c.clients, 1, c.duration, after, c.series)
	if err != nil {
		return res, err
	}
	res.SingleRequestsPerS = reqs
	fmt.Fprintf(log, "[%s] 8 clients, 1,000 readings per request, %s\n", where, c.duration)
	reqs, err = env.requests(ctx, 8, 1000, c.duration, after+int64(24*time.Hour/time.Millisecond), c.series)
	if err != nil {
		return res, err
	}
	res.KiloRequestsReadPS = reqs * 1000

	srv.Close()
	api.Close()
	closed = true
	if err := st.Close(); err != nil {
		return res, err
	}
	size, err := storeBytes(ctx, so)
	if err != nil {
		return res, err
	}
	total, err := env.countStored(ctx, so)
	if err != nil {
		return res, err
	}
	res.BytesPerReading = float64(size) / float64(total)
	return res, nil
}

func benchAsset(a int) string { return fmt.Sprintf("house-%04d/meter", a) }

// seriesKind says what series k carries: a household load, a PV inverter's
// output, or an import energy counter.
func seriesKind(k int) (asset, quantity string) {
	asset = benchAsset(k / 2)
	switch {
	case k%2 == 1:
		return asset, "energy_active_import"
	case k%10 == 4:
		return asset, "pv_power"
	}
	return asset, "active_power"
}

// generator makes realistic 1 s readings: smooth load and PV curves with
// noise at 1 W resolution, and energy counters at 1 Wh that only grow.
type generator struct {
	series int
	rng    *rand.Rand
	energy []float64
	phase  []float64
}

func newGenerator(series int) *generator {
	g := &generator{series: series, rng: rand.New(rand.NewPCG(7, 11)), energy: make([]float64, series), phase: make([]float64, series)}
	for k := range g.phase {
		g.phase[k] = g.rng.Float64() * 2 * math.Pi
		g.energy[k] = math.Round(1e6 + g.rng.Float64()*5e6)
	}
	return g
}

// value is series k's value at second sec of the day.
func (g *generator) value(k int, sec int64) float64 {
	_, q := seriesKind(k)
	hour := float64(sec%86400) / 3600
	switch q {
	case "energy_active_import":
		load := 300 + 1200*math.Max(0, math.Sin((hour-6)/24*2*math.Pi+g.phase[k]))
		g.energy[k] += math.Round(load/3600*10+g.rng.Float64()) / 10
		return math.Round(g.energy[k])
	case "pv_power":
		sun := math.Sin((hour - 6) / 12 * math.Pi)
		if sun <= 0 {
			return 0
		}
		return math.Max(0, math.Round(4000*sun+g.rng.NormFloat64()*30))
	}
	base := 400 + 300*math.Sin(hour/24*2*math.Pi+g.phase[k]) + 200*math.Sin(hour/24*6*math.Pi)
	return math.Max(0, math.Round(base+g.rng.NormFloat64()*15))
}

// csv appends the CSV rows of seconds [from, to) of every series.
func (g *generator) csv(dst []byte, start int64, from, to int64) []byte {
	for sec := from; sec < to; sec++ {
		ts := start + sec*1000
		for k := 0; k < g.series; k++ {
			a, q := seriesKind(k)
			dst = append(dst, a...)
			dst = append(dst, ',')
			dst = append(dst, q...)
			dst = append(dst, ',')
			dst = strconv.AppendInt(dst, ts, 10)
			dst = append(dst, ',')
			dst = strconv.AppendFloat(dst, g.value(k, sec), 'f', -1, 64)
			dst = append(dst, '\n')
		}
	}
	return dst
}

// batches sends the data an hour at a time through POST /api/v1/batches and
// returns the readings stored and the time spent uploading (generation not
// counted).
func (e *benchEnv) batches(ctx context.Context, series, seconds int, progress bool, log io.Writer) (int64, time.Duration, error) {
	g := newGenerator(series)
	var bar *progressbar.ProgressBar
	total := int64(series) * int64(seconds)
	if progress {
		bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(log), progressbar.OptionSetDescription("readings"),
			progressbar.OptionShowCount(), progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	var body []byte
	var elapsed time.Duration
	var stored int64
	for from := int64(0); from < int64(seconds); from += 3600 {
		to := min(from+3600, int64(seconds))
		body = g.csv(body[:0], e.start, from, to)
		t0 := time.Now()
		req, _ := http.NewRequestWithContext(ctx, "POST", e.url+"/api/v1/batches?site=bench", bytes.NewReader(body))
		req.Header.Set("Content-Type", "text/csv")
		req.Header.Set("Authorization", "Bearer "+e.key)
		resp, err := e.client.Do(req)
		if err != nil {
			return stored, elapsed, err
		}
		var rep struct{ Accepted, Rejected int64 }
		err = json.NewDecoder(resp.Body).Decode(&rep)
		resp.Body.Close()
		elapsed += time.Since(t0)
		if err != nil || resp.StatusCode != 200 || rep.Rejected > 0 {
			return stored, elapsed, fmt.Errorf("batch at second %d: status %d, %d rejected, %v", from, resp.StatusCode, rep.Rejected, err)
		}
		stored += rep.Accepted
		if bar != nil {
			bar.Add64(int64(series) * (to - from))
		}
	}
	if bar != nil {
		bar.Finish()
	}
	return stored, elapsed, nil
}

// requests runs clients, each on its own keep-alive connection, that post
// requests of n new readings for d, and returns requests per second. The
// lean client (internal/loadgen) leaves the cores to the server.
func (e *benchEnv) requests(ctx context.Context, clients, n int, d time.Duration, after int64, series int) (float64, error) {
	var done atomic.Int64
	var firstErr error
	var once sync.Once
	fail := func(err error) { once.Do(func() { firstErr = err }) }
	addr := strings.TrimPrefix(e.url, "http://")
	headers := []string{"Content-Type: application/json", "Authorization: Bearer " + e.key}
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := loadgen.Dial(addr)
			if err != nil {
				fail(err)
				return
			}
			defer conn.Close()
			asset, q := seriesKind(2 * (c % (series / 2)))
			ts := after // each client writes its own series
			var body []byte
			for i := 0; time.Now().Before(stop) && ctx.Err() == nil; i++ {
				body = append(body[:0], `{"readings":[`...)
				for j := 0; j < n; j++ {
					if j > 0 {
						body = append(body, ',')
					}
					body = append(body, `{"asset":"`...)
					body = append(body, asset...)
					body = append(body, `","quantity":"`...)
					body = append(body, q...)
					body = append(body, `","time":`...)
					ts++
					body = strconv.AppendInt(body, ts, 10)
					body = append(body, `,"value":`...)
					body = strconv.AppendInt(body, int64(1000+i%500), 10)
					body = append(body, '}')
				}
				body = append(body, "]}"...)
				status, reply, err := conn.Post("/api/v1/readings?site=bench", headers, body)
				if err == nil && (status != 200 || !bytes.Contains(reply, []byte(`"rejected":0`))) {
					err = fmt.Errorf("status %d: %.200s", status, reply)
				}
				if err != nil {
					fail(err)
					return
				}
				done.Add(1)
			}
		}()
	}
	t0 := time.Now()
	wg.Wait()
	return float64(done.Load()) / time.Since(t0).Seconds(), firstErr
}

// aggregates times the one-day 15-minute average of one series (median of
// 50, through the store and through HTTP) and of every series at once.
func (e *benchEnv) aggregates(ctx context.Context, intervals int) (storeMS, httpMS, allS float64, err error) {
	day := int64(24 * time.Hour / time.Millisecond)
	sel := store.Selector{Site: "bench", Asset: benchAsset(0), Quantity: "active_power", From: e.start, To: e.start + day}
	var storeTimes, httpTimes []time.Duration
	for i := 0; i < 50; i++ {
		t0 := time.Now()
		n := 0
		err := e.store.Aggregate(ctx, sel, 15*time.Minute, store.AggAvg, func(_ store.Series, pts []cim.Point) error {
			n += len(pts)
			return nil
		})
		storeTimes = append(storeTimes, time.Since(t0))
		if err != nil {
			return 0, 0, 0, err
		}
		if n != intervals {
			return 0, 0, 0, fmt.Errorf("one-day 15-minute aggregate gave %d intervals, want %d", n, intervals)
		}
		t0 = time.Now()
		url := fmt.Sprintf("%s/api/v1/readings?site=bench&asset=%s&quantity=active_power&from=%d&to=%d&step=15m&agg=avg", e.url, benchAsset(0), sel.From, sel.To)
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+e.key)
		resp, err := e.client.Do(req)
		if err != nil {
			return 0, 0, 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		httpTimes = append(httpTimes, time.Since(t0))
	}
	t0 := time.Now()
	all := store.Selector{Site: "bench", From: e.start, To: e.start + day}
	if err := e.store.Aggregate(ctx, all, 15*time.Minute, store.AggAvg, func(store.Series, []cim.Point) error { return nil }); err != nil {
		return 0, 0, 0, err
	}
	allS = time.Since(t0).Seconds()
	return ms(median(storeTimes)), ms(median(httpTimes)), allS, nil
}

func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// storeBytes is the store's size on disk after Close.
func storeBytes(ctx context.Context, so storeOptions) (int64, error) {
	if so.url != "" {
		conn, err := pgx.Connect(ctx, so.url)
		if err != nil {
			return 0, err
		}
		defer conn.Close(ctx)
		var n int64
		err = conn.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&n)
		return n, err
	}
	var total int64
	for _, suffix := range []string{"", "-wal"} {
		if fi, err := os.Stat(filepath.Join(so.data, "gridlink.db"+suffix)); err == nil {
			total += fi.Size()
		}
	}
	return total, nil
}

// countStored counts the readings in the store by reading them all back.
func (e *benchEnv) countStored(ctx context.Context, so storeOptions) (int64, error) {
	st, _, err := openStore(ctx, so)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	var n int64
	err = st.Read(ctx, store.Selector{Site: "bench"}, func(_ store.Series, pts []cim.Point) error {
		n += int64(len(pts))
		return nil
	})
	return n, err
}
