package platform

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/platform/auth"
	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/sqlite"
)

// newTestStore opens a SQLite store in a temporary directory.
func newTestStore(t testing.TB) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{NoSync: true})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return st
}

// testEnv is a platform behind a real HTTP server, with an admin key, and
// a client that checks every response against the OpenAPI document.
type testEnv struct {
	t      testing.TB
	st     store.Store
	srv    *Server
	ts     *httptest.Server
	reg    *prometheus.Registry
	client *http.Client
	oa     *openAPIChecker
	admin  string
}

func newEnv(t testing.TB, mods ...func(*Config)) *testEnv {
	t.Helper()
	e := &testEnv{t: t, st: newTestStore(t), reg: prometheus.NewRegistry()}
	cfg := Config{Store: e.st, Registerer: e.reg, Catalogue: testCatalogue}
	for _, m := range mods {
		m(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	e.srv = srv
	e.ts = httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		e.ts.Close()
	})
	e.oa = newOpenAPIChecker(t)
	e.client = &http.Client{Transport: e.oa}
	secret, k := auth.NewKey("", "admin", "test-admin", time.Now())
	if err := e.st.CreateKey(context.Background(), k); err != nil {
		t.Fatalf("create admin key: %v", err)
	}
	e.admin = secret
	return e
}

var testCatalogue = cim.Default()

// response is a finished exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// errorBody decodes an error reply.
func (r response) errorBody(t testing.TB) (msg, code string) {
	t.Helper()
	var e struct{ Error, Code string }
	r.json(t, &e)
	if e.Error == "" || e.Code == "" {
		t.Fatalf("error reply without error or code: %s", r.body)
	}
	return e.Error, e.Code
}

// do sends a request. body may be nil, a string, []byte or a value to
// encode as JSON; header holds "Name: value" lines.
func (e *testEnv) do(method, path, key string, body any, header ...string) response {
	e.t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ct = strings.NewReader(b), "application/json"
	case []byte:
		rd, ct = bytes.NewReader(b), "application/json"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd, ct = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for _, h := range header {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Set(name, strings.TrimSpace(value))
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// must sends a request and fails unless the status is want.
func (e *testEnv) must(want int, method, path, key string, body any, header ...string) response {
	e.t.Helper()
	r := e.do(method, path, key, body, header...)
	if r.status != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.body)
	}
	return r
}

// site creates a site through the API.
func (e *testEnv) site(id string) {
	e.t.Helper()
	e.must(http.StatusCreated, "POST", "/api/v1/sites", e.admin, map[string]string{"id": id, "name": strings.ToUpper(id)})
}

// asset creates an asset through the API.
func (e *testEnv) asset(site, id, typ string) {
	e.t.Helper()
	e.must(http.StatusCreated, "POST", "/api/v1/sites/"+site+"/assets", e.admin, map[string]string{"id": id, "type": typ})
}

// key makes a key through the API and returns its secret and id.
func (e *testEnv) key(site, scope string) (secret, id string) {
	e.t.Helper()
	r := e.must(http.StatusCreated, "POST", "/api/v1/keys", e.admin, map[string]string{"site": site, "scope": scope, "name": scope + "@" + site})
	var k struct{ ID, Key string }
	r.json(e.t, &k)
	return k.Key, k.ID
}

// The OpenAPI document, loaded once for every test.
var (
	docOnce sync.Once
	docT    *openapi3.T
	docErr  error
)

func loadDoc() (*openapi3.T, error) {
	docOnce.Do(func() {
		l := openapi3.NewLoader()
		docT, docErr = l.LoadFromData(openAPIDoc)
		if docErr == nil {
			docErr = docT.Validate(context.Background())
		}
	})
	return docT, docErr
}

// openAPIChecker is an http.RoundTripper that validates every response of
// a documented operation against the OpenAPI document: its status must be
// documented and its body must match the schema. Error replies of
// undocumented routes must still match the Error schema.
type openAPIChecker struct {
	t      testing.TB
	doc    *openapi3.T
	routes []docRoute

	mu   sync.Mutex
	seen map[string]map[int]bool // "GET /api/v1/sites" → statuses
}

type docRoute struct {
	re     *regexp.Regexp
	names  []string
	path   string
	item   *openapi3.PathItem
	method string
	op     *openapi3.Operation
}

func newOpenAPIChecker(t testing.TB) *openAPIChecker {
	t.Helper()
	doc, err := loadDoc()
	if err != nil {
		t.Fatalf("OpenAPI document: %v", err)
	}
	c := &openAPIChecker{t: t, doc: doc, seen: make(map[string]map[int]bool)}
	param := regexp.MustCompile(`\{([^}]+)\}`)
	for path, item := range doc.Paths.Map() {
		var names []string
		for _, m := range param.FindAllStringSubmatch(path, -1) {
			names = append(names, m[1])
		}
		// The last parameter of the asset route takes the rest of the
		// path, slashes included, as the Go route {id...} does.
		parts := param.Split(path, -1)
		expr := "^" + regexp.QuoteMeta(parts[0])
		for i := 1; i < len(parts); i++ {
			if names[i-1] == "id" && strings.HasSuffix(path, "/assets/{id}") {
				expr += "(.+)"
			} else {
				expr += "([^/]+)"
			}
			expr += regexp.QuoteMeta(parts[i])
		}
		expr += "$"
		for method, op := range item.Operations() {
			c.routes = append(c.routes, docRoute{re: regexp.MustCompile(expr), names: names, path: path, item: item, method: method, op: op})
		}
	}
	return c
}

func (c *openAPIChecker) find(req *http.Request) (*docRoute, map[string]string) {
	for i := range c.routes {
		rt := &c.routes[i]
		if rt.method != req.Method {
			continue
		}
		m := rt.re.FindStringSubmatch(req.URL.Path)
		if m == nil {
			continue
		}
		params := make(map[string]string)
		for j, n := range rt.names {
			params[n] = m[j+1]
		}
		return rt, params
	}
	return nil, nil
}

func (c *openAPIChecker) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return res, err
	}
	rt, params := c.find(req)
	stream := strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream")
	var body []byte
	if !stream {
		body, err = io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return nil, err
		}
		res.Body = io.NopCloser(bytes.NewReader(body))
	}
	if rt == nil {
		// No documented operation: a 404 or 405 of the router, which
		// must still be a JSON error.
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			c.t.Errorf("%s %s → %d: not JSON: %s", req.Method, req.URL, res.StatusCode, body)
		} else if err := c.doc.Components.Schemas["Error"].Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
			c.t.Errorf("%s %s → %d: not an Error: %v", req.Method, req.URL, res.StatusCode, err)
		}
		return res, nil
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    req,
			PathParams: params,
			Route: &routers.Route{Spec: c.doc, Path: rt.path, PathItem: rt.item,
				Method: rt.method, Operation: rt.op},
		},
		Status:  res.StatusCode,
		Header:  res.Header,
		Body:    io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: stream, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		c.t.Errorf("%s %s → %d: response does not match the OpenAPI document: %v\nbody: %.600s",
			req.Method, req.URL, res.StatusCode, err, body)
	}
	c.mu.Lock()
	op := rt.method + " " + rt.path
	if c.seen[op] == nil {
		c.seen[op] = make(map[int]bool)
	}
	c.seen[op][res.StatusCode] = true
	c.mu.Unlock()
	return res, nil
}

// operations lists every documented operation as "METHOD /path".
func (c *openAPIChecker) operations() []string {
	var out []string
	for _, rt := range c.routes {
		out = append(out, rt.method+" "+rt.path)
	}
	return out
}

func (c *openAPIChecker) saw(op string, status int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[op][status]
}

// ms is Unix milliseconds of an RFC 3339 time.
func ms(t testing.TB, s string) int64 {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm.UnixMilli()
}

func reading(asset, quantity string, at int64, v float64) map[string]any {
	return map[string]any{"asset": asset, "quantity": quantity, "time": at, "value": v}
}
