package uplink

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/platform"
	"github.com/gridlink/gridlink/platform/auth"
	"github.com/gridlink/gridlink/queue"
	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/sqlite"
)

const testSite = "bristol"

// testAssets are the assets of the test site.
var testAssets = []string{"house-01/meter", "house-02/meter", "house-03/battery", "house-04/pv"}

// baseTime is a recent instant, so that the platform takes the readings.
var baseTime = time.Now().Add(-48 * time.Hour).Truncate(time.Hour).UnixMilli()

// readings makes n readings numbered from start; number k has time
// baseTime + 10k ms and value k/4, so that order and content can be checked.
func readings(start, n int) []cim.Reading {
	out := make([]cim.Reading, n)
	phases := []cim.Phase{cim.PhaseTotal, cim.PhaseL1, cim.PhaseL2, cim.PhaseL3}
	for i := range out {
		k := start + i
		out[i] = cim.Reading{
			SeriesKey: cim.SeriesKey{Asset: testAssets[k%len(testAssets)], Quantity: "active_power", Phase: phases[k/len(testAssets)%4]},
			Point:     cim.Point{Time: baseTime + int64(k)*10, Value: float64(k) / 4},
		}
	}
	return out
}

// number returns the number readings() gave a reading's time.
func number(t int64) int { return int((t - baseTime) / 10) }

// env is a real platform with an SQLite store behind an HTTP server.
type env struct {
	st  store.Store
	srv *platform.Server
	ts  *httptest.Server
	key string // ingest key of testSite
}

func newEnv(t testing.TB, tlsServer bool) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{NoSync: true})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.PutSite(ctx, cim.Site{ID: testSite, Name: "Bristol"}); err != nil {
		t.Fatal(err)
	}
	for _, a := range testAssets {
		if err := st.PutAsset(ctx, cim.Asset{Site: testSite, ID: a, Type: cim.SmartMeter}); err != nil {
			t.Fatal(err)
		}
	}
	secret, k := auth.NewKey(testSite, string(auth.ScopeIngest), "gateway", time.Now())
	if err := st.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	srv, err := platform.New(platform.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{st: st, srv: srv, key: secret}
	if tlsServer {
		e.ts = httptest.NewTLSServer(srv)
	} else {
		e.ts = httptest.NewServer(srv)
	}
	t.Cleanup(func() { srv.Close(); e.ts.Close() })
	return e
}

// stored returns every stored point of the site by number, failing on a
// value that is not the one sent.
func (e *env) stored(t testing.TB) map[int]bool {
	t.Helper()
	got := make(map[int]bool)
	err := e.st.Read(context.Background(), store.Selector{Site: testSite}, func(s store.Series, ps []cim.Point) error {
		for _, p := range ps {
			k := number(p.Time)
			want := readings(k, 1)[0]
			if s.SeriesKey != want.SeriesKey || p.Value != want.Value {
				return fmt.Errorf("stored %+v %+v, want %+v", s, p, want)
			}
			if got[k] {
				return fmt.Errorf("reading %d stored twice", k)
			}
			got[k] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// checkStored fails unless exactly the readings numbered [from, to) are
// stored.
func (e *env) checkStored(t testing.TB, from, to int) {
	t.Helper()
	got := e.stored(t)
	if len(got) != to-from {
		t.Fatalf("stored %d readings, want %d", len(got), to-from)
	}
	for k := from; k < to; k++ {
		if !got[k] {
			t.Fatalf("reading %d missing", k)
		}
	}
}

func openQueue(t testing.TB) *queue.Queue {
	t.Helper()
	q, err := queue.Open(t.TempDir(), queue.Options{Sync: queue.SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func appendN(t testing.TB, q *queue.Queue, start, n, batch int) {
	t.Helper()
	for i := start; i < start+n; i += batch {
		if err := q.Append(readings(i, min(batch, start+n-i))); err != nil {
			t.Fatal(err)
		}
	}
}

// fastConfig is a configuration with short waits, for tests.
func fastConfig(url, key string) Config {
	return Config{URL: url, Site: testSite, Key: key, MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, Timeout: 30 * time.Second}
}

// run starts u.Run and returns a function that stops it and waits.
func run(t testing.TB, u *Uplink) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// eventually polls cond until it holds; the deadline is only a hang guard.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// Proxy modes.
const (
	modeForward   = iota // pass requests on
	modeRefuse           // close the connection without a reply
	mode503              // answer 503 without Retry-After
	mode429              // answer 429 with Retry-After: 1 during one second, then forward
	modeDropReply        // pass the request on, then close without passing the reply back
)

// proxy stands between the uplink and the platform and can fail in the
// ways a network and a loaded platform do. It records the reading numbers
// of the bodies it passed on, in order.
type proxy struct {
	t        testing.TB
	target   string
	ts       *httptest.Server
	mode     atomic.Int32
	requests atomic.Int64 // every request
	failed   atomic.Int64 // requests not passed on
	dropN    atomic.Int64 // in modeDropReply, how many replies to drop before forwarding normally

	// gate, if set, holds requests after the 429 window until closed.
	gate chan struct{}

	mu       sync.Mutex
	until    time.Time // end of the 429 window
	in429    int       // requests answered 429
	forwards [][]int   // reading numbers of each forwarded body
}

func newProxy(t testing.TB, target string) *proxy {
	p := &proxy{t: t, target: target}
	p.ts = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.ts.Close)
	return p
}

func (p *proxy) serve(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	switch p.mode.Load() {
	case modeRefuse:
		p.failed.Add(1)
		hangUp(w)
		return
	case mode503:
		p.failed.Add(1)
		http.Error(w, `{"error":"maintenance","code":"unavailable"}`, http.StatusServiceUnavailable)
		return
	case mode429:
		p.mu.Lock()
		now := time.Now()
		if p.until.IsZero() {
			p.until = now.Add(time.Second)
		}
		if now.Before(p.until) {
			p.in429++
			p.mu.Unlock()
			p.failed.Add(1)
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		p.mu.Unlock()
		if p.gate != nil {
			<-p.gate
		}
	}
	status, header, reply := p.forward(r, body)
	if p.mode.Load() == modeDropReply && p.dropN.Add(-1) >= 0 {
		hangUp(w)
		return
	}
	for k, v := range header {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	w.Write(reply)
}

// forward sends the request on to the platform and records its readings.
func (p *proxy) forward(r *http.Request, body []byte) (int, http.Header, []byte) {
	req, err := http.NewRequest(r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		p.t.Errorf("proxy: %v", err)
		return 500, nil, nil
	}
	req.Header = r.Header.Clone()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Errorf("proxy: %v", err)
		return 502, nil, nil
	}
	defer res.Body.Close()
	reply, _ := io.ReadAll(res.Body)
	if res.StatusCode == http.StatusOK {
		nums := decodeBody(p.t, body)
		p.mu.Lock()
		p.forwards = append(p.forwards, nums)
		p.mu.Unlock()
	}
	return res.StatusCode, res.Header, reply
}

// forwarded returns the reading numbers of the bodies passed on so far.
func (p *proxy) forwarded() [][]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]int(nil), p.forwards...)
}

// hangUp closes the client's connection without a reply.
func hangUp(w http.ResponseWriter) {
	c, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		c.Close()
	}
}

// decodeBody returns the reading numbers of a gzip-compressed NDJSON body.
func decodeBody(t testing.TB, body []byte) []int {
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Errorf("body not gzip: %v", err)
		return nil
	}
	var nums []int
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		var line struct {
			Time int64 `json:"time"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Errorf("line %q: %v", sc.Text(), err)
			continue
		}
		nums = append(nums, number(line.Time))
	}
	return nums
}

// gunzip decompresses a body.
func gunzip(t testing.TB, body []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("body not gzip: %v", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("body not gzip: %v", err)
	}
	return raw
}
