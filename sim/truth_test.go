package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/device"
)

func frameAt(cycle int64, d time.Duration) Frame {
	return Frame{Cycle: cycle, Start: cycleStart(cycle, d)}
}

func TestRecordConverts(t *testing.T) {
	tr := NewTruth(nil, 10)
	held := []device.Value{
		{Quantity: "active_power", Unit: "kW", Value: 1.5},
		{Quantity: "energy_active_import", Unit: "Wmin", Value: 120},
		{Quantity: "relay_state", State: "on"},
		{Quantity: "door_window_state", Value: 1},
		{Quantity: "voltage", Phase: cim.PhaseL2, Value: 231.25},
		{Quantity: "current", Phase: cim.PhaseL1, Value: float64(float32(1.1))},
	}
	f := frameAt(100, time.Second)
	if err := tr.Record("house/meter", f, time.Second, held); err != nil {
		t.Fatal(err)
	}
	recs := tr.Cycles("house/meter", time.Time{}, time.Time{})
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	r := recs[0]
	if r.Cycle != 100 || !r.Start.Equal(f.Start) || !r.End.Equal(f.Start.Add(time.Second)) {
		t.Fatalf("record %+v", r)
	}
	want := []HeldValue{
		{Quantity: "active_power", Value: 1500, Float32: true}, // 1.5 could be a float32
		{Quantity: "energy_active_import", Value: 2},
		{Quantity: "relay_state", Value: 1, State: "on"},
		{Quantity: "door_window_state", Value: 1, State: "open"},
		{Quantity: "voltage", Phase: cim.PhaseL2, Value: 231.25, Float32: true},
		{Quantity: "current", Phase: cim.PhaseL1, Value: float64(float32(1.1)), Float32: true},
	}
	if fmt.Sprint(r.Values) != fmt.Sprint(want) {
		t.Fatalf("values\n got %v\nwant %v", r.Values, want)
	}
}

func TestRecordRefusesBadValues(t *testing.T) {
	tr := NewTruth(nil, 10)
	err := tr.Record("a", frameAt(1, time.Second), time.Second, []device.Value{
		{Quantity: "active_power", Value: 5},
		{Quantity: "no_such_quantity", Value: 1},
		{Quantity: "active_power", Phase: cim.PhaseL1, Unit: "furlong", Value: 1},
		{Quantity: "relay_state", State: "ajar"},
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range []string{"no_such_quantity", "furlong", "ajar"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
	if recs := tr.Cycles("a", time.Time{}, time.Time{}); len(recs) != 1 || len(recs[0].Values) != 1 {
		t.Fatalf("the good value was not kept: %v", recs)
	}
	if err := tr.Record("", frameAt(1, time.Second), time.Second, nil); err == nil {
		t.Error("empty asset accepted")
	}
	if err := tr.Record("a", frameAt(1, time.Second), 0, nil); err == nil {
		t.Error("zero cycle accepted")
	}
}

func TestTruthKeepsNewestAndOrders(t *testing.T) {
	tr := NewTruth(nil, 5)
	d := time.Second
	for _, c := range []int64{3, 1, 2, 7, 5, 6, 4, 8} {
		tr.Record("a", frameAt(c, d), d, []device.Value{{Quantity: "active_power", Value: float64(c)}})
	}
	// Re-recording a cycle replaces it.
	tr.Record("a", frameAt(8, d), d, []device.Value{{Quantity: "active_power", Value: 80}})
	recs := tr.Cycles("a", time.Time{}, time.Time{})
	var got []int64
	for _, r := range recs {
		got = append(got, r.Cycle)
	}
	if fmt.Sprint(got) != "[4 5 6 7 8]" {
		t.Fatalf("cycles %v", got)
	}
	if recs[4].Values[0].Value != 80 {
		t.Fatalf("replaced value %v", recs[4].Values[0])
	}
	recs = tr.Cycles("a", cycleStart(5, d), cycleStart(7, d))
	if len(recs) != 2 || recs[0].Cycle != 5 || recs[1].Cycle != 6 {
		t.Fatalf("window [5, 7): %v", recs)
	}
	// Callers cannot change the log through the copies.
	recs[0].Values[0].Value = -1
	if tr.Cycles("a", cycleStart(5, d), cycleStart(6, d))[0].Values[0].Value != 5 {
		t.Fatal("Cycles shares values with the log")
	}
}

func TestTruthConcurrent(t *testing.T) {
	tr := NewTruth(nil, 100)
	srv := httptest.NewServer(tr.Handler())
	defer srv.Close()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for c := range int64(200) {
				tr.Record(fmt.Sprintf("a%d", w), frameAt(c, time.Second), time.Second, []device.Value{{Quantity: "co2", Value: 500}})
				tr.Cycles("", time.Time{}, time.Time{})
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if _, err := FetchTruth(t.Context(), srv.URL, "", time.Time{}, time.Time{}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	if n := len(tr.Cycles("", time.Time{}, time.Time{})); n != 400 {
		t.Fatalf("%d cycles kept, want 4 × 100", n)
	}
}

func getJSON(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed && ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil && resp.StatusCode < 404 {
		t.Fatalf("decode %s: %v", url, err)
	}
	return resp.StatusCode, body
}

func TestTruthHandlerJSON(t *testing.T) {
	tr := NewTruth(nil, 100)
	d := time.Second
	start := day0.Add(12 * time.Hour)
	c0 := cycleOf(start, d)
	for i := range int64(3) {
		tr.Record("house/meter", frameAt(c0+i, d), d, []device.Value{
			{Quantity: "active_power", Value: 100 + float64(i)},
			{Quantity: "voltage", Phase: cim.PhaseL1, Value: 230},
			{Quantity: "relay_state", State: "on"},
		})
	}
	tr.Record("other", frameAt(c0, d), d, []device.Value{{Quantity: "co2", Value: 600}})
	srv := httptest.NewServer(tr.Handler())
	defer srv.Close()

	status, body := getJSON(t, srv.URL+"/truth?asset=house/meter&from="+url.QueryEscape(start.Add(time.Second).Format(time.RFC3339))+
		fmt.Sprintf("&to=%d", start.Add(10*time.Second).UnixMilli()))
	if status != 200 {
		t.Fatalf("status %d: %v", status, body)
	}
	cycles := body["cycles"].([]any)
	if len(cycles) != 2 {
		t.Fatalf("%d cycles: %v", len(cycles), body)
	}
	c := cycles[0].(map[string]any)
	if c["asset"] != "house/meter" || c["cycle"] != float64(c0+1) ||
		c["start"] != float64(start.Add(time.Second).UnixMilli()) || c["end"] != float64(start.Add(2*time.Second).UnixMilli()) {
		t.Fatalf("cycle %v", c)
	}
	vals := c["values"].([]any)
	v0, v1, v2 := vals[0].(map[string]any), vals[1].(map[string]any), vals[2].(map[string]any)
	if v0["quantity"] != "active_power" || v0["value"] != 101.0 || v1["phase"] != "L1" || v2["state"] != "on" || v2["value"] != 1.0 {
		t.Fatalf("values %v", vals)
	}
	if _, ok := body["truncated"]; ok {
		t.Fatal("truncated without a limit")
	}

	// Every asset, empty answer.
	_, body = getJSON(t, srv.URL+"/truth")
	if n := len(body["cycles"].([]any)); n != 4 {
		t.Fatalf("all assets: %d cycles", n)
	}
	_, body = getJSON(t, srv.URL+"/truth?asset=nobody")
	if cs, ok := body["cycles"].([]any); !ok || len(cs) != 0 {
		t.Fatalf("unknown asset: %v", body)
	}

	// Limit and paging.
	_, body = getJSON(t, srv.URL+"/truth?asset=house/meter&limit=2")
	if len(body["cycles"].([]any)) != 2 || body["truncated"] != true || body["next"] != float64(start.Add(2*time.Second).UnixMilli()) {
		t.Fatalf("limited: %v", body)
	}
	got, err := FetchTruth(t.Context(), srv.URL, "house/meter", time.Time{}, time.Time{})
	if err != nil || len(got) != 3 || got[2].Values[0].Value != 102 || got[0].Values[1].Phase != cim.PhaseL1 {
		t.Fatalf("FetchTruth: %v, %v", got, err)
	}
	if !got[1].Start.Equal(start.Add(time.Second)) || got[1].Values[2].State != "on" {
		t.Fatalf("FetchTruth record %+v", got[1])
	}
}

func TestTruthHandlerErrors(t *testing.T) {
	srv := httptest.NewServer(NewTruth(nil, 10).Handler())
	defer srv.Close()
	for query, param := range map[string]string{
		"from=yesterday":               "from",
		"to=2025-13-01T00:00:00Z":      "to",
		"from=1000&to=10":              "to",
		"limit=0":                      "limit",
		"limit=many":                   "limit",
		"limit=100000":                 "limit",
		"asset=a&asset=b":              "asset",
		"colour=blue":                  "colour",
		"from=":                        "from",
		"from=99999999999999999999999": "from",
		"from=%zz":                     "query",
	} {
		status, body := getJSON(t, srv.URL+"/truth?"+query)
		if status != http.StatusBadRequest || body["parameter"] != param || !strings.Contains(body["error"].(string), param) {
			t.Errorf("%s: status %d body %v, want 400 naming %s", query, status, body, param)
		}
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/truth", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}
	if _, err := FetchTruth(t.Context(), srv.URL, "a", day0, day0.Add(-time.Hour)); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("FetchTruth with to before from: %v", err)
	}
	if _, err := FetchTruth(t.Context(), srv.URL+"/nowhere", "a", time.Time{}, time.Time{}); err == nil {
		t.Error("FetchTruth of a wrong path succeeded")
	}
}

func TestParseTruthTime(t *testing.T) {
	for s, want := range map[string]time.Time{
		"0":                           time.Unix(0, 0).UTC(),
		"1717286400123":               time.UnixMilli(1717286400123).UTC(),
		"-1000":                       time.Unix(-1, 0).UTC(),
		"2025-06-02T12:00:00Z":        day0.Add(12 * time.Hour),
		"2025-06-02T14:00:00.5+02:00": day0.Add(12*time.Hour + 500*time.Millisecond),
	} {
		got, err := parseTruthTime(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("%s: %v, %v; want %v", s, got, err, want)
		}
	}
}

func FuzzTruthQuery(f *testing.F) {
	for _, s := range []string{
		"", "asset=house-01/meter", "asset=a&from=0&to=1717286400000", "from=2025-06-02T12:00:00Z&to=2025-06-02T13:00:00%2B02:00",
		"limit=10", "limit=-1", "from=%zz", "asset=a&asset=b", "x=1", "from=-9223372036854775808", "to=9999-12-31T23:59:59Z",
		"from=0001-01-01T00:00:00Z", "from=1e9",
	} {
		f.Add(s)
	}
	tr := NewTruth(nil, 10)
	tr.Record("a", frameAt(1, time.Second), time.Second, []device.Value{{Quantity: "co2", Value: 500}})
	h := tr.Handler()
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseTruthQuery(raw)
		if err != nil {
			pe, ok := err.(*paramError)
			if !ok || pe.param == "" {
				t.Fatalf("%q: error %v names no parameter", raw, err)
			}
		} else {
			if q.limit < 1 || q.limit > MaxTruthLimit {
				t.Fatalf("%q: limit %d", raw, q.limit)
			}
			if !q.from.IsZero() && !q.to.IsZero() && q.to.Before(q.from) {
				t.Fatalf("%q: to before from", raw)
			}
		}
		req := httptest.NewRequest(http.MethodGet, "/truth", nil)
		req.URL.RawQuery = raw
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var body map[string]any
		if jerr := json.Unmarshal(rec.Body.Bytes(), &body); jerr != nil {
			t.Fatalf("%q: status %d, body not JSON: %v", raw, rec.Code, jerr)
		}
		switch {
		case err == nil && rec.Code == http.StatusOK:
			if _, ok := body["cycles"].([]any); !ok {
				t.Fatalf("%q: no cycles: %v", raw, body)
			}
		case err != nil && rec.Code == http.StatusBadRequest:
			if body["parameter"] == "" || body["error"] == "" {
				t.Fatalf("%q: error body %v", raw, body)
			}
		default:
			t.Fatalf("%q: status %d, parse error %v", raw, rec.Code, err)
		}
	})
}
