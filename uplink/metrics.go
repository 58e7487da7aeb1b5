package uplink

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gridlink/gridlink/queue"
)

// metrics are the uplink's Prometheus collectors. A nil *metrics records
// nothing.
type metrics struct {
	sent, duplicate, rejected prometheus.Counter
	sigRefused                prometheus.Counter
	duration                  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer, q *queue.Queue) (*metrics, error) {
	m := &metrics{
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gridlink_uplink_sent_readings_total",
			Help: "Readings the platform took (accepted, duplicate or corrected), live copies included.",
		}),
		duplicate: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gridlink_uplink_duplicate_readings_total",
			Help: "Readings the platform already held (re-sent after a lost reply, or live copies).",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gridlink_uplink_rejected_readings_total",
			Help: "Readings refused by the platform (or unsendable) and dropped.",
		}),
		sigRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gridlink_uplink_signature_refused_total",
			Help: "Batch requests whose ledger signature the platform refused (422 bad_signature or unsigned); the readings stay queued.",
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gridlink_uplink_request_duration_seconds",
			Help:    "Time of one batch request, by HTTP status code (\"error\" when there was no reply).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"code"}),
	}
	cs := []prometheus.Collector{
		m.sent, m.duplicate, m.rejected, m.sigRefused, m.duration,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gridlink_uplink_queue_readings",
			Help: "Readings waiting in the gateway's queue.",
		}, func() float64 { return float64(q.Len()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "gridlink_uplink_dropped_readings_total",
			Help: "Readings the queue dropped (full, or damaged on disk) since it was created.",
		}, func() float64 { return float64(q.Dropped()) }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("uplink metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observe(code string, d time.Duration) {
	if m != nil {
		m.duration.WithLabelValues(code).Observe(d.Seconds())
	}
}

func (m *metrics) add(sent, duplicate, rejected int64) {
	if m == nil {
		return
	}
	m.sent.Add(float64(sent))
	m.duplicate.Add(float64(duplicate))
	m.rejected.Add(float64(rejected))
}

func (m *metrics) signatureRefused() {
	if m != nil {
		m.sigRefused.Inc()
	}
}
