package platform

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gridlink/gridlink/store"
)

// itcRunJSON is the body of an ITC run as the runner posts it, with one
// result per status and the measures of an asset.
func itcRunJSON(id string, start time.Time) map[string]any {
	asset := map[string]any{"asset": "house-01/meter", "profile": "meter-modbus", "cycles": 20, "arrived": 19, "equal": 19,
		"completeness": 95.0, "delay_p50_ns": 120e6, "delay_p99_ns": 800e6, "delay_max_ns": 900e6,
		"mismatches": []any{map[string]any{"quantity": "active_power", "phase": "total", "time": start.Format(time.RFC3339Nano), "device": 1500.0, "platform": 150.0}},
		"series": []any{map[string]any{"quantity": "active_power", "phase": "total", "unit": "W",
			"device": []any{map[string]any{"t": start.UnixMilli(), "v": 1500.0}}, "platform": []any{map[string]any{"t": start.UnixMilli(), "v": 150.0}}}}}
	res := func(c, site, status, reason string) map[string]any {
		return map[string]any{"case": c, "name": "case " + c, "site": site, "status": status, "reason": reason,
			"start": start.Format(time.RFC3339Nano), "end": start.Add(20 * time.Second).Format(time.RFC3339Nano), "assets": []any{asset}}
	}
	return map[string]any{"id": id, "platform": "http://127.0.0.1:8080", "start": start.Format(time.RFC3339Nano),
		"end": start.Add(time.Minute).Format(time.RFC3339Nano), "results": []any{
			res("ITC1.01", "bristol", "passed", ""),
			res("ITC1.02", "bristol", "failed", "house-01/meter active_power at 12:00:01: device 1500 W, platform 150 W\n(and 3 more)"),
			res("ITC2.01", "athens", "suspended", "no reading of evse-01 reached the platform within 30 s"),
			res("ITC3.01", "", "not_run", "dependency ITC1.02 failed"),
		}}
}

// exerciseITCRoutes drives the ITC routes, and the stream's key
// parameter, to their success statuses for TestOpenAPIConformance.
func exerciseITCRoutes(t *testing.T, f *fixture) {
	t.Helper()
	start := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	f.must(http.StatusOK, "GET", "/api/v1/itc/runs", f.read, nil)
	f.must(http.StatusCreated, "POST", "/api/v1/itc/runs", f.admin, itcRunJSON("conformance-1", start))
	f.must(http.StatusOK, "GET", "/api/v1/itc/runs?limit=5", f.athensRead, nil)
	f.must(http.StatusOK, "GET", "/api/v1/itc/runs/conformance-1", f.read, nil)
	f.must(http.StatusNotFound, "GET", "/api/v1/itc/runs/conformance-2", f.read, nil)
	f.must(http.StatusBadRequest, "POST", "/api/v1/itc/runs", f.admin, map[string]any{"id": "x"})
	f.must(http.StatusForbidden, "POST", "/api/v1/itc/runs", f.read, itcRunJSON("conformance-3", start))
	f.must(http.StatusForbidden, "GET", "/api/v1/itc/runs", f.ingest, nil)
	f.must(http.StatusUnauthorized, "GET", "/api/v1/itc/runs/conformance-1", "", nil)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.ts.URL+"/api/v1/stream?site=bristol&key="+f.read, nil)
	res, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/stream?key=…: status %d", res.StatusCode)
	}
}

func TestITCRuns(t *testing.T) {
	f := newFixture(t)
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	var list struct {
		Runs []itcRunSummary `json:"runs"`
	}
	f.must(http.StatusOK, "GET", "/api/v1/itc/runs", f.read, nil).json(t, &list)
	if len(list.Runs) != 0 {
		t.Fatalf("runs of a fresh platform: %+v", list.Runs)
	}

	var sum itcRunSummary
	f.must(http.StatusCreated, "POST", "/api/v1/itc/runs", f.admin, itcRunJSON("run-a", t0)).json(t, &sum)
	want := map[string]int{"passed": 1, "failed": 1, "suspended": 1, "not_run": 1}
	if sum.ID != "run-a" || sum.Cases != 4 || fmt.Sprint(sum.Counts) != fmt.Sprint(want) || !sum.Start.Equal(t0) || sum.End == nil {
		t.Errorf("POST reply %+v", sum)
	}
	f.must(http.StatusCreated, "POST", "/api/v1/itc/runs", f.admin, itcRunJSON("run-c", t0.Add(2*time.Hour)))
	f.must(http.StatusCreated, "POST", "/api/v1/itc/runs", f.admin, itcRunJSON("run-b", t0.Add(time.Hour)))

	// Any read key lists and reads every run: they hold no personal data.
	f.must(http.StatusOK, "GET", "/api/v1/itc/runs", f.athensRead, nil).json(t, &list)
	var ids []string
	for _, r := range list.Runs {
		ids = append(ids, r.ID)
	}
	if strings.Join(ids, ",") != "run-c,run-b,run-a" {
		t.Errorf("runs listed %v, want newest first", ids)
	}
	f.must(http.StatusOK, "GET", "/api/v1/itc/runs?limit=1", f.restricted, nil).json(t, &list)
	if len(list.Runs) != 1 || list.Runs[0].ID != "run-c" || list.Runs[0].Counts["failed"] != 1 {
		t.Errorf("limit=1: %+v", list.Runs)
	}

	// The run comes back as posted.
	r := f.must(http.StatusOK, "GET", "/api/v1/itc/runs/run-b", f.read, nil)
	var got map[string]any
	r.json(t, &got)
	sent, _ := json.Marshal(itcRunJSON("run-b", t0.Add(time.Hour)))
	var sentV map[string]any
	json.Unmarshal(sent, &sentV)
	if a, b := fmt.Sprint(got), fmt.Sprint(sentV); a != b {
		t.Errorf("GET run-b:\n got %s\nwant %s", a, b)
	}

	// Posting the same id again replaces the run.
	again := itcRunJSON("run-a", t0.Add(3*time.Hour))
	again["results"] = []any{map[string]any{"case": "ITC1.01", "site": "bristol", "status": "passed"}}
	f.must(http.StatusCreated, "POST", "/api/v1/itc/runs", f.admin, again)
	f.must(http.StatusOK, "GET", "/api/v1/itc/runs", f.read, nil).json(t, &list)
	if len(list.Runs) != 3 || list.Runs[0].ID != "run-a" || list.Runs[0].Cases != 1 || list.Runs[0].Counts["passed"] != 1 {
		t.Errorf("after replacing run-a: %+v", list.Runs)
	}

	// Who may do what.
	for _, c := range []struct {
		method, path, key string
		status            int
		code              string
	}{
		{"POST", "/api/v1/itc/runs", f.read, 403, CodeWrongScope},
		{"POST", "/api/v1/itc/runs", f.ingest, 403, CodeWrongScope},
		{"GET", "/api/v1/itc/runs", f.ingest, 403, CodeWrongScope},
		{"GET", "/api/v1/itc/runs/run-a", f.ingest, 403, CodeWrongScope},
		{"GET", "/api/v1/itc/runs", "", 401, CodeMissingKey},
		{"GET", "/api/v1/itc/runs/nope", f.read, 404, CodeNotFound},
		{"GET", "/api/v1/itc/runs?limit=0", f.read, 400, CodeInvalidParameter},
		{"GET", "/api/v1/itc/runs?limit=101", f.read, 400, CodeInvalidParameter},
		{"GET", "/api/v1/itc/runs?site=bristol", f.read, 400, CodeInvalidParameter},
	} {
		var body any
		if c.method == "POST" {
			body = itcRunJSON("x", t0)
		}
		r := f.must(c.status, c.method, c.path, c.key, body)
		if _, code := r.errorBody(t); code != c.code {
			t.Errorf("%s %s: code %s, want %s", c.method, c.path, code, c.code)
		}
	}
}

func TestITCRunValidation(t *testing.T) {
	f := newFixture(t)
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	with := func(mod func(run map[string]any)) map[string]any {
		run := itcRunJSON("v", t0)
		mod(run)
		return run
	}
	result0 := func(run map[string]any) map[string]any { return run["results"].([]any)[0].(map[string]any) }
	for _, c := range []struct {
		name string
		body any
		want string // in the message
	}{
		{"no id", with(func(r map[string]any) { delete(r, "id") }), `field id=""`},
		{"long id", with(func(r map[string]any) { r["id"] = strings.Repeat("x", 201) }), "field id="},
		{"control in id", with(func(r map[string]any) { r["id"] = "a\nb" }), "field id="},
		{"no start", with(func(r map[string]any) { delete(r, "start") }), "field start"},
		{"bad start", with(func(r map[string]any) { r["start"] = "yesterday" }), "yesterday"},
		{"end before start", with(func(r map[string]any) { r["end"] = t0.Add(-time.Second).Format(time.RFC3339) }), "field end="},
		{"no results", with(func(r map[string]any) { delete(r, "results") }), "field results"},
		{"results not array", with(func(r map[string]any) { r["results"] = "all good" }), "results"},
		{"unknown field", with(func(r map[string]any) { r["verdict"] = "ok" }), `unknown field "verdict"`},
		{"unknown result field", with(func(r map[string]any) { result0(r)["passed"] = true }), `unknown field "passed"`},
		{"no case", with(func(r map[string]any) { delete(result0(r), "case") }), "field results[0].case"},
		{"bad status", with(func(r map[string]any) { result0(r)["status"] = "pass" }), `field results[0].status="pass": want passed, failed, suspended or not_run`},
		{"bad site", with(func(r map[string]any) { result0(r)["site"] = "Bristol City" }), "field results[0].site="},
		{"asset not object", with(func(r map[string]any) { result0(r)["assets"] = []any{1} }), "field results[0].assets[0]"},
		{"long reason", with(func(r map[string]any) { result0(r)["reason"] = strings.Repeat("r", 8193) }), "field results[0].reason"},
		{"trailing data", `{"id":"x","start":"2024-05-01T12:00:00Z","results":[]} {}`, "data after the object"},
		{"empty body", "", "empty request body"},
		{"not an object", `[1,2]`, "invalid ITC run"},
	} {
		r := f.must(http.StatusBadRequest, "POST", "/api/v1/itc/runs", f.admin, c.body)
		if msg, code := r.errorBody(t); code != CodeInvalidBody || !strings.Contains(msg, c.want) {
			t.Errorf("%s: %s %q, want invalid_body naming %q", c.name, code, msg, c.want)
		}
	}
	f.must(http.StatusUnsupportedMediaType, "POST", "/api/v1/itc/runs", f.admin, "{}", "Content-Type: text/plain")
	big := `{"id":"big","start":"2024-05-01T12:00:00Z","results":[],"platform":"` + strings.Repeat("x", MaxITCRunBytes) + `"}`
	f.must(http.StatusRequestEntityTooLarge, "POST", "/api/v1/itc/runs", f.admin, big)

	// A run of nearly the limit is taken: the limit is not MaxBodyBytes.
	long := itcRunJSON("long", t0)
	res := long["results"].([]any)
	for len(res) < 20000 {
		res = append(res, map[string]any{"case": "ITC1.01", "site": "bristol", "status": "passed", "reason": strings.Repeat("x", 300)})
	}
	long["results"] = res
	f.must(http.StatusCreated, "POST", "/api/v1/itc/runs", f.admin, long)
	if r := f.must(http.StatusOK, "GET", "/api/v1/itc/runs/long", f.read, nil); len(r.body) < 6<<20 {
		t.Errorf("long run came back with %d bytes", len(r.body))
	}
}

// TestITCRunsStoredSummaries checks that POST stores the run's summary
// beside it and that the list answers from stored summaries, summarising
// from the body only a run stored without a usable one (by a platform of
// before summaries were stored).
func TestITCRunsStoredSummaries(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	st := f.st.(store.ITCRuns)
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	body := func(id string) []byte {
		b, err := json.Marshal(itcRunJSON(id, t0))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	var posted itcRunSummary
	f.must(http.StatusCreated, "POST", "/api/v1/itc/runs", f.admin, itcRunJSON("new", t0.Add(5*time.Hour))).json(t, &posted)
	runs, err := st.ListITCRuns(ctx, 1)
	if err != nil || len(runs) != 1 || runs[0].ID != "new" {
		t.Fatalf("store's runs after POST: %+v, %v", runs, err)
	}
	var stored itcRunSummary
	if err := json.Unmarshal(runs[0].Summary, &stored); err != nil || fmt.Sprint(stored) != fmt.Sprint(posted) {
		t.Errorf("stored summary %s (%v), want the POST reply %+v", runs[0].Summary, err, posted)
	}

	// Runs as the store may hold them.
	for _, r := range []struct {
		id      string
		hours   int
		summary string
		body    []byte
	}{
		{"old", 4, "", body("old")},                                             // stored before summaries: from the body
		{"garbage", 3, "not json", body("garbage")},                             // unreadable: from the body
		{"negative", 2, `{"cases":1,"counts":{"passed":-1}}`, body("negative")}, // impossible: from the body
		{"unknown-status", 1, `{"cases":1,"counts":{"skipped":1}}`, body("unknown-status")},
		{"lying", 0, `{"platform":"http://p","cases":7,"counts":{"passed":7}}`, body("lying")}, // the list trusts it
		{"broken", -1, "", []byte(`{`)},                                                        // neither: what the store knows
	} {
		if err := st.PutITCRun(ctx, r.id, t0.Add(time.Duration(r.hours)*time.Hour), []byte(r.summary), r.body); err != nil {
			t.Fatal(err)
		}
	}
	var list struct {
		Runs []itcRunSummary `json:"runs"`
	}
	f.must(http.StatusOK, "GET", "/api/v1/itc/runs", f.read, nil).json(t, &list)
	fromBody := map[string]int{"passed": 1, "failed": 1, "suspended": 1, "not_run": 1}
	zero := map[string]int{"passed": 0, "failed": 0, "suspended": 0, "not_run": 0}
	want := []struct {
		id       string
		platform string
		cases    int
		counts   map[string]int
		end      bool
	}{
		{"new", "http://127.0.0.1:8080", 4, fromBody, true},
		{"old", "http://127.0.0.1:8080", 4, fromBody, true},
		{"garbage", "http://127.0.0.1:8080", 4, fromBody, true},
		{"negative", "http://127.0.0.1:8080", 4, fromBody, true},
		{"unknown-status", "http://127.0.0.1:8080", 4, fromBody, true},
		{"lying", "http://p", 7, map[string]int{"passed": 7, "failed": 0, "suspended": 0, "not_run": 0}, false},
		{"broken", "", 0, zero, false},
	}
	if len(list.Runs) != len(want) {
		t.Fatalf("listed %d runs, want %d: %+v", len(list.Runs), len(want), list.Runs)
	}
	for i, w := range want {
		g := list.Runs[i]
		if g.ID != w.id || g.Platform != w.platform || g.Cases != w.cases || fmt.Sprint(g.Counts) != fmt.Sprint(w.counts) || (g.End != nil) != w.end {
			t.Errorf("run %d listed %+v, want %+v", i, g, w)
		}
	}
	// Listing computed nothing to keep: old runs keep no summary.
	runs, err = st.ListITCRuns(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		if r.ID == "old" && len(r.Summary) != 0 {
			t.Errorf("listing stored a summary for run old: %s", r.Summary)
		}
	}
}

// noITCStore is a store that keeps no ITC runs.
type noITCStore struct{ store.Store }

func TestITCRunsWithoutStoreSupport(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Store = noITCStore{c.Store} })
	r := f.must(http.StatusNotFound, "GET", "/api/v1/itc/runs", f.read, nil)
	if msg, _ := r.errorBody(t); !strings.Contains(msg, "keeps no integration test runs") {
		t.Errorf("404 message %q", msg)
	}
	f.must(http.StatusNotFound, "POST", "/api/v1/itc/runs", f.admin, itcRunJSON("x", time.Now()))
}

// TestStreamKeyParameter: the live feed takes the key as a parameter, for
// EventSource; no other route does, and the key is given once.
func TestStreamKeyParameter(t *testing.T) {
	f := newFixture(t)
	stream := func(query, header string) (*http.Response, func()) {
		ctx, cancel := context.WithCancel(t.Context())
		req, _ := http.NewRequestWithContext(ctx, "GET", f.ts.URL+"/api/v1/stream?"+query, nil)
		if header != "" {
			req.Header.Set("Authorization", "Bearer "+header)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return res, func() { cancel(); res.Body.Close() }
	}
	res, done := stream("site=bristol&key="+f.read, "")
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("stream with ?key=: %d %s", res.StatusCode, b)
	}
	// A reading stored now arrives on the stream.
	br := bufio.NewReader(res.Body)
	if _, err := br.ReadString('\n'); err != nil { // the comment line: subscribed
		t.Fatal(err)
	}
	at := time.Now().UnixMilli()
	f.must(http.StatusOK, "POST", "/api/v1/readings", f.ingest, []any{reading("house-01/meter", "active_power", at, 1234)})
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended before the reading: %v", err)
		}
		if strings.HasPrefix(line, "data: ") && strings.Contains(line, `"value":1234`) {
			break
		}
	}
	done()

	for _, c := range []struct {
		query, header string
		status        int
	}{
		{"key=" + f.read, f.read, 400},                // both
		{"key=" + f.read + "&key=" + f.read, "", 400}, // twice
		{"key=glk_nonsense", "", 401},
		{"key=", "", 401},
		{"site=athens&key=" + f.read, "", 403},
		{"key=" + f.ingest, "", 403},
	} {
		res, done := stream(c.query, c.header)
		if res.StatusCode != c.status {
			t.Errorf("stream ?%s (header %v): %d, want %d", c.query, c.header != "", res.StatusCode, c.status)
		}
		done()
	}
	// Only the stream: elsewhere key is an unknown parameter, and no key.
	f.must(http.StatusUnauthorized, "GET", "/api/v1/latest?key="+f.read, "", nil)
	f.must(http.StatusBadRequest, "GET", "/api/v1/latest?key="+f.read, f.read, nil)
}

// FuzzParseITCRun checks that no body makes the parser panic, and that
// what it accepts has a valid id and a start, and parses again the same
// once re-encoded.
func FuzzParseITCRun(f *testing.F) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	b, _ := json.Marshal(itcRunJSON("seed", t0))
	f.Add(b)
	f.Add([]byte(`{"id":"x","start":"2024-05-01T12:00:00Z","results":[]}`))
	f.Add([]byte(`{"id":"x","start":"2024-05-01T12:00:00Z","results":[{"case":"C","status":"passed","assets":[{}]}]}`))
	f.Add([]byte(`{"id":"","start":"0001-01-01T00:00:00Z","results":null}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"results":[{"status":"failed","assets":[null]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		run, err := parseITCRun(body)
		if err != nil {
			if run != nil {
				t.Fatal("a run with an error")
			}
			return
		}
		if store.CheckITCRunID(run.ID) != nil || run.Start.IsZero() || run.Results == nil {
			t.Fatalf("accepted a run with id %q, start %s, results %v", run.ID, run.Start, run.Results)
		}
		again, err := json.Marshal(run)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		run2, err := parseITCRun(again)
		if err != nil {
			t.Fatalf("re-encoded run refused: %v\n%s", err, again)
		}
		if s1, s2 := summarise(run), summarise(run2); fmt.Sprint(s1) != fmt.Sprint(s2) {
			t.Fatalf("summary changed on re-encoding: %+v, %+v", s1, s2)
		}
		// The summary POST stores lists as POST replied, but for the
		// store's start (milliseconds).
		sum := summarise(run)
		enc, err := json.Marshal(sum)
		if err != nil {
			t.Fatal(err)
		}
		start := time.UnixMilli(run.Start.UnixMilli()).UTC()
		got, ok := storedITCSummary(store.ITCRunInfo{ID: run.ID, Start: start, Summary: enc})
		sum.Start = start
		if !ok || fmt.Sprint(got) != fmt.Sprint(sum) {
			t.Fatalf("stored summary lists as %+v (%v), want %+v", got, ok, sum)
		}
	})
}

// FuzzStoredITCSummary checks that no stored summary makes the list
// panic, and that what it accepts lists as the API promises: the store's
// id and start, counts of the four statuses alone, none negative.
func FuzzStoredITCSummary(f *testing.F) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	var run itcRun
	b, _ := json.Marshal(itcRunJSON("seed", t0))
	json.Unmarshal(b, &run)
	enc, _ := json.Marshal(summarise(&run))
	f.Add(enc)
	f.Add([]byte(``))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"cases":1,"counts":{}}`))
	f.Add([]byte(`{"cases":-1,"counts":{"passed":1}}`))
	f.Add([]byte(`{"counts":{"failed":-3}}`))
	f.Add([]byte(`{"counts":{"x":1},"end":"2024-05-01T12:00:00+02:00"}`))
	f.Fuzz(func(t *testing.T, summary []byte) {
		got, ok := storedITCSummary(store.ITCRunInfo{ID: "r", Start: t0, Summary: summary})
		if !ok {
			return
		}
		if got.ID != "r" || !got.Start.Equal(t0) || got.Cases < 0 || len(got.Counts) != len(itcStatuses) {
			t.Fatalf("accepted %q as %+v", summary, got)
		}
		for _, st := range itcStatuses {
			if n, ok := got.Counts[st]; !ok || n < 0 {
				t.Fatalf("accepted %q with counts %v", summary, got.Counts)
			}
		}
		if got.End != nil && got.End.Location() != time.UTC {
			t.Fatalf("accepted %q with an end not in UTC: %s", summary, got.End)
		}
	})
}

// bigITCRun is a run the size of the demo's: 18 cases on 4 sites, each
// with an asset of 4 quantities plotted at 200 points.
func bigITCRun(id string, start time.Time) []byte {
	run := itcRunJSON(id, start)
	pts := make([]any, 200)
	for i := range pts {
		pts[i] = map[string]any{"t": start.UnixMilli() + int64(i)*1000, "v": 1500.25 + float64(i)}
	}
	series := make([]any, 4)
	for i := range series {
		series[i] = map[string]any{"quantity": "active_power", "phase": "total", "unit": "W", "device": pts, "platform": pts}
	}
	asset := map[string]any{"asset": "house-01/meter", "cycles": 200, "arrived": 200, "equal": 200, "completeness": 100.0, "series": series}
	var results []any
	for c := range 18 {
		for _, site := range []string{"athens", "benetutti", "bristol", "steinheim"} {
			results = append(results, map[string]any{"case": fmt.Sprintf("ITC%d.01", c+1), "site": site, "status": "passed",
				"start": start.Format(time.RFC3339), "end": start.Add(20 * time.Second).Format(time.RFC3339), "assets": []any{asset}})
		}
	}
	run["results"] = results
	b, _ := json.Marshal(run)
	return b
}

// BenchmarkITCRuns measures posting a demo-sized run, listing the newest
// 20 (from the summaries stored at POST; no body is read) and getting one,
// over HTTP with a plain client (no OpenAPI check).
func BenchmarkITCRuns(b *testing.B) {
	f := newFixture(b)
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	send := func(method, path, key string, body []byte, want int) {
		req, _ := http.NewRequest(method, f.ts.URL+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			b.Fatalf("%s %s: %d", method, path, res.StatusCode)
		}
	}
	bodies := make([][]byte, 20)
	for i := range bodies {
		bodies[i] = bigITCRun(fmt.Sprintf("run-%02d", i), t0.Add(time.Duration(i)*time.Minute))
	}
	b.Run("Post", func(b *testing.B) {
		b.SetBytes(int64(len(bodies[0])))
		for i := 0; b.Loop(); i++ {
			send("POST", "/api/v1/itc/runs", f.admin, bodies[i%len(bodies)], http.StatusCreated)
		}
	})
	for _, body := range bodies {
		send("POST", "/api/v1/itc/runs", f.admin, body, http.StatusCreated)
	}
	b.Run("List20", func(b *testing.B) {
		for b.Loop() {
			send("GET", "/api/v1/itc/runs?limit=20", f.read, nil, http.StatusOK)
		}
	})
	b.Run("List1", func(b *testing.B) {
		for b.Loop() {
			send("GET", "/api/v1/itc/runs?limit=1", f.read, nil, http.StatusOK)
		}
	})
	b.Run("Get", func(b *testing.B) {
		b.SetBytes(int64(len(bodies[0])))
		for b.Loop() {
			send("GET", "/api/v1/itc/runs/run-00", f.read, nil, http.StatusOK)
		}
	})
	// The same 20 runs as a store of before summaries holds them, newer
	// than the others: the list summarises each from its body.
	st := f.st.(store.ITCRuns)
	for i, body := range bodies {
		if err := st.PutITCRun(b.Context(), fmt.Sprintf("old-%02d", i), t0.Add(time.Hour+time.Duration(i)*time.Minute), nil, body); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("List20Unsummarised", func(b *testing.B) {
		b.SetBytes(int64(len(bodies) * len(bodies[0])))
		for b.Loop() {
			send("GET", "/api/v1/itc/runs?limit=20", f.read, nil, http.StatusOK)
		}
	})
}
