package uplink

import (
	"bytes"
	"context"
	"encoding/pem"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/internal/logbuf"
)

func TestDeliverAll(t *testing.T) {
	e := newEnv(t, false)
	q := openQueue(t)
	const total = 50_000
	appendN(t, q, 0, total, 1000)
	reg := prometheus.NewRegistry()
	cfg := fastConfig(e.ts.URL, e.key)
	cfg.Registerer = reg
	u, err := New(cfg, q, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, u)
	eventually(t, "the queue to drain", func() bool { return q.Len() == 0 })
	stop()
	e.checkStored(t, 0, total)
	st := u.Status()
	if st.State != StateOK || st.Sent != total || st.Rejected != 0 || st.Duplicate != 0 || st.Backlog != 0 || st.LastSuccess.IsZero() {
		t.Fatalf("status %+v", st)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string]float64)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				got[mf.GetName()] += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				got[mf.GetName()] += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				got[mf.GetName()] += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	want := map[string]float64{
		"gridlink_uplink_sent_readings_total": total, "gridlink_uplink_rejected_readings_total": 0,
		"gridlink_uplink_duplicate_readings_total": 0, "gridlink_uplink_dropped_readings_total": 0,
		"gridlink_uplink_queue_readings": 0, "gridlink_uplink_request_duration_seconds": total / DefaultBatchSize,
	}
	for name, v := range want {
		if g, ok := got[name]; !ok || g != v {
			t.Errorf("metric %s = %v (present: %v), want %v", name, g, ok, v)
		}
	}
}

func TestOutage(t *testing.T) {
	e := newEnv(t, false)
	p := newProxy(t, e.ts.URL)
	q := openQueue(t)
	cfg := fastConfig(p.ts.URL, e.key)
	cfg.BatchSize = 300
	u, err := New(cfg, q, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, q, 0, 500, 100)
	run(t, u)
	eventually(t, "the first readings", func() bool { return q.Len() == 0 })

	// The platform answers 503: nothing is lost, the uplink backs off.
	p.mode.Store(mode503)
	appendN(t, q, 500, 1000, 50)
	eventually(t, "retries against 503", func() bool { return p.failed.Load() >= 3 && u.Status().State == StateBackoff })
	if st := u.Status(); !strings.Contains(st.LastError, "503") || st.RetryAt.IsZero() || st.Backlog != 1000 {
		t.Fatalf("status during 503: %+v", st)
	}
	// The network fails: connections are closed without a reply.
	p.mode.Store(modeRefuse)
	appendN(t, q, 1500, 1000, 50)
	failed := p.failed.Load()
	eventually(t, "retries against a dead network", func() bool {
		return p.failed.Load() >= failed+3 && u.Status().State == StateUnreachable
	})
	p.mode.Store(modeForward)
	eventually(t, "the backlog to drain", func() bool { return q.Len() == 0 })
	e.checkStored(t, 0, 2500)

	// The platform saw every reading once, in the order appended.
	next := 0
	for _, body := range p.forwarded() {
		for _, k := range body {
			if k != next {
				t.Fatalf("reading %d arrived where %d was due", k, next)
			}
			next++
		}
	}
	if next != 2500 {
		t.Fatalf("%d readings forwarded", next)
	}
	if st := u.Status(); st.State != StateOK || st.LastError != "" || st.Sent != 2500 || st.Duplicate != 0 {
		t.Fatalf("status after the outage: %+v", st)
	}
}

func TestRetryAfter(t *testing.T) {
	e := newEnv(t, false)
	p := newProxy(t, e.ts.URL)
	p.mode.Store(mode429)
	p.gate = make(chan struct{}) // hold the retry, so the state can be seen
	q := openQueue(t)
	appendN(t, q, 0, 100, 100)
	u, err := New(fastConfig(p.ts.URL, e.key), q, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	run(t, u)
	eventually(t, "the rate limit", func() bool { return u.Status().State == StateRateLimited })
	if st := u.Status(); st.RetryAt.IsZero() || !strings.Contains(st.LastError, "429") {
		t.Fatalf("status %+v", st)
	}
	close(p.gate)
	eventually(t, "delivery", func() bool { return q.Len() == 0 })
	e.checkStored(t, 0, 100)
	// With a backoff of milliseconds, only Retry-After kept the uplink
	// from asking again inside the one-second window.
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.in429 != 1 {
		t.Fatalf("%d requests inside the Retry-After window, want 1", p.in429)
	}
}

func TestLostReply(t *testing.T) {
	e := newEnv(t, false)
	p := newProxy(t, e.ts.URL)
	p.mode.Store(modeDropReply)
	p.dropN.Store(2)
	q := openQueue(t)
	appendN(t, q, 0, 3000, 500)
	cfg := fastConfig(p.ts.URL, e.key)
	cfg.BatchSize = 1000
	u, err := New(cfg, q, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	run(t, u)
	eventually(t, "delivery", func() bool { return q.Len() == 0 })
	e.checkStored(t, 0, 3000)
	st := u.Status()
	// The first batch was stored by its first send; its replies were lost
	// twice, and the third send found it all there.
	if st.Duplicate != 1000 || st.Sent != 3000 {
		t.Fatalf("status %+v", st)
	}
	if n := len(p.forwarded()); n != 5 {
		t.Fatalf("%d bodies forwarded, want 5", n)
	}
}

func TestWrongKey(t *testing.T) {
	e := newEnv(t, false)
	q := openQueue(t)
	appendN(t, q, 0, 2000, 500)
	u, err := New(fastConfig(e.ts.URL, "glk_wrong"), q, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, u)
	eventually(t, "unauthorized", func() bool { return u.Status().State == StateUnauthorized })
	if st := u.Status(); !strings.Contains(st.LastError, "401") || st.Backlog != 2000 || st.Sent != 0 {
		t.Fatalf("status %+v", st)
	}
	stop()
	if q.Len() != 2000 || len(e.stored(t)) != 0 {
		t.Fatalf("queue %d, stored %d", q.Len(), len(e.stored(t)))
	}
	u2, err := New(fastConfig(e.ts.URL, e.key), q, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	run(t, u2)
	eventually(t, "delivery with the right key", func() bool { return q.Len() == 0 })
	e.checkStored(t, 0, 2000)
}

func TestTLS(t *testing.T) {
	e := newEnv(t, true)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.ts.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}

	// System roots do not know the test CA: a clear certificate error.
	q := openQueue(t)
	appendN(t, q, 0, 100, 100)
	u, err := New(fastConfig(e.ts.URL, e.key), q, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, u)
	eventually(t, "a TLS failure", func() bool { return u.Status().State == StateUnreachable })
	stop()
	if st := u.Status(); !strings.Contains(st.LastError, "certificate is not trusted") || !strings.Contains(st.LastError, "CAFile") {
		t.Fatalf("status %+v", st)
	}

	cfg := fastConfig(e.ts.URL, e.key)
	cfg.CAFile = ca
	u, err = New(cfg, q, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	run(t, u)
	eventually(t, "delivery over HTTPS", func() bool { return q.Len() == 0 })
	e.checkStored(t, 0, 100)

	for _, bad := range []string{filepath.Join(dir, "missing.pem"), filepath.Join(dir, "junk.pem")} {
		os.WriteFile(filepath.Join(dir, "junk.pem"), []byte("not a certificate"), 0o600)
		cfg.CAFile = bad
		if _, err := New(cfg, q, nil); err == nil || !strings.Contains(err.Error(), "CAFile") {
			t.Errorf("CAFile %s: %v", bad, err)
		}
	}
}

func TestRejectedRows(t *testing.T) {
	e := newEnv(t, false)
	q := openQueue(t)
	rs := readings(0, 10)
	rs[3].Asset = "house-99/unknown"
	rs[7].Value = math.NaN()
	if err := q.Append(rs); err != nil {
		t.Fatal(err)
	}
	var logs logbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	u, err := New(fastConfig(e.ts.URL, e.key), q, log)
	if err != nil {
		t.Fatal(err)
	}
	run(t, u)
	eventually(t, "delivery", func() bool { return q.Len() == 0 })
	got := e.stored(t)
	if len(got) != 8 || got[3] || got[7] {
		t.Fatalf("stored %v", got)
	}
	if st := u.Status(); st.Rejected != 2 || st.Sent != 8 {
		t.Fatalf("status %+v", st)
	}
	for _, want := range []string{"unknown asset", "house-99/unknown", "not a finite number"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// TestPoison puts a platform behind a filter that refuses a whole body
// (400) when it holds a poison reading, or (413) more than 64 readings.
func TestPoison(t *testing.T) {
	e := newEnv(t, false)
	poison := []byte(`"value":13.25}`) // reading 53
	filter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		raw := gunzip(t, body)
		switch {
		case bytes.Count(raw, []byte("\n")) > 64:
			http.Error(w, `{"error":"too large","code":"payload_too_large"}`, http.StatusRequestEntityTooLarge)
		case bytes.Contains(raw, poison):
			http.Error(w, `{"error":"line 1: invalid JSON","code":"invalid_body"}`, http.StatusBadRequest)
		default:
			r.Body = io.NopCloser(bytes.NewReader(body))
			e.srv.ServeHTTP(w, r)
		}
	}))
	defer filter.Close()
	q := openQueue(t)
	appendN(t, q, 0, 300, 300)
	u, err := New(fastConfig(filter.URL, e.key), q, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	run(t, u)
	eventually(t, "delivery", func() bool { return q.Len() == 0 })
	got := e.stored(t)
	if len(got) != 299 || got[53] {
		t.Fatalf("stored %d readings (53 there: %v)", len(got), got[53])
	}
	if st := u.Status(); st.Rejected != 1 || st.Sent != 299 {
		t.Fatalf("status %+v", st)
	}
}

func TestLiveNotStarved(t *testing.T) {
	e := newEnv(t, false)
	p := newProxy(t, e.ts.URL)
	q := openQueue(t)
	const backlog = 5000
	appendN(t, q, 0, backlog, 1000)
	cfg := fastConfig(p.ts.URL, e.key)
	cfg.BatchSize = 500
	cfg.LiveBuffer = 20
	u, err := New(cfg, q, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	// The gateway appends and notifies live readings; the ring keeps
	// the newest 20.
	for i := backlog; i < backlog+30; i += 10 {
		live := readings(i, 10)
		if err := q.Append(live); err != nil {
			t.Fatal(err)
		}
		u.Notify(live)
	}
	run(t, u)
	eventually(t, "delivery", func() bool { return q.Len() == 0 })
	e.checkStored(t, 0, backlog+30)
	fw := p.forwarded()
	if len(fw) == 0 || len(fw[0]) != 20 || fw[0][0] != backlog+10 || fw[0][19] != backlog+29 {
		t.Fatalf("first body %v, want the 20 newest live readings", fw[0])
	}
	if st := u.Status(); st.Duplicate != 20 || st.Sent != backlog+30+20 {
		t.Fatalf("status %+v", st)
	}
}

func TestConfigErrors(t *testing.T) {
	q := openQueue(t)
	for _, c := range []Config{
		{URL: "ftp://x", Site: "s", Key: "k"},
		{URL: "http://", Site: "s", Key: "k"},
		{URL: "http://x", Key: "k"},
		{URL: "http://x", Site: "s"},
		{URL: "http://x", Site: "s", Key: "k", BatchSize: -1},
		{URL: "http://x", Site: "s", Key: "k", MinBackoff: time.Minute, MaxBackoff: time.Second},
	} {
		if _, err := New(c, q, nil); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if _, err := New(Config{URL: "http://x", Site: "s", Key: "k"}, nil, nil); err == nil {
		t.Error("no queue: no error")
	}
	u, err := New(Config{URL: "http://x/prefix/", Site: "a b", Key: "k"}, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	if u.endpoint != "http://x/prefix/api/v1/batches?site=a+b" {
		t.Errorf("endpoint %s", u.endpoint)
	}
	// Run refuses to run twice.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { u.Run(ctx); close(done) }()
	eventually(t, "Run to start", func() bool { return u.running.Load() })
	if err := u.Run(ctx); err == nil {
		t.Error("second Run: no error")
	}
	cancel()
	<-done
}

func TestEncode(t *testing.T) {
	var e encoder
	rs := []cim.Reading{
		{SeriesKey: cim.SeriesKey{Asset: "a\"b\\c\x01\xff", Quantity: "active_power", Phase: cim.PhaseL1}, Point: cim.Point{Time: 5, Value: 1e21}},
		{SeriesKey: cim.SeriesKey{Asset: "x", Quantity: "q"}, Point: cim.Point{Time: -1, Value: math.Inf(1)}},
		{SeriesKey: cim.SeriesKey{Asset: "x", Quantity: "q"}, Point: cim.Point{Time: 7, Value: -0.5}},
	}
	kept, body, bad := e.encode(rs)
	if len(kept) != 2 || len(bad) != 1 || kept[1].Time != 7 {
		t.Fatalf("kept %v bad %v", kept, bad)
	}
	want := `{"asset":"a\"b\\c\u0001\ufffd","quantity":"active_power","phase":"L1","time":5,"value":1e+21}` + "\n" +
		`{"asset":"x","quantity":"q","time":7,"value":-0.5}` + "\n"
	if got := string(gunzip(t, body)); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		h  string
		d  time.Duration
		ok bool
	}{
		{"", 0, false},
		{"7", 7 * time.Second, true},
		{" 0 ", 0, true},
		{"99999999999999999999999", MaxRetryAfter, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"Sat, 28 Nov 2026 12:00:30 GMT", 30 * time.Second, true},
		{"Sat, 28 Nov 2026 11:00:00 GMT", 0, true},
		{"Sunday, 06-Nov-94 08:49:37 GMT", 0, true},
		{"tomorrow", 0, false},
	} {
		d, ok := parseRetryAfter(c.h, now)
		if d != c.d || ok != c.ok {
			t.Errorf("%q: %v %v, want %v %v", c.h, d, ok, c.d, c.ok)
		}
	}
}

func TestBackoff(t *testing.T) {
	for n := 1; n < 100; n++ {
		d := backoff(n, time.Second, time.Minute)
		hi := min(time.Second<<min(n-1, 20), time.Minute)
		if d < hi/2 || d > hi {
			t.Fatalf("backoff(%d) = %v, want in [%v, %v]", n, d, hi/2, hi)
		}
	}
}

// TestLinger: while readings trickle in, a batch that is not full waits for
// more, so a gateway makes about one request per Linger, not one per read.
func TestLinger(t *testing.T) {
	e := newEnv(t, false)
	p := newProxy(t, e.ts.URL)
	q := openQueue(t)
	cfg := fastConfig(p.ts.URL, e.key)
	cfg.Linger = 400 * time.Millisecond
	u, err := New(cfg, q, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	run(t, u)
	// 40 device reads, 25 ms apart: a second of readings.
	for i := range 40 {
		appendN(t, q, i, 1, 1)
		time.Sleep(25 * time.Millisecond)
	}
	eventually(t, "delivery", func() bool { return q.Len() == 0 })
	e.checkStored(t, 0, 40)
	if n := len(p.forwarded()); n > 6 {
		t.Errorf("%d requests for 40 reads in a second with a linger of 400 ms, want about 3", n)
	}
}
