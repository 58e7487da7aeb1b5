package platform

import (
	"encoding/csv"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridlink/gridlink/store"
)

type seriesReply struct {
	Series []struct {
		Site, Asset, Quantity, Phase, Unit string
		Points                             [][2]float64
	}
}

// seedSeries stores an hour of minutely power (value = minute) and energy
// (10 Wh a minute) readings.
func seedSeries(t *testing.T, f *fixture) int64 {
	t.Helper()
	start := ms(t, "2024-05-01T12:00:00Z")
	var body []any
	for i := 0; i < 60; i++ {
		at := start + int64(i)*60_000
		body = append(body, reading("house-01/meter", "active_power", at, float64(i)))
		body = append(body, reading("house-01/meter", "energy_active_import", at, float64(1000+10*i)))
	}
	if got := f.post(t, f.ingest, body); got.Accepted != 120 {
		t.Fatalf("seed %+v", got)
	}
	return start
}

func TestQueryRaw(t *testing.T) {
	f := newFixture(t)
	start := seedSeries(t, f)
	var q seriesReply
	f.must(200, "GET", "/api/v1/readings", f.read, nil).json(t, &q)
	if len(q.Series) != 2 || q.Series[0].Quantity != "active_power" || q.Series[1].Quantity != "energy_active_import" {
		t.Fatalf("series %+v", q.Series)
	}
	s := q.Series[0]
	if s.Site != "bristol" || s.Asset != "house-01/meter" || s.Phase != "total" || s.Unit != "W" || len(s.Points) != 60 {
		t.Fatalf("series %+v", s)
	}
	if s.Points[59] != [2]float64{float64(start + 59*60_000), 59} {
		t.Errorf("last point %v", s.Points[59])
	}
	from := time.UnixMilli(start + 10*60_000).UTC().Format(time.RFC3339)
	path := "/api/v1/readings?quantity=active_power&from=" + url.QueryEscape(from) + "&to=" + itoa(start+20*60_000)
	f.must(200, "GET", path, f.read, nil).json(t, &q)
	if len(q.Series) != 1 || len(q.Series[0].Points) != 10 || q.Series[0].Points[0][1] != 10 {
		t.Fatalf("range query %+v", q.Series)
	}
	f.must(200, "GET", "/api/v1/readings?asset=house-01/meter&phase=L1", f.read, nil).json(t, &q)
	if len(q.Series) != 0 {
		t.Errorf("L1 series %+v", q.Series)
	}
	f.must(200, "GET", "/api/v1/readings?asset=nothing", f.read, nil).json(t, &q)
	if len(q.Series) != 0 {
		t.Errorf("unknown asset series %+v", q.Series)
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func TestQueryAggregated(t *testing.T) {
	f := newFixture(t)
	start := seedSeries(t, f)
	var q seriesReply
	f.must(200, "GET", "/api/v1/readings?quantity=active_power&step=15m&agg=max", f.read, nil).json(t, &q)
	if len(q.Series) != 1 || len(q.Series[0].Points) != 4 {
		t.Fatalf("15 min max %+v", q.Series)
	}
	for i, p := range q.Series[0].Points {
		if p[0] != float64(start+int64(i)*900_000) || p[1] != float64(15*i+14) {
			t.Errorf("interval %d: %v, want [%d %d]", i, p, start+int64(i)*900_000, 15*i+14)
		}
	}
	f.must(200, "GET", "/api/v1/readings?quantity=active_power&step=1h", f.read, nil).json(t, &q)
	if len(q.Series[0].Points) != 1 || q.Series[0].Points[0][1] != 29.5 {
		t.Errorf("hourly avg %v, want 29.5", q.Series[0].Points)
	}
	f.must(200, "GET", "/api/v1/readings?quantity=active_power&step=1d&agg=count", f.read, nil).json(t, &q)
	if len(q.Series[0].Points) != 1 || q.Series[0].Points[0][1] != 60 {
		t.Errorf("daily count %v, want 60", q.Series[0].Points)
	}
	f.must(200, "GET", "/api/v1/readings?quantity=energy_active_import&step=15m&agg=delta", f.read, nil).json(t, &q)
	pts := q.Series[0].Points
	if len(pts) != 4 || pts[1][1] != 150 {
		t.Errorf("15 min delta %v, want 150 Wh in the second interval", pts)
	}
}

func TestQueryCSV(t *testing.T) {
	f := newFixture(t)
	seedSeries(t, f)
	for _, h := range [][]string{{"Accept: text/csv"}, nil} {
		path := "/api/v1/readings?quantity=active_power&to=1714564920000"
		if h == nil {
			path += "&format=csv"
		}
		r := f.must(200, "GET", path, f.read, nil, h...)
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
			t.Fatalf("content type %q", ct)
		}
		rows, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		want := [][]string{
			{"site", "asset", "quantity", "phase", "unit", "time", "value"},
			{"bristol", "house-01/meter", "active_power", "total", "W", "2024-05-01T12:00:00.000Z", "0"},
			{"bristol", "house-01/meter", "active_power", "total", "W", "2024-05-01T12:01:00.000Z", "1"},
		}
		if len(rows) != 3 {
			t.Fatalf("rows %v", rows)
		}
		for i := range want {
			if strings.Join(rows[i], ",") != strings.Join(want[i], ",") {
				t.Errorf("row %d: %v, want %v", i, rows[i], want[i])
			}
		}
	}
	r := f.must(200, "GET", "/api/v1/readings?quantity=active_power&step=30m&agg=sum&format=csv", f.read, nil)
	if !strings.Contains(string(r.body), "2024-05-01T12:30:00.000Z,1335\n") {
		t.Errorf("aggregated CSV:\n%s", r.body)
	}
}

func TestQueryLargeIsStreamed(t *testing.T) {
	f := newFixture(t)
	start := ms(t, "2024-05-01T00:00:00Z")
	var body []any
	for i := 0; i < 5000; i++ {
		body = append(body, reading("house-01/meter", "active_power", start+int64(i)*1000, float64(i)))
	}
	f.post(t, f.ingest, body)
	r := f.must(200, "GET", "/api/v1/readings", f.read, nil)
	if r.header.Get("Content-Length") != "" {
		t.Errorf("large reply has a Content-Length; it should be streamed")
	}
	var q seriesReply
	r.json(t, &q)
	if len(q.Series) != 1 || len(q.Series[0].Points) != 5000 {
		t.Fatalf("got %d series", len(q.Series))
	}
}

func TestQueryBadParameters(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct{ query, param string }{
		{"from=yesterday", "from"},
		{"to=2024-13-01T00:00:00Z", "to"},
		{"from=2024-05-02&to=2024-05-01", "to"},
		{"step=fortnight", "step"},
		{"step=-5m", "step"},
		{"step=1.5ms", "step"},
		{"step=99999d", "step"},
		{"agg=avg", "agg"},
		{"step=15m&agg=median", "agg"},
		{"quantity=powr", "quantity"},
		{"phase=L9", "phase"},
		{"site=Bristol", "site"},
		{"format=xml", "format"},
		{"color=red", "color"},
		{"asset=a&asset=b", "asset"},
		{"from=99999999999999999999", "from"},
	} {
		r := f.must(400, "GET", "/api/v1/readings?"+c.query, f.read, nil)
		msg, code := r.errorBody(t)
		if code != CodeInvalidParameter || !strings.Contains(msg, "parameter "+c.param) {
			t.Errorf("%s: %q %q, want it to name parameter %s", c.query, msg, code, c.param)
		}
	}
}

func TestParseQuery(t *testing.T) {
	v, _ := url.ParseQuery("site=bristol&asset=a%2Fb&quantity=voltage&phase=l2&from=1714521600000&to=2024-05-02T00:00:00.5Z&step=1d&agg=delta")
	q, err := parseQuery(v, testCatalogue)
	if err != nil {
		t.Fatal(err)
	}
	if q.site != "bristol" || q.sel.Asset != "a/b" || q.sel.Quantity != "voltage" || q.sel.Phase == nil || *q.sel.Phase != "L2" ||
		q.sel.From != 1714521600000 || q.sel.To != 1714608000500 || q.step != 24*time.Hour || q.agg != store.AggDelta {
		t.Fatalf("parsed %+v", q)
	}
	v, _ = url.ParseQuery("step=15m")
	if q, err = parseQuery(v, testCatalogue); err != nil || q.agg != store.AggAvg {
		t.Fatalf("default agg: %+v %v", q, err)
	}
}

// FuzzParseQuery checks that no query string makes the parser panic, and
// that what it accepts is consistent.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"", "site=bristol", "from=2024-05-01&to=2024-05-02", "step=15m&agg=avg", "step=1d", "from=-1", "phase=total",
		"quantity=active_power&phase=L1", "to=0", "step=9223372036854775807ns", "from=2024-05-01T00:00:00+14:00", "%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := parseQuery(v, testCatalogue)
		if err != nil {
			if _, ok := err.(*apiError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if q.sel.To != 0 && q.sel.To <= q.sel.From {
			t.Fatalf("accepted to %d not after from %d", q.sel.To, q.sel.From)
		}
		if (q.step == 0) != (q.agg == "") || q.step < 0 || q.step > maxStep {
			t.Fatalf("accepted step %v agg %q", q.step, q.agg)
		}
	})
}

func TestLatest(t *testing.T) {
	f := newFixture(t)
	start := seedSeries(t, f)
	var out struct {
		Readings []struct {
			Site, Asset, Quantity, Phase, Unit string
			Time                               int64
			Value                              float64
		}
	}
	f.must(200, "GET", "/api/v1/latest", f.read, nil).json(t, &out)
	if len(out.Readings) != 2 {
		t.Fatalf("latest %+v", out)
	}
	r := out.Readings[1]
	if r.Quantity != "energy_active_import" || r.Unit != "Wh" || r.Time != start+59*60_000 || r.Value != 1590 || r.Phase != "total" {
		t.Errorf("latest energy %+v", r)
	}
	c := f.must(200, "GET", "/api/v1/latest", f.read, nil, "Accept: text/csv")
	if !strings.Contains(string(c.body), "bristol,house-01/meter,energy_active_import,total,Wh,2024-05-01T12:59:00.000Z,1590\n") {
		t.Errorf("latest CSV:\n%s", c.body)
	}
	f.must(200, "GET", "/api/v1/latest?site=athens", f.athensRead, nil).json(t, &out)
	if len(out.Readings) != 0 {
		t.Errorf("athens latest %+v", out)
	}
	f.must(400, "GET", "/api/v1/latest?since=1", f.read, nil)
}
