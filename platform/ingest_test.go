package platform

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

type ingestReply struct {
	Accepted, Duplicate, Corrected, Rejected int
	Errors                                   []struct {
		Index                int
		Field, Value, Reason string
	}
	ErrorsTruncated int `json:"errors_truncated"`
}

func (f *fixture) post(t *testing.T, key string, body any) ingestReply {
	t.Helper()
	var out ingestReply
	f.must(200, "POST", "/api/v1/readings", key, body).json(t, &out)
	return out
}

func TestIngestSingleReading(t *testing.T) {
	f := newFixture(t)
	at := ms(t, "2024-05-01T12:00:00Z")
	got := f.post(t, f.ingest, fmt.Sprintf(`{"asset":"house-01/meter","quantity":"active_power","phase":"L1","unit":"kW","time":%d,"value":1.5}`, at))
	if got.Accepted != 1 || got.Rejected != 0 || len(got.Errors) != 0 {
		t.Fatalf("reply %+v", got)
	}
	var q struct {
		Series []struct {
			Phase, Unit string
			Points      [][2]float64
		}
	}
	f.must(200, "GET", "/api/v1/readings?quantity=active_power", f.read, nil).json(t, &q)
	if len(q.Series) != 1 || q.Series[0].Phase != "L1" || q.Series[0].Unit != "W" ||
		len(q.Series[0].Points) != 1 || q.Series[0].Points[0] != [2]float64{float64(at), 1500} {
		t.Fatalf("stored %+v, want 1500 W on L1 at %d", q, at)
	}
}

func TestIngestForms(t *testing.T) {
	f := newFixture(t)
	for i, body := range []string{
		`{"asset":"house-01/meter","quantity":"active_power","time":"2024-05-01T12:00:00Z","value":1}`,
		`[{"asset":"house-01/meter","quantity":"active_power","time":"2024-05-01T12:00:01.250+02:00","value":2}]`,
		`{"readings":[{"asset":"house-01/meter","quantity":"active_power","time":1714564802000,"value":3}],"gateway":"gw-1"}`,
		`{"asset":"house-01/door","quantity":"door_window_state","time":1714564803000,"value":"open"}`,
		`{"asset":"house-01/meter","quantity":"active_power","time":1.714564804e12,"value":"4.5","phase":null,"unit":null}`,
	} {
		if got := f.post(t, f.ingest, body); got.Accepted != 1 || got.Rejected != 0 {
			t.Errorf("form %d: %+v", i, got)
		}
	}
}

func TestIngestMixed(t *testing.T) {
	f := newFixture(t)
	at := ms(t, "2024-05-01T12:00:00Z")
	body := []any{
		reading("house-01/meter", "active_power", at, 100),                                                                   // 0 ok
		reading("house-01/meter", "powr", at, 100),                                                                           // 1 unknown quantity
		reading("house-99/meter", "active_power", at, 100),                                                                   // 2 unknown asset
		map[string]any{"asset": "house-01/meter", "quantity": "active_power", "time": at + 1, "value": 1, "unit": "furlong"}, // 3 unit
		map[string]any{"asset": "house-01/meter", "quantity": "active_power", "time": at + 2, "value": "lots"},               // 4 value
		map[string]any{"asset": "house-01/meter", "quantity": "active_power", "time": "yesterday", "value": 1},               // 5 time
		map[string]any{"asset": "house-01/meter", "quantity": "active_power", "value": 1},                                    // 6 missing time
		map[string]any{"asset": "house-01/meter", "quantity": "active_power", "time": at + 3, "value": 1, "qty": 1},          // 7 unknown field
		"not an object", // 8
		map[string]any{"asset": "house-01/meter", "quantity": "active_power", "phase": "L7", "time": at + 4, "value": 1}, // 9 phase
		map[string]any{"asset": 12, "quantity": "active_power", "time": at + 5, "value": 1},                              // 10 type
		reading("house-01/meter", "active_power", at+6, 200),                                                             // 11 ok
	}
	got := f.post(t, f.ingest, body)
	if got.Accepted != 2 || got.Rejected != 10 || len(got.Errors) != 10 {
		t.Fatalf("reply %+v", got)
	}
	want := map[int]string{1: "quantity", 2: "asset", 3: "unit", 4: "value", 5: "time", 6: "time", 7: "qty", 8: "", 9: "phase", 10: "asset"}
	for _, e := range got.Errors {
		field, ok := want[e.Index]
		if !ok || e.Field != field || e.Reason == "" {
			t.Errorf("error %+v, want field %q", e, field)
		}
		switch e.Index {
		case 1:
			if e.Value != "powr" {
				t.Errorf("unknown quantity value %q", e.Value)
			}
		case 2:
			if e.Value != "house-99/meter" || !strings.Contains(e.Reason, "house-99/meter") || !strings.Contains(e.Reason, "bristol") {
				t.Errorf("unknown asset error %+v does not name the asset and site", e)
			}
		}
	}
}

func TestIngestManyErrorsTruncated(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxErrors = 3 })
	var body []any
	for i := 0; i < 10; i++ {
		body = append(body, reading("house-01/meter", "nonsense", 1714564800000, 1))
	}
	got := f.post(t, f.ingest, body)
	if got.Rejected != 10 || len(got.Errors) != 3 || got.ErrorsTruncated != 7 {
		t.Fatalf("reply %+v", got)
	}
}

func TestIngestIdempotentAndCorrected(t *testing.T) {
	f := newFixture(t)
	at := ms(t, "2024-05-01T12:00:00Z")
	batch := []any{reading("house-01/meter", "active_power", at, 1), reading("house-01/meter", "active_power", at+1000, 2)}
	if got := f.post(t, f.ingest, batch); got.Accepted != 2 || got.Duplicate != 0 {
		t.Fatalf("first %+v", got)
	}
	if got := f.post(t, f.ingest, batch); got.Accepted != 0 || got.Duplicate != 2 {
		t.Fatalf("again %+v, want 2 duplicates", got)
	}
	fix := []any{reading("house-01/meter", "active_power", at, 1), reading("house-01/meter", "active_power", at+1000, 5)}
	if got := f.post(t, f.ingest, fix); got.Duplicate != 1 || got.Corrected != 1 {
		t.Fatalf("corrected %+v, want 1 duplicate and 1 corrected", got)
	}
	var q struct {
		Series []struct{ Points [][2]float64 }
	}
	f.must(200, "GET", "/api/v1/readings", f.read, nil).json(t, &q)
	if len(q.Series) != 1 || len(q.Series[0].Points) != 2 || q.Series[0].Points[1][1] != 5 {
		t.Fatalf("stored %+v", q)
	}
}

func TestIngestLimits(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxBodyBytes = 1024 })
	big := "[" + strings.Repeat(`{"asset":"house-01/meter","quantity":"active_power","time":1714564800000,"value":1},`, 40) + "{}]"
	r := f.must(413, "POST", "/api/v1/readings", f.ingest, big)
	if msg, code := r.errorBody(t); code != CodePayloadTooLarge || !strings.Contains(msg, "1024") {
		t.Errorf("413 %q %q", msg, code)
	}
	// Without a Content-Length the limit holds as well.
	req, _ := http.NewRequest("POST", f.ts.URL+"/api/v1/readings", struct{ *strings.Reader }{strings.NewReader(big)})
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+f.ingest)
	res, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 413 {
		t.Errorf("chunked body: status %d, want 413", res.StatusCode)
	}

	r = f.must(415, "POST", "/api/v1/readings", f.ingest, "asset,quantity\n", "Content-Type: text/csv")
	if msg, code := r.errorBody(t); code != CodeUnsupportedMediaType || !strings.Contains(msg, "text/csv") {
		t.Errorf("415 %q %q", msg, code)
	}
	f.must(200, "POST", "/api/v1/readings", f.ingest, "[]", "Content-Type: application/json; charset=utf-8")
	for _, bad := range []string{"", "{", "[1,", `{"asset":"a"} x`, "nul", `{"readings":{}}`, `{"readings":[],"asset":"x"}`, "\x00"} {
		r := f.must(400, "POST", "/api/v1/readings", f.ingest, bad)
		if msg, code := r.errorBody(t); code != CodeInvalidBody || !strings.Contains(msg, "JSON") {
			t.Errorf("%q: %q %q", bad, msg, code)
		}
	}
}

type batchReplyT struct {
	Rows, Accepted, Duplicate, Corrected, Rejected int
	DryRun                                         bool `json:"dry_run"`
	Errors                                         []struct {
		Line, Index          *int
		Field, Value, Reason string
	}
}

func gz(t *testing.T, s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestBatches(t *testing.T) {
	f := newFixture(t)
	csv := "asset,quantity,phase,unit,time,value\n" +
		"house-01/meter,active_power,L1,kW,2024-05-01T12:00:00Z,1.5\n" +
		"house-01/meter,active_power,L1,W,2024-05-01T12:00:01Z,1600\n" +
		"house-01/meter,powr,,W,2024-05-01T12:00:02Z,1\n" +
		"house-42/meter,active_power,,W,2024-05-01T12:00:02Z,1\n"

	var dry batchReplyT
	f.must(200, "POST", "/api/v1/batches?dry_run=true", f.ingest, csv, "Content-Type: text/csv").json(t, &dry)
	if !dry.DryRun || dry.Rows != 4 || dry.Accepted != 2 || dry.Rejected != 2 {
		t.Fatalf("dry run %+v", dry)
	}
	var q struct{ Series []any }
	f.must(200, "GET", "/api/v1/readings", f.read, nil).json(t, &q)
	if len(q.Series) != 0 {
		t.Fatalf("dry run stored %+v", q)
	}

	var rep batchReplyT
	f.must(200, "POST", "/api/v1/batches", f.ingest, csv, "Content-Type: text/csv").json(t, &rep)
	if rep.Rows != 4 || rep.Accepted != 2 || rep.Rejected != 2 || len(rep.Errors) != 2 {
		t.Fatalf("csv %+v", rep)
	}
	if e := rep.Errors[0]; e.Line == nil || *e.Line != 4 || e.Field != "quantity" || e.Value != "powr" {
		t.Errorf("first error %+v, want line 4 quantity powr", e)
	}
	if e := rep.Errors[1]; e.Line == nil || *e.Line != 5 || e.Field != "asset" || e.Value != "house-42/meter" {
		t.Errorf("second error %+v, want line 5 asset house-42/meter", e)
	}
	// The same file gzip-compressed: duplicates.
	f.must(200, "POST", "/api/v1/batches", f.ingest, gz(t, csv), "Content-Type: text/csv", "Content-Encoding: gzip").json(t, &rep)
	if rep.Duplicate != 2 || rep.Accepted != 0 {
		t.Fatalf("gzip again %+v, want 2 duplicates", rep)
	}
	nd := `{"asset":"house-01/meter","quantity":"active_power","time":1714564810000,"value":7}` + "\n" +
		`{"asset":"house-01/meter","quantity":"active_power","time":1714564811000,"value":"x"}` + "\n"
	f.must(200, "POST", "/api/v1/batches", f.ingest, gz(t, nd), "Content-Type: application/x-ndjson").json(t, &rep)
	if rep.Accepted != 1 || rep.Rejected != 1 || rep.Errors[0].Line == nil || *rep.Errors[0].Line != 2 {
		t.Fatalf("ndjson %+v", rep)
	}
	js := `{"readings":[{"asset":"athens-x","quantity":"active_power","time":1714564810000,"value":7}]}`
	f.must(200, "POST", "/api/v1/batches?site=athens", f.admin, js).json(t, &rep)
	if rep.Rejected != 1 || rep.Errors[0].Index == nil || *rep.Errors[0].Index != 0 {
		t.Fatalf("json %+v", rep)
	}

	r := f.must(415, "POST", "/api/v1/batches", f.ingest, "x", "Content-Type: application/xml")
	if msg, _ := r.errorBody(t); !strings.Contains(msg, "application/xml") {
		t.Errorf("415 message %q", msg)
	}
	f.must(415, "POST", "/api/v1/batches", f.ingest, "x", "Content-Type: text/csv", "Content-Encoding: br")
	r = f.must(400, "POST", "/api/v1/batches", f.ingest, "asset,quantity\nx,y\n", "Content-Type: text/csv")
	if _, code := r.errorBody(t); code != CodeInvalidBody {
		t.Errorf("bad header code %q", code)
	}
	f.must(400, "POST", "/api/v1/batches?dry_run=maybe", f.ingest, csv, "Content-Type: text/csv")
	f.must(400, "POST", "/api/v1/batches?color=red", f.ingest, csv, "Content-Type: text/csv")
	f.must(403, "POST", "/api/v1/batches", f.read, csv, "Content-Type: text/csv")
}

// TestIngestUnknownSite checks that an admin key writing to a site that does
// not exist gets one 404 naming the site, not an error per reading.
func TestIngestUnknownSite(t *testing.T) {
	f := newFixture(t)
	body := map[string]any{"readings": []any{reading("house-01/meter", "active_power", ms(t, "2024-05-01T12:00:00Z"), 1)}}
	r := f.must(404, "POST", "/api/v1/readings?site=nowhere", f.admin, body)
	if msg, code := r.errorBody(t); code != CodeNotFound || !strings.Contains(msg, `"nowhere"`) {
		t.Fatalf("error %q (%s), want not_found naming the site", msg, code)
	}
	r = f.must(404, "POST", "/api/v1/batches?site=nowhere", f.admin, nil, "Content-Type: text/csv")
	if msg, _ := r.errorBody(t); !strings.Contains(msg, `"nowhere"`) {
		t.Fatalf("batch error %q does not name the site", msg)
	}
}
