package platform

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
)

// fixture is a platform with two sites, assets and a key of each scope.
type fixture struct {
	*testEnv
	ingest, read, restricted string // keys of bristol
	athensRead               string // a read key of athens
}

func newFixture(t testing.TB, mods ...func(*Config)) *fixture {
	e := newEnv(t, mods...)
	f := &fixture{testEnv: e}
	e.site("bristol")
	e.site("athens")
	e.asset("bristol", "house-01/meter", "smart_meter")
	e.asset("bristol", "house-01/band", "physiological_sensor")
	e.asset("bristol", "house-01/door", "environmental_sensor")
	e.asset("athens", "pv-1", "inverter")
	f.ingest, _ = e.key("bristol", "ingest")
	f.read, _ = e.key("bristol", "read")
	f.restricted, _ = e.key("bristol", "read:restricted")
	f.athensRead, _ = e.key("athens", "read")
	return f
}

func TestHealthz(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusOK, "GET", "/healthz", "", nil)
	e.must(http.StatusOK, "GET", "/readyz", "", nil)
}

func TestUnknownRouteAndMethodAreJSON(t *testing.T) {
	e := newEnv(t)
	r := e.must(http.StatusNotFound, "GET", "/api/v1/nothing", e.admin, nil)
	if msg, code := r.errorBody(t); code != CodeNotFound || !strings.Contains(msg, "/api/v1/nothing") {
		t.Errorf("404 reply %q %q", msg, code)
	}
	r = e.must(http.StatusMethodNotAllowed, "PUT", "/api/v1/readings", e.admin, "{}")
	if msg, code := r.errorBody(t); code != CodeMethodNotAllowed || !strings.Contains(msg, "PUT") {
		t.Errorf("405 reply %q %q", msg, code)
	}
	if r.header.Get("Content-Type") != "application/json" {
		t.Errorf("405 content type %q", r.header.Get("Content-Type"))
	}
}

func TestAuthMatrix(t *testing.T) {
	f := newFixture(t)
	revoked, revokedID := f.key("bristol", "read")
	f.must(http.StatusOK, "GET", "/api/v1/latest", revoked, nil) // cached as valid
	f.must(http.StatusOK, "DELETE", "/api/v1/keys/"+revokedID, f.admin, nil)
	bogus := "glk_" + strings.Repeat("A", 43)

	cases := []struct {
		name         string
		method, path string
		key          string
		body         any
		status       int
		code         string
	}{
		{"no key", "GET", "/api/v1/latest?site=bristol", "", nil, 401, CodeMissingKey},
		{"basic auth", "GET", "/api/v1/latest", "", nil, 401, CodeMissingKey},
		{"unknown key", "GET", "/api/v1/latest", bogus, nil, 401, CodeUnknownKey},
		{"malformed key", "GET", "/api/v1/latest", "not-a-key", nil, 401, CodeUnknownKey},
		{"revoked key", "GET", "/api/v1/latest", revoked, nil, 401, CodeRevokedKey},
		{"read other site", "GET", "/api/v1/latest?site=athens", f.read, nil, 403, CodeWrongSite},
		{"query other site", "GET", "/api/v1/readings?site=athens", f.read, nil, 403, CodeWrongSite},
		{"assets of other site", "GET", "/api/v1/sites/athens/assets", f.read, nil, 403, CodeWrongSite},
		{"ingest cannot read", "GET", "/api/v1/readings", f.ingest, nil, 403, CodeWrongScope},
		{"ingest cannot read latest", "GET", "/api/v1/latest", f.ingest, nil, 403, CodeWrongScope},
		{"ingest cannot stream", "GET", "/api/v1/stream", f.ingest, nil, 403, CodeWrongScope},
		{"ingest cannot list assets", "GET", "/api/v1/sites/bristol/assets", f.ingest, nil, 403, CodeWrongScope},
		{"read cannot write", "POST", "/api/v1/readings", f.read, "[]", 403, CodeWrongScope},
		{"restricted cannot write", "POST", "/api/v1/readings", f.restricted, "[]", 403, CodeWrongScope},
		{"ingest other site", "POST", "/api/v1/readings?site=athens", f.ingest, "[]", 403, CodeWrongSite},
		{"read cannot make keys", "POST", "/api/v1/keys", f.read, map[string]string{"scope": "admin"}, 403, CodeWrongScope},
		{"read cannot list keys", "GET", "/api/v1/keys", f.read, nil, 403, CodeWrongScope},
		{"ingest cannot revoke", "DELETE", "/api/v1/keys/" + revokedID, f.ingest, nil, 403, CodeWrongScope},
		{"read cannot make sites", "POST", "/api/v1/sites", f.read, map[string]string{"id": "x"}, 403, CodeWrongScope},
		{"read cannot make assets", "POST", "/api/v1/sites/bristol/assets", f.read, map[string]string{"id": "x", "type": "gateway"}, 403, CodeWrongScope},
		{"health data hidden from read", "GET", "/api/v1/readings?quantity=heart_rate", f.read, nil, 403, CodeRestricted},
		{"health stream hidden from read", "GET", "/api/v1/stream?quantity=heart_rate", f.read, nil, 403, CodeRestricted},
		{"admin must name site to read", "GET", "/api/v1/readings", f.admin, nil, 400, CodeInvalidParameter},
		{"admin must name site to write", "POST", "/api/v1/readings", f.admin, "[]", 400, CodeInvalidParameter},

		{"read own site", "GET", "/api/v1/latest", f.read, nil, 200, ""},
		{"read own site named", "GET", "/api/v1/readings?site=bristol", f.read, nil, 200, ""},
		{"read own assets", "GET", "/api/v1/sites/bristol/assets", f.read, nil, 200, ""},
		{"read own asset", "GET", "/api/v1/sites/bristol/assets/house-01/meter", f.read, nil, 200, ""},
		{"restricted reads health", "GET", "/api/v1/readings?quantity=heart_rate", f.restricted, nil, 200, ""},
		{"admin reads any site", "GET", "/api/v1/latest?site=athens", f.admin, nil, 200, ""},
		{"admin writes any site", "POST", "/api/v1/readings?site=athens", f.admin, "[]", 200, ""},
		{"ingest writes own site", "POST", "/api/v1/readings", f.ingest, "[]", 200, ""},
		{"ingest writes own site named", "POST", "/api/v1/readings?site=bristol", f.ingest, "[]", 200, ""},
		{"quantities need no key", "GET", "/api/v1/quantities", "", nil, 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var header []string
			key := c.key
			if c.name == "basic auth" {
				header = append(header, "Authorization: Basic dXNlcjpwYXNz")
			}
			r := f.do(c.method, c.path, key, c.body, header...)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			if c.code != "" {
				if _, code := r.errorBody(t); code != c.code {
					t.Errorf("code %q, want %q (%s)", code, c.code, r.body)
				}
			}
			if c.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

func TestRestrictedQuantityHiddenFromRead(t *testing.T) {
	f := newFixture(t)
	at := ms(t, "2024-05-01T12:00:00Z")
	f.must(200, "POST", "/api/v1/readings", f.ingest, []any{
		reading("house-01/meter", "active_power", at, 1500),
		reading("house-01/band", "heart_rate", at, 72),
	})
	count := func(key, path string) (series int, hasHR bool) {
		var out struct{ Series []struct{ Quantity string } }
		f.must(200, "GET", path, key, nil).json(t, &out)
		for _, s := range out.Series {
			if s.Quantity == "heart_rate" {
				hasHR = true
			}
		}
		return len(out.Series), hasHR
	}
	if n, hr := count(f.read, "/api/v1/readings"); n != 1 || hr {
		t.Errorf("read key: %d series, heart rate %v; want 1 without heart rate", n, hr)
	}
	if n, hr := count(f.restricted, "/api/v1/readings"); n != 2 || !hr {
		t.Errorf("read:restricted key: %d series, heart rate %v; want 2 with heart rate", n, hr)
	}
	if n, hr := count(f.admin, "/api/v1/readings?site=bristol"); n != 2 || !hr {
		t.Errorf("admin key: %d series, heart rate %v; want 2 with heart rate", n, hr)
	}
	var latest struct{ Readings []struct{ Quantity string } }
	f.must(200, "GET", "/api/v1/latest", f.read, nil).json(t, &latest)
	if len(latest.Readings) != 1 || latest.Readings[0].Quantity != "active_power" {
		t.Errorf("latest for read key: %+v", latest.Readings)
	}
	f.must(200, "GET", "/api/v1/latest", f.restricted, nil).json(t, &latest)
	if len(latest.Readings) != 2 {
		t.Errorf("latest for read:restricted key: %+v", latest.Readings)
	}
	csv := f.must(200, "GET", "/api/v1/readings?format=csv", f.read, nil)
	if strings.Contains(string(csv.body), "heart_rate") {
		t.Errorf("CSV for read key holds heart rate:\n%s", csv.body)
	}
}

func TestKeys(t *testing.T) {
	e := newEnv(t)
	e.site("bristol")
	r := e.must(201, "POST", "/api/v1/keys", e.admin, map[string]string{"site": "bristol", "scope": "ingest", "name": "gw-1"})
	var k struct {
		ID, Key, Site, Scope, Name string
		CreatedAt                  string `json:"created_at"`
	}
	r.json(t, &k)
	if !strings.HasPrefix(k.Key, "glk_") || k.Site != "bristol" || k.Scope != "ingest" || k.Name != "gw-1" || k.CreatedAt == "" {
		t.Fatalf("created key %+v", k)
	}
	list := e.must(200, "GET", "/api/v1/keys", e.admin, nil)
	if strings.Contains(string(list.body), k.Key) || strings.Contains(string(list.body), "hash") {
		t.Fatalf("listing shows a secret or hash: %s", list.body)
	}
	if !strings.Contains(string(list.body), k.ID) {
		t.Fatalf("listing lacks the new key: %s", list.body)
	}
	for _, bad := range []map[string]string{
		{"site": "bristol", "scope": "write"},
		{"site": "", "scope": "read"},
		{"site": "bristol", "scope": "admin"},
		{"site": "Bristol!", "scope": "read"},
	} {
		r := e.must(400, "POST", "/api/v1/keys", e.admin, bad)
		if msg, _ := r.errorBody(t); msg == "" {
			t.Errorf("no message for %v", bad)
		}
	}
	r = e.must(404, "POST", "/api/v1/keys", e.admin, map[string]string{"site": "nowhere", "scope": "read"})
	if msg, _ := r.errorBody(t); !strings.Contains(msg, "nowhere") {
		t.Errorf("404 does not name the site: %s", msg)
	}
	e.must(400, "POST", "/api/v1/keys", e.admin, `{"site":"bristol","scope":"read","extra":1}`)
	e.must(400, "POST", "/api/v1/keys", e.admin, `{"site":`)
	e.must(415, "POST", "/api/v1/keys", e.admin, `{}`, "Content-Type: text/plain")
	e.must(404, "DELETE", "/api/v1/keys/key_nothing", e.admin, nil)

	e.must(200, "POST", "/api/v1/readings", k.Key, "[]")
	var revoked struct {
		RevokedAt string `json:"revoked_at"`
	}
	e.must(200, "DELETE", "/api/v1/keys/"+k.ID, e.admin, nil).json(t, &revoked)
	if revoked.RevokedAt == "" {
		t.Error("revoked key without revoked_at")
	}
	r = e.must(401, "POST", "/api/v1/readings", k.Key, "[]")
	if _, code := r.errorBody(t); code != CodeRevokedKey {
		t.Errorf("code %s, want %s", code, CodeRevokedKey)
	}
}

func TestSitesAndAssets(t *testing.T) {
	f := newFixture(t)
	var sites struct{ Sites []struct{ ID, Name string } }
	f.must(200, "GET", "/api/v1/sites", f.admin, nil).json(t, &sites)
	if len(sites.Sites) != 2 || sites.Sites[0].ID != "athens" || sites.Sites[1].Name != "BRISTOL" {
		t.Fatalf("admin sites %+v", sites)
	}
	f.must(200, "GET", "/api/v1/sites", f.read, nil).json(t, &sites)
	if len(sites.Sites) != 1 || sites.Sites[0].ID != "bristol" {
		t.Fatalf("read key sites %+v", sites)
	}
	f.must(403, "GET", "/api/v1/sites", f.ingest, nil)
	f.must(200, "GET", "/api/v1/sites/bristol", f.read, nil)
	f.must(403, "GET", "/api/v1/sites/athens", f.read, nil)
	f.must(404, "GET", "/api/v1/sites/nowhere", f.admin, nil)
	f.must(400, "GET", "/api/v1/sites/Not_A_Site", f.admin, nil)
	f.must(200, "POST", "/api/v1/sites", f.admin, map[string]string{"id": "bristol", "name": "Bristol", "country": "GB", "timezone": "Europe/London"})

	for _, bad := range []map[string]string{
		{"id": "Bristol"}, {"id": ""}, {"id": strings.Repeat("a", 65)}, {"id": "ok", "country": "gb"}, {"id": "ok", "timezone": "../etc/passwd"},
	} {
		r := f.must(400, "POST", "/api/v1/sites", f.admin, bad)
		msg, code := r.errorBody(t)
		if code != CodeInvalidBody || !strings.Contains(msg, "field") {
			t.Errorf("%v: %s %s", bad, code, msg)
		}
	}

	var as struct {
		Assets []struct{ ID, Type, Site string }
	}
	f.must(200, "GET", "/api/v1/sites/bristol/assets", f.read, nil).json(t, &as)
	if len(as.Assets) != 3 || as.Assets[0].Site != "bristol" {
		t.Fatalf("assets %+v", as)
	}
	var a struct{ ID, Type, Make, Model string }
	r := f.must(201, "POST", "/api/v1/sites/bristol/assets", f.admin, map[string]any{
		"id": "house-02/meter", "type": "smart_meter", "make": "Shelly", "model": "EM",
		"location": map[string]any{"lat": 51.45, "lon": -2.58}})
	r.json(t, &a)
	if a.Make != "Shelly" {
		t.Errorf("asset %+v", a)
	}
	f.must(200, "GET", "/api/v1/sites/bristol/assets/house-02/meter", f.read, nil).json(t, &a)
	if a.ID != "house-02/meter" || a.Model != "EM" {
		t.Errorf("asset %+v", a)
	}
	f.must(200, "POST", "/api/v1/sites/bristol/assets", f.admin, map[string]any{"id": "house-02/meter", "type": "smart_meter"})
	f.must(404, "GET", "/api/v1/sites/bristol/assets/nothing", f.read, nil)
	f.must(404, "GET", "/api/v1/sites/nowhere/assets", f.admin, nil)
	f.must(404, "POST", "/api/v1/sites/nowhere/assets", f.admin, map[string]any{"id": "x", "type": "gateway"})
	r = f.must(400, "POST", "/api/v1/sites/bristol/assets", f.admin, map[string]any{"id": "x", "type": "toaster"})
	if msg, _ := r.errorBody(t); !strings.Contains(msg, "toaster") || !strings.Contains(msg, "smart_meter") {
		t.Errorf("bad type message %q", msg)
	}
	for _, bad := range []map[string]any{
		{"id": "", "type": "gateway"}, {"id": " x", "type": "gateway"}, {"id": "a//b", "type": "gateway"},
		{"id": "x", "type": "gateway", "site": "athens"}, {"id": "x", "type": "gateway", "location": map[string]any{"lat": 91}},
	} {
		f.must(400, "POST", "/api/v1/sites/bristol/assets", f.admin, bad)
	}
}

func TestQuantities(t *testing.T) {
	e := newEnv(t)
	var out struct {
		Quantities []struct {
			Name, Unit, Kind, Class, OBIS string
			Restricted, Phased            bool
			States                        []string
		}
	}
	e.must(200, "GET", "/api/v1/quantities", "", nil).json(t, &out)
	byName := map[string]int{}
	for i, q := range out.Quantities {
		byName[q.Name] = i
	}
	ap, ok := byName["active_power"]
	if !ok || out.Quantities[ap].Unit != "W" || !out.Quantities[ap].Phased {
		t.Errorf("active_power: %+v", out.Quantities[ap])
	}
	hr, ok := byName["heart_rate"]
	if !ok || !out.Quantities[hr].Restricted || out.Quantities[hr].Class != "special_health" {
		t.Errorf("heart_rate: %+v", out.Quantities[hr])
	}
	if len(out.Quantities) != len(testCatalogue.Quantities()) {
		t.Errorf("%d quantities, catalogue has %d", len(out.Quantities), len(testCatalogue.Quantities()))
	}
}

func TestMetrics(t *testing.T) {
	f := newFixture(t)
	at := ms(t, "2024-05-01T12:00:00Z")
	f.must(200, "POST", "/api/v1/readings", f.ingest, []any{
		reading("house-01/meter", "active_power", at, 1), reading("house-01/meter", "nonsense", at, 1)})
	r := f.must(200, "GET", "/metrics", "", nil)
	body := string(r.body)
	for _, want := range []string{
		`gridlink_http_requests_total{code="200",route="POST /api/v1/readings"} 1`,
		`gridlink_ingest_readings_total{result="accepted"} 1`,
		`gridlink_ingest_readings_total{result="rejected"} 1`,
		`gridlink_http_request_duration_seconds_bucket{route="POST /api/v1/readings"`,
		`gridlink_stream_subscribers 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without a store succeeded")
	}
	st := newTestStore(t)
	if _, err := New(Config{Store: st, MaxBodyBytes: -1}); err == nil {
		t.Error("negative MaxBodyBytes accepted")
	}
	// Two servers on one registry collide; each needs its own.
	s1, err := New(Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	s1.Close()
}

// brokenStore fails every site lookup, as a store that lost its disk.
type brokenStore struct{ store.Store }

func (brokenStore) Site(context.Context, string) (cim.Site, error) {
	return cim.Site{}, errors.New("disk unreachable")
}

func TestReadyzFailsWithTheStore(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Store = brokenStore{c.Store} })
	r := e.must(503, "GET", "/readyz", "", nil)
	if msg, code := r.errorBody(t); code != CodeUnavailable || !strings.Contains(msg, "disk unreachable") {
		t.Errorf("readyz %q %q", msg, code)
	}
	e.must(200, "GET", "/healthz", "", nil)
}
