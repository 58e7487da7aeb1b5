package gateway

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gridlink/gridlink/queue"
	"github.com/gridlink/gridlink/uplink"
)

// Status is the whole gateway's state, as /status shows it.
type Status struct {
	Site     string         `json:"site"`
	Started  time.Time      `json:"started"`
	Now      time.Time      `json:"now"`
	Platform string         `json:"platform"`
	Uplink   uplink.Status  `json:"uplink"`
	Queue    queue.Stats    `json:"queue"`
	Broker   string         `json:"broker,omitempty"`
	Ledger   *LedgerStatus  `json:"ledger,omitempty"`
	Summary  map[string]int `json:"summary"`
	Devices  []DeviceStatus `json:"devices"`
}

// Status returns the gateway's current state.
func (g *Gateway) Status() Status {
	s := Status{
		Site: g.cfg.Site, Started: g.started, Now: g.now(), Platform: redactAddress(g.cfg.Platform.URL),
		Broker: g.brokerAddr, Ledger: g.signer.status(), Summary: map[string]int{"devices": len(g.runners)},
		Devices: make([]DeviceStatus, 0, len(g.runners)),
	}
	if g.uplink != nil {
		s.Uplink = g.uplink.Status()
	}
	if q := g.queue; q != nil {
		s.Queue = q.Stats()
	}
	for _, r := range g.runners {
		d := r.snapshot()
		s.Summary[d.State]++
		s.Devices = append(s.Devices, d)
	}
	return s
}

// Handler serves /status (HTML for browsers, JSON otherwise or with
// ?format=json), /metrics, /healthz, and /debug/pprof/ when profiling is
// on.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", g.serveStatus)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/status", http.StatusFound)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(g.gather, promhttp.HandlerOpts{}))
	if g.cfg.Status.Profiling {
		// Profiles, for finding where a small board's CPU and memory go.
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	}
	return mux
}

func (g *Gateway) serveStatus(w http.ResponseWriter, r *http.Request) {
	s := g.Status()
	format := r.URL.Query().Get("format")
	if format == "" && strings.Contains(r.Header.Get("Accept"), "text/html") {
		format = "html"
	}
	w.Header().Set("Cache-Control", "no-store")
	switch format {
	case "html":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := statusPage.Execute(w, s); err != nil {
			g.log.Warn("status page", "err", err)
		}
	case "", "json":
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(s)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": "format: want json or html"})
	}
}

var statusPage = template.Must(template.New("status").Funcs(template.FuncMap{
	"ago": func(now time.Time, t *time.Time) string {
		if t == nil {
			return "never"
		}
		return now.Sub(*t).Round(100*time.Millisecond).String() + " ago"
	},
	"num":   func(v float64) string { return strings.TrimRight(strings.TrimRight(formatFloat(v), "0"), ".") },
	"spark": sparkline,
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gridlink gateway · {{.Site}}</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border-bottom:1px solid #ddd;padding:.3em .7em;text-align:left;vertical-align:top}
.ok{color:#11772d}.failing,.stale,.backoff,.rate_limited{color:#a66b00}.down,.unauthorized,.unreachable,.signature_refused{color:#b00020;font-weight:bold}
.err{color:#b00020;max-width:40em}small{color:#666}
</style></head><body>
<h1>gridlink gateway · site <code>{{.Site}}</code></h1>
<p>Platform <code>{{.Platform}}</code> · uplink <b class="{{.Uplink.State}}">{{.Uplink.State}}</b>
{{with .Uplink.LastError}} · <span class="err">{{.}}</span>{{end}}
· sent {{.Uplink.Sent}} · rejected {{.Uplink.Rejected}}</p>
<p>Queue: {{.Queue.Readings}} readings, {{.Queue.Bytes}} bytes on disk, dropped (queue full) {{.Queue.Dropped}}
{{with .Broker}} · MQTT broker on <code>{{.}}</code>{{end}}</p>
{{with .Ledger}}<p>Ledger: readings of {{len .Assets}} devices signed as <code>{{.Signer}}</code></p>{{end}}
<h2>Devices</h2>
<table><tr><th>asset</th><th>profile</th><th>state</th><th>last read</th><th>recent</th><th>values</th><th>last error</th></tr>
{{$now := .Now}}{{range .Devices}}<tr>
<td><code>{{.Asset}}</code><br><small>{{.Address}}</small></td>
<td>{{.Profile}}<br><small>{{.Protocol}}{{with .Interval}} every {{.}}{{end}}</small></td>
<td class="{{.State}}">{{.State}}{{if .Failures}}<br><small>{{.Failures}} failures</small>{{end}}</td>
<td>{{ago $now .LastRead}}<br><small>{{.Reads}} reads, {{.Errors}} errors</small></td>
<td>{{with .Trend}}{{spark .}}<br><small>{{.Quantity}}{{with .Phase}} {{.}}{{end}}, {{.Unit}}</small>{{end}}</td>
<td>{{range .Values}}{{.Quantity}}{{with .Phase}} {{.}}{{end}}: <b>{{if .State}}{{.State}}{{else}}{{num .Value}}{{end}}</b> {{if not .State}}{{.Unit}}{{end}}<br>{{end}}</td>
<td class="err">{{.LastError}}{{if .LastErrorAt}}<br><small>{{ago $now .LastErrorAt}}</small>{{end}}</td>
</tr>{{end}}</table>
<p><small>JSON: <a href="/status?format=json">/status?format=json</a> · <a href="/metrics">/metrics</a> · refreshes every 5 s</small></p>
</body></html>`))

// sparkline draws a trend as a small inline SVG line with its range.
func sparkline(tr *Trend) template.HTML {
	const w, h = 160.0, 36.0
	pts := tr.Points
	if len(pts) < 2 {
		return ""
	}
	t0, t1 := pts[0][0], pts[len(pts)-1][0]
	lo, hi := pts[0][1], pts[0][1]
	for _, p := range pts {
		lo, hi = min(lo, p[1]), max(hi, p[1])
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%g" height="%g" viewBox="0 0 %g %g" role="img" aria-label="%s from %s to %s"><polyline fill="none" stroke="#1f6feb" stroke-width="1.5" points="`,
		w, h+12, w, h+12, template.HTMLEscapeString(tr.Quantity), formatFloat(lo), formatFloat(hi))
	for i, p := range pts {
		x := 0.0
		if t1 > t0 {
			x = (p[0] - t0) / (t1 - t0) * w
		}
		y := h / 2
		if hi > lo {
			y = h - (p[1]-lo)/(hi-lo)*(h-2) - 1
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.1f,%.1f", x, y)
	}
	fmt.Fprintf(&b, `"/><text x="0" y="%g" font-size="10" fill="#666">%s … %s</text></svg>`, h+11, formatFloat(lo), formatFloat(hi))
	return template.HTML(b.String())
}
