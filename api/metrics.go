package api

import (
	"regexp"
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
// process collectors). Besides the Go collector's defaults it exports the
// live heap at the last GC and the heap goal (go_gc_heap_live_bytes,
// go_gc_heap_goal_bytes): divided by switchboard_connections, the first is
// the memory a connection really holds, the figure to size GOMEMLIMIT from,
// where RSS also counts the collector's headroom.
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
	r.MustRegister(m.events, m.latency, m.connections, collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
		collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/(live|goal):bytes$`)})), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Event counts one handled event.
func (m *Metrics) Event(event, outcome string, d time.Duration) {
	m.events.WithLabelValues(event, outcome).Inc()
	m.latency.WithLabelValues(event).Observe(d.Seconds())
}

// WebSocket registers the counters of Switchboard's websocket transport,
// read from stats at each scrape: broadcast frames written directly,
// clients cut off for not reading, and flusher goroutines started (one each
// time a client's socket buffer filled).
func (m *Metrics) WebSocket(stats func() (direct, slow, flushers uint64)) {
	counter := func(name, help string, pick func(d, s, f uint64) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 {
			return float64(pick(stats()))
		})
	}
	m.Registry.MustRegister(
		counter("switchboard_ws_direct_frames_total", "Broadcast frames written straight to a websocket, without the engine's per-packet path.",
			func(d, _, _ uint64) uint64 { return d }),
		counter("switchboard_ws_slow_clients_total", "Websocket clients disconnected for falling more than SWITCHBOARD_WS_MAX_QUEUE_BYTES behind.",
			func(_, s, _ uint64) uint64 { return s }),
		counter("switchboard_ws_flushes_total", "Times a websocket's socket buffer filled and a flusher goroutine took over its writes.",
			func(_, _, f uint64) uint64 { return f }),
	)
}

// Connected moves the connection gauge.
func (m *Metrics) Connected(namespace string, delta int) {
	m.connections.WithLabelValues(namespace).Add(float64(delta))
}
