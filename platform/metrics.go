package platform

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gridlink/gridlink/platform/stream"
	"github.com/gridlink/gridlink/store"
)

// metrics are the server's Prometheus collectors.
type metrics struct {
	requests *prometheus.CounterVec   // route, code
	latency  *prometheus.HistogramVec // route

	accepted, duplicate, corrected, rejected prometheus.Counter

	mu       sync.RWMutex
	counters map[routeCode]prometheus.Counter
	observer map[string]prometheus.Observer
}

type routeCode struct {
	route string
	code  int
}

func newMetrics(reg prometheus.Registerer, hub *stream.Hub) (*metrics, error) {
	readings := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gridlink_ingest_readings_total",
		Help: "Readings received by the ingest API, by result: accepted (new), duplicate (already stored), corrected (replaced another value), rejected (invalid).",
	}, []string{"result"})
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gridlink_http_requests_total",
			Help: "HTTP requests served, by route pattern and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gridlink_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route pattern (streams count until they end).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		accepted:  readings.WithLabelValues("accepted"),
		duplicate: readings.WithLabelValues("duplicate"),
		corrected: readings.WithLabelValues("corrected"),
		rejected:  readings.WithLabelValues("rejected"),
		counters:  make(map[routeCode]prometheus.Counter),
		observer:  make(map[string]prometheus.Observer),
	}
	cs := []prometheus.Collector{
		m.requests, m.latency, readings,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gridlink_stream_subscribers",
			Help: "Open live-feed (Server-Sent Events) subscriptions.",
		}, func() float64 { return float64(hub.Subscribers()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "gridlink_stream_dropped_readings_total",
			Help: "Readings not delivered to slow live-feed subscribers.",
		}, func() float64 { return float64(hub.Dropped()) }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register platform metrics: %w", err)
		}
	}
	return m, nil
}

// observeRequest counts a request. The label lookups are cached, so that the
// hot path costs two map reads under a read lock.
func (m *metrics) observeRequest(route string, code int, d time.Duration) {
	rc := routeCode{route, code}
	m.mu.RLock()
	c, ok1 := m.counters[rc]
	o, ok2 := m.observer[route]
	m.mu.RUnlock()
	if !ok1 || !ok2 {
		c = m.requests.WithLabelValues(route, strconv.Itoa(code))
		o = m.latency.WithLabelValues(route)
		m.mu.Lock()
		m.counters[rc] = c
		m.observer[route] = o
		m.mu.Unlock()
	}
	c.Inc()
	o.Observe(d.Seconds())
}

func (m *metrics) countIngest(res store.WriteResult, rejected int) {
	for _, c := range [...]struct {
		c prometheus.Counter
		n int
	}{{m.accepted, res.Accepted}, {m.duplicate, res.Duplicate}, {m.corrected, res.Corrected}, {m.rejected, rejected}} {
		if c.n > 0 {
			c.c.Add(float64(c.n))
		}
	}
}

func metricsHandler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}
