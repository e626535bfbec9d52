package api

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the gateway's Prometheus series. It implements
// gateway.Metrics.
type Metrics struct {
	Registry    *prometheus.Registry
	events      *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	connections *prometheus.GaugeVec
}

// NewMetrics registers the series on a fresh registry (with the Go and
// process collectors).
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_events_total", Help: "Client events handled, by event and outcome (ok or the error code).",
		}, []string{"event", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "switchboard_event_duration_seconds", Help: "Time from receiving a client event to its ack.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"event"}),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchboard_connections", Help: "Sockets held by this node, by namespace.",
		}, []string{"namespace"}),
	}
	r.MustRegister(m.events, m.latency, m.connections, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Event counts one handled event.
func (m *Metrics) Event(event, outcome string, d time.Duration) {
	m.events.WithLabelValues(event, outcome).Inc()
	m.latency.WithLabelValues(event).Observe(d.Seconds())
}

// Connected moves the connection gauge.
func (m *Metrics) Connected(namespace string, delta int) {
	m.connections.WithLabelValues(namespace).Add(float64(delta))
}
