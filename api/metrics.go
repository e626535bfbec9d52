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

// PubSubStats are the counters of the node's Redis pub/sub adapter
// (adapter.Stats).
type PubSubStats struct {
	Published, Received, Ignored, Dropped, Malformed, Resubscribes, ProbeFailures uint64
	Channels                                                                      int64
	Healthy                                                                       bool
}

// PubSub exports the pub/sub adapter's counters, read from stats once per
// scrape.
func (m *Metrics) PubSub(stats func() PubSubStats) {
	m.Registry.MustRegister(&pubSubCollector{stats: stats})
}

// pubSubCollector reads the adapter's counters once per scrape for all its
// series.
type pubSubCollector struct {
	stats func() PubSubStats
}

var pubSubSeries = []struct {
	desc  *prometheus.Desc
	gauge bool
	pick  func(PubSubStats) float64
}{
	{prometheus.NewDesc("switchboard_pubsub_published_total", "Messages Redis accepted from this node: broadcasts, requests and responses between nodes.", nil, nil), false,
		func(s PubSubStats) float64 { return float64(s.Published) }},
	{prometheus.NewDesc("switchboard_pubsub_received_total", "Pub/sub messages this node received.", nil, nil), false,
		func(s PubSubStats) float64 { return float64(s.Received) }},
	{prometheus.NewDesc("switchboard_pubsub_ignored_total", "Received messages not delivered on purpose: this node's own, or a room with no local member.", nil, nil), false,
		func(s PubSubStats) float64 { return float64(s.Ignored) }},
	{prometheus.NewDesc("switchboard_pubsub_dropped_total", "Messages lost here: not published (queue full, Redis error) or received malformed.", nil, nil), false,
		func(s PubSubStats) float64 { return float64(s.Dropped) }},
	{prometheus.NewDesc("switchboard_pubsub_malformed_total", "Received messages that could not be decoded (also counted as dropped).", nil, nil), false,
		func(s PubSubStats) float64 { return float64(s.Malformed) }},
	{prometheus.NewDesc("switchboard_pubsub_resubscribes_total", "Pub/sub connections re-created with all their channels (connection or probe lost, Redis restarted).", nil, nil), false,
		func(s PubSubStats) float64 { return float64(s.Resubscribes) }},
	{prometheus.NewDesc("switchboard_pubsub_probe_failures_total", "Probes through Redis pub/sub that did not come back in time.", nil, nil), false,
		func(s PubSubStats) float64 { return float64(s.ProbeFailures) }},
	{prometheus.NewDesc("switchboard_pubsub_channels", "Channels this node subscribes to: the namespace, request and response channels and one per room with a local member.", nil, nil), true,
		func(s PubSubStats) float64 { return float64(s.Channels) }},
	{prometheus.NewDesc("switchboard_pubsub_healthy", "1 while every pub/sub connection is subscribed and answers its probes, else 0 (the node is then not ready).", nil, nil), true,
		func(s PubSubStats) float64 {
			if s.Healthy {
				return 1
			}
			return 0
		}},
}

func (c *pubSubCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range pubSubSeries {
		ch <- s.desc
	}
}

func (c *pubSubCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	for _, s := range pubSubSeries {
		kind := prometheus.CounterValue
		if s.gauge {
			kind = prometheus.GaugeValue
		}
		ch <- prometheus.MustNewConstMetric(s.desc, kind, s.pick(st))
	}
}

// Connected moves the connection gauge.
func (m *Metrics) Connected(namespace string, delta int) {
	m.connections.WithLabelValues(namespace).Add(float64(delta))
}
