package gateway

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's own Prometheus series; the queue and uplink
// register theirs.
type metrics struct {
	reads, errors, readings, invalid *prometheus.CounterVec
	up                               *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		reads:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gridlink_gateway_device_reads_total", Help: "Successful reads (polls or messages) per device."}, []string{"asset"}),
		errors:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gridlink_gateway_device_errors_total", Help: "Failed reads per device."}, []string{"asset"}),
		readings: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gridlink_gateway_device_readings_total", Help: "Readings queued per device."}, []string{"asset"}),
		invalid:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gridlink_gateway_device_invalid_total", Help: "Values refused by the information model per device."}, []string{"asset"}),
		up:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gridlink_gateway_device_up", Help: "1 when the device's last read worked."}, []string{"asset"}),
	}
	reg.MustRegister(m.reads, m.errors, m.readings, m.invalid, m.up)
	return m
}

func (m *metrics) deviceRead(asset string, readings, invalid int) {
	m.reads.WithLabelValues(asset).Inc()
	m.readings.WithLabelValues(asset).Add(float64(readings))
	if invalid > 0 {
		m.invalid.WithLabelValues(asset).Add(float64(invalid))
	}
}

func (m *metrics) deviceError(asset string) { m.errors.WithLabelValues(asset).Inc() }

func (m *metrics) deviceUp(asset string, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.up.WithLabelValues(asset).Set(v)
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
