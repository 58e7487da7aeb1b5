// Package platform is the HTTP API of the core data management platform
// (CDMP): API keys, sites and assets, real-time and batch ingestion of
// readings, queries of raw and aggregated series, the newest values, a live
// Server-Sent Events feed, the quantity catalogue, an OpenAPI 3.1 document,
// health checks and Prometheus metrics.
//
// New builds a Server, an http.Handler to mount at the root of an
// http.Server:
//
//	srv, err := platform.New(platform.Config{Store: st, Registerer: reg, Logger: log})
//	...
//	defer srv.Close()
//	http.ListenAndServe(":8080", srv)
//
// Every route is under /api/v1 except /healthz, /readyz and /metrics; every
// error reply is JSON, {"error": "...", "code": "..."}. Callers authenticate
// with "Authorization: Bearer <key>" (see package auth for scopes).
package platform

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/ingest"
	"github.com/gridlink/gridlink/platform/auth"
	"github.com/gridlink/gridlink/platform/stream"
	"github.com/gridlink/gridlink/store"
)

// Config holds a Server's dependencies and limits. Only Store is required.
type Config struct {
	// Store keeps sites, assets, keys and readings. Required.
	Store store.Store
	// Catalogue is the quantity vocabulary; nil means cim.Default().
	Catalogue *cim.Catalogue
	// Logger receives request logs (Debug for success, Info for client
	// errors, Warn for server errors); nil discards them.
	Logger *slog.Logger
	// Registerer receives the server's metrics; nil means a private
	// registry, served at /metrics.
	Registerer prometheus.Registerer
	// Gatherer is what /metrics serves; nil means Registerer when it is also
	// a Gatherer (a *prometheus.Registry is), else the private registry.
	// When Registerer is set and is no Gatherer, and Gatherer is nil,
	// /metrics answers 404.
	Gatherer prometheus.Gatherer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Hub is the live feed that stored readings are published to; nil
	// means a new one (see Server.Hub).
	Hub *stream.Hub
	// MaxBodyBytes bounds the body of POST /api/v1/readings and of the
	// other JSON requests, in bytes; zero means 1 MiB. Batches
	// (POST /api/v1/batches) are streamed and unbounded.
	MaxBodyBytes int64
	// CacheTTL is how long API keys and the absence of assets are cached;
	// zero means 10 s. A key revoked through this server is refused at
	// once; one revoked elsewhere within CacheTTL.
	CacheTTL time.Duration
	// Heartbeat is the interval of heartbeat events on /api/v1/stream; zero
	// means 15 s.
	Heartbeat time.Duration
	// StreamBuffer is how many readings may wait for a slow live-feed
	// subscriber before they are dropped for it; zero means 256.
	StreamBuffer int
	// BatchSize is how many readings of a batch upload are written per
	// store call; zero leaves the ingest package's default.
	BatchSize int
	// MaxErrors bounds the per-reading errors listed in an ingest reply;
	// the rest are only counted. Zero means 100.
	MaxErrors int
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("platform config: no store")
	case c.MaxBodyBytes < 0:
		return fmt.Errorf("platform config: negative MaxBodyBytes %d", c.MaxBodyBytes)
	case c.CacheTTL < 0:
		return fmt.Errorf("platform config: negative CacheTTL %s", c.CacheTTL)
	case c.Heartbeat < 0:
		return fmt.Errorf("platform config: negative Heartbeat %s", c.Heartbeat)
	case c.StreamBuffer < 0 || c.BatchSize < 0 || c.MaxErrors < 0:
		return errors.New("platform config: negative StreamBuffer, BatchSize or MaxErrors")
	}
	return nil
}

// Server is the platform's HTTP API. It is an http.Handler, safe for
// concurrent use.
type Server struct {
	store     store.Store
	cat       *cim.Catalogue
	log       *slog.Logger
	now       func() time.Time
	auth      *auth.Authenticator
	hub       *stream.Hub
	assets    *assetCache
	met       *metrics
	mux       *http.ServeMux
	maxBody   int64
	heartbeat time.Duration
	streamBuf int
	batchSize int
	maxErrors int
	catJSON   []byte    // GET /api/v1/quantities
	bufs      sync.Pool // *bytes.Buffer for request bodies
	parsers   sync.Pool // *ingest.BodyParser for POST /api/v1/readings
	// chargers sends commands to charge points; nil until SetChargers.
	chargers atomic.Pointer[Chargers]
	// ledger is the energy ledger; nil until SetLedger.
	ledger atomic.Pointer[ledgerState]
	// knownSites remembers sites seen to exist, so that an admin key's
	// writes cost no look-up; sites are never deleted.
	knownSites sync.Map
	writers    sync.Pool // *statusWriter

	done      chan struct{}
	closeOnce sync.Once
}

// New builds a Server.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		store:     cfg.Store,
		cat:       cfg.Catalogue,
		log:       cfg.Logger,
		now:       cfg.Now,
		hub:       cfg.Hub,
		maxBody:   cfg.MaxBodyBytes,
		heartbeat: cfg.Heartbeat,
		streamBuf: cfg.StreamBuffer,
		batchSize: cfg.BatchSize,
		maxErrors: cfg.MaxErrors,
		done:      make(chan struct{}),
	}
	if s.cat == nil {
		s.cat = cim.Default()
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.hub == nil {
		s.hub = stream.NewHub()
	}
	if s.maxBody == 0 {
		s.maxBody = 1 << 20
	}
	if s.heartbeat == 0 {
		s.heartbeat = 15 * time.Second
	}
	if s.maxErrors == 0 {
		s.maxErrors = 100
	}
	ttl := cfg.CacheTTL
	if ttl == 0 {
		ttl = 10 * time.Second
	}
	cj, err := catalogueJSON(s.cat)
	if err != nil {
		return nil, fmt.Errorf("render catalogue: %w", err)
	}
	s.catJSON = cj
	s.bufs.New = func() any { return new(bytes.Buffer) }
	s.parsers.New = func() any { return new(ingest.BodyParser) }
	s.writers.New = func() any { return new(statusWriter) }
	s.auth = auth.NewAuthenticator(cfg.Store, auth.Options{TTL: ttl}) // real time, whatever Now says
	s.assets = newAssetCache(ttl)

	reg, gat := cfg.Registerer, cfg.Gatherer
	if reg == nil {
		r := prometheus.NewRegistry()
		reg = r
		if gat == nil {
			gat = r
		}
	} else if g, ok := reg.(prometheus.Gatherer); ok && gat == nil {
		gat = g
	}
	m, err := newMetrics(reg, s.hub)
	if err != nil {
		return nil, err
	}
	s.met = m
	s.mux = http.NewServeMux()
	s.routes(gat)
	return s, nil
}

// Hub returns the live feed, for other ingestion paths (OCPP, MQTT) that
// publish their stored readings, or use Server.Write that does it.
func (s *Server) Hub() *stream.Hub { return s.hub }

// Authenticator returns the key checker, e.g. for other listeners of the
// platform that take the same API keys.
func (s *Server) Authenticator() *auth.Authenticator { return s.auth }

// Close ends the open live-feed streams, so that http.Server.Shutdown can
// finish. The store is not closed.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	return nil
}

// route is one entry of the routing table.
type route struct {
	pattern string
	handler func(s *Server) http.HandlerFunc
}

// routeTable lists every route. The OpenAPI document lists the same.
var routeTable = []route{
	{"GET /healthz", func(s *Server) http.HandlerFunc { return s.handleHealthz }},
	{"GET /readyz", func(s *Server) http.HandlerFunc { return s.handleReadyz }},
	{"GET /metrics", nil}, // added by routes when there is a gatherer
	{"GET /api/v1/openapi.json", func(s *Server) http.HandlerFunc { return s.handleOpenAPI }},
	{"GET /api/v1/quantities", func(s *Server) http.HandlerFunc { return s.handleQuantities }},

	{"POST /api/v1/keys", func(s *Server) http.HandlerFunc { return s.authed(s.handleCreateKey) }},
	{"GET /api/v1/keys", func(s *Server) http.HandlerFunc { return s.authed(s.handleListKeys) }},
	{"DELETE /api/v1/keys/{id}", func(s *Server) http.HandlerFunc { return s.authed(s.handleRevokeKey) }},

	{"GET /api/v1/sites", func(s *Server) http.HandlerFunc { return s.authed(s.handleListSites) }},
	{"POST /api/v1/sites", func(s *Server) http.HandlerFunc { return s.authed(s.handlePutSite) }},
	{"GET /api/v1/sites/{site}", func(s *Server) http.HandlerFunc { return s.authed(s.handleGetSite) }},
	{"GET /api/v1/sites/{site}/assets", func(s *Server) http.HandlerFunc { return s.authed(s.handleListAssets) }},
	{"POST /api/v1/sites/{site}/assets", func(s *Server) http.HandlerFunc { return s.authed(s.handlePutAsset) }},
	{"GET /api/v1/sites/{site}/assets/{id...}", func(s *Server) http.HandlerFunc { return s.authed(s.handleGetAsset) }},

	{"GET /api/v1/sites/{site}/sessions", func(s *Server) http.HandlerFunc { return s.authed(s.handleListSessions) }},
	{"GET /api/v1/sites/{site}/sessions/{charge_point}/{transaction_id}", func(s *Server) http.HandlerFunc { return s.authed(s.handleGetSession) }},
	{"POST /api/v1/sites/{site}/chargepoints", func(s *Server) http.HandlerFunc { return s.authed(s.handlePutChargePoint) }},
	{"DELETE /api/v1/sites/{site}/chargepoints/{id}", func(s *Server) http.HandlerFunc { return s.authed(s.handleDeleteChargePoint) }},
	{"POST /api/v1/sites/{site}/chargepoints/{id}/commands", func(s *Server) http.HandlerFunc { return s.authed(s.handleChargerCommand) }},
	{"GET /api/v1/sites/{site}/idtags", func(s *Server) http.HandlerFunc { return s.authed(s.handleListIDTags) }},
	{"POST /api/v1/sites/{site}/idtags", func(s *Server) http.HandlerFunc { return s.authed(s.handlePutIDTag) }},
	{"DELETE /api/v1/sites/{site}/idtags/{tag}", func(s *Server) http.HandlerFunc { return s.authed(s.handleDeleteIDTag) }},

	{"POST /api/v1/readings", func(s *Server) http.HandlerFunc { return s.authed(s.handleIngest) }},
	{"POST /api/v1/batches", func(s *Server) http.HandlerFunc { return s.authed(s.handleBatch) }},
	{"GET /api/v1/readings", func(s *Server) http.HandlerFunc { return s.authed(s.handleQuery) }},
	{"GET /api/v1/latest", func(s *Server) http.HandlerFunc { return s.authed(s.handleLatest) }},
	{"GET /api/v1/stream", func(s *Server) http.HandlerFunc { return s.authedStream(s.handleStream) }},

	{"GET /api/v1/ledger/key", func(s *Server) http.HandlerFunc { return s.handleLedgerKey }},
	{"GET /api/v1/ledger/checkpoint", func(s *Server) http.HandlerFunc { return s.handleLedgerCheckpoint }},
	{"GET /api/v1/ledger/consistency", func(s *Server) http.HandlerFunc { return s.handleLedgerConsistency }},
	{"GET /api/v1/ledger/records/{index}", func(s *Server) http.HandlerFunc { return s.authed(s.handleLedgerRecord) }},
	{"GET /api/v1/ledger/entries", func(s *Server) http.HandlerFunc { return s.authed(s.handleLedgerEntries) }},
	{"POST /api/v1/ledger/cosign", func(s *Server) http.HandlerFunc { return s.handleLedgerCosign }},
	{"GET /api/v1/sites/{site}/signers", func(s *Server) http.HandlerFunc { return s.authed(s.handleListSigners) }},
	{"POST /api/v1/sites/{site}/signers", func(s *Server) http.HandlerFunc { return s.authed(s.handlePutSigner) }},
	{"DELETE /api/v1/sites/{site}/signers/{id}", func(s *Server) http.HandlerFunc { return s.authed(s.handleDeleteSigner) }},
	{"POST /api/v1/sites/{site}/ledger/erase", func(s *Server) http.HandlerFunc { return s.authed(s.handleLedgerErase) }},

	{"POST /api/v1/itc/runs", func(s *Server) http.HandlerFunc { return s.authed(s.handlePostITCRun) }},
	{"GET /api/v1/itc/runs", func(s *Server) http.HandlerFunc { return s.authed(s.handleListITCRuns) }},
	{"GET /api/v1/itc/runs/{id}", func(s *Server) http.HandlerFunc { return s.authed(s.handleGetITCRun) }},
}

// routePatterns lists the patterns of every route.
func routePatterns() []string {
	out := make([]string, 0, len(routeTable))
	for _, r := range routeTable {
		out = append(out, r.pattern)
	}
	return out
}

func (s *Server) routes(gat prometheus.Gatherer) {
	for _, r := range routeTable {
		switch {
		case r.handler != nil:
			s.mux.HandleFunc(r.pattern, r.handler(s))
		case gat != nil:
			s.mux.Handle(r.pattern, metricsHandler(gat))
		}
	}
	s.dashboardRoutes() // pages, not API: outside routeTable and the OpenAPI document
}

// authed wraps a handler that needs an authenticated caller.
func (s *Server) authed(fn func(http.ResponseWriter, *http.Request, auth.Principal)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.auth.Authenticate(r.Context(), r.Header.Get("Authorization"))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		fn(w, r, p)
	}
}

// authedStream is authed for GET /api/v1/stream, which also takes the key
// as the parameter key: a browser's EventSource cannot send headers.
func (s *Server) authedStream(fn func(http.ResponseWriter, *http.Request, auth.Principal)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		header := r.Header.Get("Authorization")
		if k, ok := r.URL.Query()["key"]; ok {
			if header != "" || len(k) != 1 {
				s.writeError(w, r, badParam("key", "…", "give the API key once, in the Authorization header or in the parameter key, not both"))
				return
			}
			header = "Bearer " + k[0]
		}
		p, err := s.auth.Authenticate(r.Context(), header)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		fn(w, r, p)
	}
}

// ServeHTTP serves the API, counting and logging each request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := s.writers.Get().(*statusWriter)
	*sw = statusWriter{ResponseWriter: w, r: r, start: time.Now()}
	defer s.account(sw) // also when a handler aborts with http.ErrAbortHandler
	s.mux.ServeHTTP(sw, r)
}

// account counts and logs a served request.
func (s *Server) account(sw *statusWriter) {
	r := sw.r
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	route := r.Pattern
	if route == "" {
		route = "unmatched"
	}
	d := time.Since(sw.start)
	s.met.observeRequest(route, sw.status, d)
	level := slog.LevelDebug
	switch {
	case sw.status >= 500:
		level = slog.LevelWarn
	case sw.status >= 400:
		level = slog.LevelInfo
	}
	if s.log.Enabled(r.Context(), level) {
		s.log.LogAttrs(r.Context(), level, "http request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("route", route),
			slog.Int("status", sw.status), slog.Int64("bytes", sw.bytes), slog.Duration("duration", d))
	}
	*sw = statusWriter{}
	s.writers.Put(sw)
}

// statusWriter records the status of a reply, and replaces the ServeMux's
// plain-text 404 and 405 replies by JSON ones.
type statusWriter struct {
	http.ResponseWriter
	r       *http.Request
	start   time.Time
	status  int
	bytes   int64
	swallow bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	if w.r.Pattern == "" && (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) {
		// The ServeMux's own reply: no route matched.
		w.swallow = true
		ae := errorf(http.StatusNotFound, CodeNotFound, "no route for %s %s", w.r.Method, w.r.URL.Path)
		if code == http.StatusMethodNotAllowed {
			ae = errorf(code, CodeMethodNotAllowed, "method %s not allowed on %s (allowed: %s)",
				w.r.Method, w.r.URL.Path, w.Header().Get("Allow"))
		}
		w.Header().Del("X-Content-Type-Options")
		writeErrorReply(w.ResponseWriter, ae)
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.swallow {
		return len(b), nil
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush sends buffered data to the client.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSONBytes(w, http.StatusOK, []byte(`{"status":"ok"}`+"\n"))
}

// pinger is implemented by stores that can check their connection cheaply.
type pinger interface {
	Ping(ctx context.Context) error
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	var err error
	if p, ok := s.store.(pinger); ok {
		err = p.Ping(ctx)
	} else if _, err = s.store.Site(ctx, "readyz-probe"); errors.Is(err, store.ErrNotFound) {
		err = nil
	}
	if err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "store not ready", slog.String("error", err.Error()))
		writeErrorReply(w, errorf(http.StatusServiceUnavailable, CodeUnavailable, "store unreachable: %s", err))
		return
	}
	writeJSONBytes(w, http.StatusOK, []byte(`{"status":"ready"}`+"\n"))
}
