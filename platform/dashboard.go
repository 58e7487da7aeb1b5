package platform

import (
	"embed"
	"net/http"
	"strings"
)

// This file serves the dashboard: a small page (platform/dashboard) that
// shows the sites, their assets' live values and health, and the latest
// integration test run, through the public API with the key the visitor
// gives. The page itself needs no key and holds no data.

//go:embed dashboard/index.html dashboard/app.js dashboard/style.css
var dashboardFiles embed.FS

// dashboardCSP allows the page its own script, style and API and nothing
// else: no inline script, no other origin.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// dashboardTypes maps the dashboard's file extensions to media types.
var dashboardTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

func (s *Server) dashboardRoutes() {
	s.mux.HandleFunc("GET /{$}", s.handleDashboardPage)
	s.mux.HandleFunc("GET /dashboard", s.handleDashboardPage)
	s.mux.HandleFunc("GET /dashboard/{file}", s.handleDashboardFile)
}

func (s *Server) handleDashboardPage(w http.ResponseWriter, r *http.Request) {
	s.serveDashboardFile(w, r, "index.html")
}

func (s *Server) handleDashboardFile(w http.ResponseWriter, r *http.Request) {
	s.serveDashboardFile(w, r, r.PathValue("file"))
}

func (s *Server) serveDashboardFile(w http.ResponseWriter, r *http.Request, name string) {
	var ct string
	ok := false
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		ct, ok = dashboardTypes[name[i:]]
	}
	var b []byte
	var err error
	if ok {
		b, err = dashboardFiles.ReadFile("dashboard/" + name)
	}
	if !ok || err != nil {
		writeErrorReply(w, errorf(http.StatusNotFound, CodeNotFound, "no dashboard file %q", clip(name)))
		return
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Security-Policy", dashboardCSP)
	// The page may carry the API key in ?key=: never send it elsewhere.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(b)
	}
}
