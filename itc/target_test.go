package itc

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/sim"
)

// FuzzReadSSE: any bytes from a live feed parse without a panic, and
// every event delivered has a non-empty type.
func FuzzReadSSE(f *testing.F) {
	f.Add(": gridlink live feed of site bristol\nretry: 3000\n\nevent: reading\ndata: {\"asset\":\"a\",\"quantity\":\"active_power\",\"phase\":\"total\",\"time\":1,\"value\":2}\n\n")
	f.Add("data: a\ndata: b\n\nevent: heartbeat\ndata: {\"time\":1}\n\n")
	f.Add("event\n\ndata\n\n:\n")
	f.Fuzz(func(t *testing.T, s string) {
		_ = readSSE(strings.NewReader(s), func(event, data string) {
			if event == "" {
				t.Fatalf("event with no type, data %q", data)
			}
		})
	})
}

// TestReadSSE parses the platform's event format.
func TestReadSSE(t *testing.T) {
	var got []string
	err := readSSE(strings.NewReader(": c\nretry: 3000\n\nevent: reading\ndata: {\"x\":1}\n\ndata: a\ndata: b\n\n"), func(e, d string) {
		got = append(got, e+"="+d)
	})
	if err != nil || len(got) != 2 || got[0] != `reading={"x":1}` || got[1] != "message=a\nb" {
		t.Errorf("%v %q", err, got)
	}
}

// FuzzSplitTruth: a truth entry splits into a site and the rest, and a
// plain URL keeps whole.
func FuzzSplitTruth(f *testing.F) {
	f.Add("bristol=http://127.0.0.1:9100")
	f.Add("http://h/truth?a=b")
	f.Fuzz(func(t *testing.T, s string) {
		site, base := SplitTruth(s)
		if site == "" && base != s || site != "" && site+"="+base != s {
			t.Fatalf("SplitTruth(%q) = %q, %q", s, site, base)
		}
	})
}

func TestSplitTruth(t *testing.T) {
	for in, want := range map[string][2]string{
		"bristol=http://x:1":  {"bristol", "http://x:1"},
		"http://x:1/?a=b":     {"", "http://x:1/?a=b"},
		"http://x:1":          {"", "http://x:1"},
		"=http://x:1":         {"", "=http://x:1"},
		"athens=http://x/?q=": {"athens", "http://x/?q="},
	} {
		if s, b := SplitTruth(in); s != want[0] || b != want[1] {
			t.Errorf("SplitTruth(%q) = %q, %q; want %q", in, s, b, want)
		}
	}
}

// TestPercentile checks nearest-rank percentiles.
func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i))
	}
	if p := percentile(ds, 50); p != 50 {
		t.Errorf("p50 %v", p)
	}
	if p := percentile(ds, 99); p != 99 {
		t.Errorf("p99 %v", p)
	}
	if p := percentile(ds[:1], 99); p != 1 {
		t.Errorf("p99 of one %v", p)
	}
}

// BenchmarkMeasure times the comparison of one asset's window: 20 cycles
// of 13 series read twice a cycle.
func BenchmarkMeasure(b *testing.B) {
	truth, got, arr := benchWindow(20, 13)
	cat := testCat()
	from, to := truth[0].Start, truth[len(truth)-1].End
	b.ResetTimer()
	for b.Loop() {
		measure("house-01/meter", from, to, truth, got, arr, cat)
	}
}

func testCat() *cim.Catalogue { return cim.Default() }

// benchWindow makes a window of cycles, readings twice a cycle and their
// arrivals.
func benchWindow(cycles, series int) ([]sim.CycleRecord, []cim.Reading, []arrival) {
	quantities := []string{"voltage", "current", "active_power"}
	phases := []cim.Phase{cim.PhaseL1, cim.PhaseL2, cim.PhaseL3, cim.PhaseTotal, cim.PhaseN}
	start := time.Now().Truncate(time.Second)
	var truth []sim.CycleRecord
	var got []cim.Reading
	var arr []arrival
	for c := range cycles {
		t0 := start.Add(time.Duration(c) * time.Second)
		rec := sim.CycleRecord{Asset: "house-01/meter", Cycle: int64(c), Start: t0, End: t0.Add(time.Second)}
		for s := range series {
			q, p := quantities[s%len(quantities)], phases[s/len(quantities)%len(phases)]
			v := float64(c*100 + s)
			rec.Values = append(rec.Values, sim.HeldValue{Quantity: q, Phase: p, Value: v})
			for _, off := range []time.Duration{100 * time.Millisecond, 600 * time.Millisecond} {
				rd := cim.Reading{SeriesKey: cim.SeriesKey{Asset: "house-01/meter", Quantity: q, Phase: p}, Point: cim.Point{Time: t0.Add(off).UnixMilli(), Value: v}}
				got = append(got, rd)
				arr = append(arr, arrival{series: rd.SeriesKey, time: rd.Time, at: t0.Add(off + 300*time.Millisecond)})
			}
		}
		truth = append(truth, rec)
	}
	return truth, got, arr
}

// TestClientRetriesQueries: a query the platform answers with 503 (as a
// proxy does while the platform is away) is retried until it answers; a
// refusal (401) is not retried, nor is the /readyz probe; a query that
// keeps failing ends, after retryFor, with the platform's last answer.
func TestClientRetriesQueries(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls[r.URL.Path]++
		n := calls[r.URL.Path]
		mu.Unlock()
		switch {
		case r.URL.Path == "/api/v1/sites" && n > 2:
			w.Write([]byte(`{"sites":[{"id":"bristol"}]}`))
		case r.URL.Path == "/api/v1/sites/bristol/assets":
			http.Error(w, `{"error":"bad key"}`, http.StatusUnauthorized)
		case r.URL.Path == "/api/v1/readings":
			http.Error(w, "bad gateway", http.StatusBadGateway)
		default:
			http.Error(w, "restarting", http.StatusServiceUnavailable)
		}
	}))
	defer ts.Close()
	cl, err := newClient(Target{Platform: ts.URL, Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if sites, err := cl.sites(ctx); err != nil || len(sites) != 1 || sites[0].ID != "bristol" {
		t.Errorf("sites after two 503: %v, %v", sites, err)
	}
	if err := cl.ready(ctx); err == nil {
		t.Error("ready: a 503 is not ready")
	}
	if _, err := cl.assets(ctx, "bristol"); err == nil || !strings.Contains(err.Error(), "401 bad key") {
		t.Errorf("assets: %v", err)
	}
	cl.retryFor = 300 * time.Millisecond
	_, err = cl.readings(ctx, "bristol", "m", time.Now(), time.Now())
	if err == nil || !strings.Contains(err.Error(), "502") || !strings.Contains(err.Error(), "retried for") {
		t.Errorf("readings that keep failing: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls["/api/v1/sites"] != 3 || calls["/readyz"] != 1 || calls["/api/v1/sites/bristol/assets"] != 1 || calls["/api/v1/readings"] < 2 {
		t.Errorf("calls %v: want sites retried to its third call, readyz and the 401 once, readings retried", calls)
	}
}

// startOnFailure is a transport that starts the platform after the first
// request that could not reach it: a platform coming back after an
// outage, without a timed wait.
type startOnFailure struct {
	rt    http.RoundTripper
	once  sync.Once
	start func()
}

func (s *startOnFailure) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.rt.RoundTrip(r)
	if err != nil {
		s.once.Do(s.start)
	}
	return resp, err
}

// TestClientRetriesRefused: a query to a platform that refuses
// connections (stopped) is retried, and succeeds once it listens again.
func TestClientRetriesRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"sites":[{"id":"athens"}]}`))
	})}
	defer srv.Close()
	tr := &startOnFailure{rt: http.DefaultTransport, start: func() {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("listen again on %s: %v", addr, err)
			return
		}
		go srv.Serve(ln)
	}}
	cl, err := newClient(Target{Platform: "http://" + addr, Key: "k", HTTP: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	if sites, err := cl.sites(t.Context()); err != nil || len(sites) != 1 || sites[0].ID != "athens" {
		t.Errorf("sites across a refused connection: %v, %v", sites, err)
	}
}

// TestFollowReconnects: the live feed is opened again after the platform
// refused it (503) and after it ended it, and every reading of each
// connection is delivered.
func TestFollowReconnects(t *testing.T) {
	var mu sync.Mutex
	n := 0
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		k := n
		mu.Unlock()
		if k == 1 {
			http.Error(w, "restarting", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "event: reading\ndata: {\"asset\":\"m\",\"quantity\":\"active_power\",\"phase\":\"total\",\"time\":%d,\"value\":1}\n\n", k)
		w.(http.Flusher).Flush()
		if k > 2 {
			<-r.Context().Done() // the third stream stays open
		}
	}))
	defer ts.Close()
	cl, err := newClient(Target{Platform: ts.URL, Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	got := make(chan arrival, 10)
	var fails []error
	opened := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		cl.follow(ctx, "bristol", time.Now, func() { opened++ }, func(a arrival) { got <- a }, func() {}, func(err error) { fails = append(fails, err) })
	}()
	var times []int64
	for len(times) < 2 {
		times = append(times, (<-got).time)
	}
	cancel()
	<-done
	if !slices.Equal(times, []int64{2, 3}) || opened != 2 {
		t.Errorf("readings %v from %d connections; want 2 and 3 from 2", times, opened)
	}
	if len(fails) != 2 || !strings.Contains(fails[0].Error(), "503") || !strings.Contains(fails[1].Error(), "ended the stream") {
		t.Errorf("failures %v: want the 503, then the stream ended", fails)
	}
}
