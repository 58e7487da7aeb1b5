package platform

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gridlink/gridlink/store"
)

type recordingTB struct {
	testing.TB
	errs []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestOpenAPICheckerCatchesMismatch makes sure the checker used by every
// test does fail on a reply that breaks the document.
func TestOpenAPICheckerCatchesMismatch(t *testing.T) {
	for _, c := range []struct {
		status int
		body   string
		ok     bool
	}{
		{200, `{"sites":[{"id":"bristol","name":"Bristol"}]}`, true},
		{200, `{"sites":[{"id":"Not A Site","name":"x"}]}`, false},
		{200, `{"sites":[{"id":"bristol"}]}`, false},
		{200, `{"sites":[],"extra":1}`, false},
		{403, `{"error":"no","code":"wrong_site"}`, true},
		{403, `{"error":"no","code":"nonsense"}`, false},
		{418, `{"error":"teapot","code":"internal"}`, false},
	} {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(c.status)
			fmt.Fprint(w, c.body)
		}))
		rec := &recordingTB{TB: t}
		chk := newOpenAPIChecker(rec)
		res, err := (&http.Client{Transport: chk}).Get(ts.URL + "/api/v1/sites")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		ts.Close()
		if ok := len(rec.errs) == 0; ok != c.ok {
			t.Errorf("%d %s: valid=%v, want %v (%v)", c.status, c.body, ok, c.ok, rec.errs)
		}
	}
}

// TestOpenAPIConformance drives every documented operation with real
// requests; the client validates each reply against the document, and the
// test checks that each operation answered at least its success status and
// that the document lists exactly the server's routes.
func TestOpenAPIConformance(t *testing.T) {
	f := newFixture(t)
	at := ms(t, "2024-05-01T12:00:00Z")
	f.must(200, "GET", "/healthz", "", nil)
	f.must(200, "GET", "/readyz", "", nil)
	f.must(200, "GET", "/metrics", "", nil)
	f.must(200, "GET", "/api/v1/openapi.json", "", nil)
	f.must(200, "GET", "/api/v1/quantities", "", nil)
	f.must(200, "GET", "/api/v1/keys", f.admin, nil)
	_, id := f.key("bristol", "read")
	f.must(200, "DELETE", "/api/v1/keys/"+id, f.admin, nil)
	f.must(404, "DELETE", "/api/v1/keys/"+id+"x", f.admin, nil)
	f.must(200, "GET", "/api/v1/sites", f.admin, nil)
	f.must(200, "POST", "/api/v1/sites", f.admin, map[string]string{"id": "bristol", "name": "Bristol"})
	f.must(200, "GET", "/api/v1/sites/bristol", f.read, nil)
	f.must(200, "GET", "/api/v1/sites/bristol/assets", f.read, nil)
	f.must(200, "POST", "/api/v1/sites/bristol/assets", f.admin, map[string]any{"id": "house-01/meter", "type": "smart_meter",
		"location": map[string]any{"lat": 51.4, "lon": -2.6, "address": "1 Road"}})
	f.must(200, "GET", "/api/v1/sites/bristol/assets/house-01/meter", f.read, nil)
	f.must(200, "POST", "/api/v1/readings", f.ingest, []any{
		reading("house-01/meter", "active_power", at, 1), reading("house-01/meter", "energy_active_import", at, 10),
		reading("house-01/meter", "energy_active_import", at+60_000, 25), reading("nope", "active_power", at, 1)})
	f.must(200, "POST", "/api/v1/batches", f.ingest, "asset,quantity,time,value\nhouse-01/meter,active_power,1714564900000,3\nx,y,z,w\n", "Content-Type: text/csv")
	f.must(200, "GET", "/api/v1/readings", f.read, nil)
	f.must(200, "GET", "/api/v1/readings?step=15m&agg=delta&quantity=energy_active_import", f.read, nil)
	f.must(200, "GET", "/api/v1/readings", f.read, nil, "Accept: text/csv")
	f.must(200, "GET", "/api/v1/latest", f.read, nil)
	f.must(200, "GET", "/api/v1/latest?format=csv", f.read, nil)
	f.must(201, "POST", "/api/v1/sites/bristol/assets", f.admin, map[string]any{"id": "evse-01", "type": "charging_point"})
	f.must(200, "POST", "/api/v1/sites/bristol/chargepoints", f.admin, map[string]string{"id": "evse-01", "password": "0123456789abcdef0123"})
	f.must(200, "POST", "/api/v1/sites/bristol/chargepoints", f.admin, map[string]string{"id": "ALF-2217345", "password": "0123456789abcdef0123", "asset": "evse-01"})
	f.must(404, "POST", "/api/v1/sites/bristol/chargepoints", f.admin, map[string]string{"id": "ALF-2217345", "password": "0123456789abcdef0123", "asset": "evse-99"})
	f.must(400, "POST", "/api/v1/sites/bristol/chargepoints", f.admin, map[string]string{"id": "ALF-2217345", "password": "0123456789abcdef0123", "asset": "house-01/meter"})
	f.must(201, "POST", "/api/v1/sites/athens/assets", f.admin, map[string]any{"id": "evse-01", "type": "charging_point"})
	f.must(409, "POST", "/api/v1/sites/athens/chargepoints", f.admin, map[string]string{"id": "evse-01", "password": "0123456789abcdef0123"})
	f.must(200, "DELETE", "/api/v1/sites/bristol/chargepoints/evse-01", f.admin, nil)
	f.must(200, "POST", "/api/v1/sites/bristol/idtags", f.admin, map[string]any{"tag": "04A2B3C4D5", "expires": "2030-01-01T00:00:00Z"})
	f.must(200, "GET", "/api/v1/sites/bristol/idtags", f.admin, nil)
	f.must(200, "DELETE", "/api/v1/sites/bristol/idtags/04a2b3c4d5", f.admin, nil)
	if err := f.st.PutSession(context.Background(), store.Session{Site: "bristol", ChargePoint: "evse-01", Connector: 1, TransactionID: 7,
		IDTag: "04A2B3C4D5", Start: time.UnixMilli(at), MeterStartWh: 1000, Stop: time.UnixMilli(at + 3_600_000), MeterStopWh: 8200, StopReason: "Local"}); err != nil {
		t.Fatal(err)
	}
	f.must(200, "GET", "/api/v1/sites/bristol/sessions?charge_point=evse-01&from=2024-05-01T00:00:00Z&limit=10", f.read, nil)
	f.must(200, "POST", "/api/v1/readings", f.ingest, []any{reading("evse-01", "ev_charging_power", at+60_000, 7400)})
	f.must(200, "GET", "/api/v1/sites/bristol/sessions?meter_values=true", f.read, nil)
	if r := f.must(200, "GET", "/api/v1/sites/bristol/sessions/evse-01/7", f.read, nil); !strings.Contains(string(r.body), `"points":[[`) {
		t.Errorf("session without its meter values: %s", r.body)
	}
	f.must(404, "GET", "/api/v1/sites/bristol/sessions/evse-01/8", f.read, nil)
	cmds := "/api/v1/sites/bristol/chargepoints/evse-09/commands"
	f.must(404, "POST", cmds, f.admin, map[string]any{"action": "TriggerMessage", "message": "Heartbeat"}) // no central system yet
	startRealChargers(t, f)
	f.must(200, "POST", cmds, f.admin, map[string]any{"action": "TriggerMessage", "message": "Heartbeat"})
	f.must(200, "POST", cmds, f.admin, map[string]any{"action": "GetConfiguration"})
	f.must(400, "POST", cmds, f.admin, map[string]any{"action": "Explode"})
	f.must(404, "POST", "/api/v1/sites/athens/chargepoints/evse-09/commands", f.admin, map[string]any{"action": "Reset"})
	f.must(400, "GET", "/api/v1/readings?from=never", f.read, nil)
	f.must(413, "POST", "/api/v1/readings", f.ingest, strings.Repeat(" ", 2<<20))
	f.must(415, "POST", "/api/v1/batches", f.ingest, "x", "Content-Type: image/png")
	exerciseLedgerRoutes(t, f)
	exerciseITCRoutes(t, f)

	// The stream: only the status and headers are checked.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.ts.URL+"/api/v1/stream", nil)
	req.Header.Set("Authorization", "Bearer "+f.read)
	res, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(res.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cancel()
	res.Body.Close()

	for _, op := range f.oa.operations() {
		method, path, _ := strings.Cut(op, " ")
		want := 200
		if method == "POST" && (path == "/api/v1/keys" || path == "/api/v1/itc/runs") {
			want = 201
		}
		if !f.oa.saw(op, want) {
			t.Errorf("%s never answered %d in this test", op, want)
		}
	}
	// The document and the server have the same routes.
	var doc, srv []string
	for _, op := range f.oa.operations() {
		doc = append(doc, op)
	}
	for _, r := range routePatterns() {
		srv = append(srv, strings.Replace(r, "{id...}", "{id}", 1))
	}
	sort.Strings(doc)
	sort.Strings(srv)
	if strings.Join(doc, "\n") != strings.Join(srv, "\n") {
		t.Errorf("documented operations:\n%s\nserved routes:\n%s", strings.Join(doc, "\n"), strings.Join(srv, "\n"))
	}
}
