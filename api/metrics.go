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
// where RSS also counts the collector's headroom. And GOGC now
// (go_gc_gogc_percent), which internal/gctune lowers while the node is
// quiet.
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
		collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/(heap/(live|goal):bytes|gogc:percent)$`)})), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Event counts one handled event.
func (m *Metrics) Event(event, outcome string, d time.Duration) {
	m.events.WithLabelValues(event, outcome).Inc()
	m.latency.WithLabelValues(event).Observe(d.Seconds())
}

// WebSocketStats are the counters of the node's websocket transport
// (internal/wstransport.Stats).
type WebSocketStats struct {
	Direct, SlowClients, Flushers, OutboxWrites uint64
}

// WebSocket exports the websocket transport's counters, read from stats at
// each scrape.
func (m *Metrics) WebSocket(stats func() WebSocketStats) {
	counter := func(name, help string, pick func(WebSocketStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 {
			return float64(pick(stats()))
		})
	}
	m.Registry.MustRegister(
		counter("switchboard_ws_direct_frames_total", "Broadcast frames handed straight to a websocket, without the engine's per-packet path.",
			func(s WebSocketStats) uint64 { return s.Direct }),
		counter("switchboard_ws_broadcast_writes_total", "Writes that carried the direct frames: direct frames / writes is how many broadcast frames one system call carried.",
			func(s WebSocketStats) uint64 { return s.OutboxWrites }),
		counter("switchboard_ws_slow_clients_total", "Websocket clients disconnected for falling more than SWITCHBOARD_WS_MAX_QUEUE_BYTES behind.",
			func(s WebSocketStats) uint64 { return s.SlowClients }),
		counter("switchboard_ws_flushes_total", "Times a websocket's socket buffer filled and a flusher goroutine took over its writes.",
			func(s WebSocketStats) uint64 { return s.Flushers }),
	)
}

// Connected moves the connection gauge.
func (m *Metrics) Connected(namespace string, delta int) {
	m.connections.WithLabelValues(namespace).Add(float64(delta))
}
