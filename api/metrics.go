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

// WebSocket exports the websocket transport's counters, read from stats
// once per scrape.
func (m *Metrics) WebSocket(stats func() WebSocketStats) {
	m.Registry.MustRegister(&snapshot[WebSocketStats]{stats: stats, series: []series[WebSocketStats]{
		counter("switchboard_ws_direct_frames_total", "Broadcast frames handed straight to a websocket, without the engine's per-packet path.",
			func(s WebSocketStats) float64 { return float64(s.Direct) }),
		counter("switchboard_ws_broadcast_writes_total", "Writes that carried the direct frames: direct frames / writes is how many broadcast frames one system call carried.",
			func(s WebSocketStats) float64 { return float64(s.OutboxWrites) }),
		counter("switchboard_ws_slow_clients_total", "Websocket clients disconnected for falling more than SWITCHBOARD_WS_MAX_QUEUE_BYTES behind.",
			func(s WebSocketStats) float64 { return float64(s.SlowClients) }),
		counter("switchboard_ws_flushes_total", "Times a websocket's socket buffer filled and a flusher goroutine took over its writes.",
			func(s WebSocketStats) float64 { return float64(s.Flushers) }),
	}})
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
	m.Registry.MustRegister(&snapshot[PubSubStats]{stats: stats, series: []series[PubSubStats]{
		counter("switchboard_pubsub_published_total", "Messages Redis accepted from this node: broadcasts, requests and responses between nodes.",
			func(s PubSubStats) float64 { return float64(s.Published) }),
		counter("switchboard_pubsub_received_total", "Pub/sub messages this node received.",
			func(s PubSubStats) float64 { return float64(s.Received) }),
		counter("switchboard_pubsub_ignored_total", "Received messages not delivered on purpose: this node's own, or a room with no local member.",
			func(s PubSubStats) float64 { return float64(s.Ignored) }),
		counter("switchboard_pubsub_dropped_total", "Messages lost here: not published (queue full, Redis error) or received malformed.",
			func(s PubSubStats) float64 { return float64(s.Dropped) }),
		counter("switchboard_pubsub_malformed_total", "Received messages that could not be decoded (also counted as dropped).",
			func(s PubSubStats) float64 { return float64(s.Malformed) }),
		counter("switchboard_pubsub_resubscribes_total", "Pub/sub connections re-created with all their channels (connection or probe lost, Redis restarted).",
			func(s PubSubStats) float64 { return float64(s.Resubscribes) }),
		counter("switchboard_pubsub_probe_failures_total", "Probes through Redis pub/sub that did not come back in time.",
			func(s PubSubStats) float64 { return float64(s.ProbeFailures) }),
		gauge("switchboard_pubsub_channels", "Channels this node subscribes to: the namespace, request and response channels and one per room with a local member.",
			func(s PubSubStats) float64 { return float64(s.Channels) }),
		gauge("switchboard_pubsub_healthy", "1 while every pub/sub connection is subscribed and answers its probes, else 0 (the node is then not ready).",
			func(s PubSubStats) float64 {
				if s.Healthy {
					return 1
				}
				return 0
			}),
	}})
}

// snapshot is a collector of series that all read one snapshot of a
// component's counters (stats), taken once per scrape.
type snapshot[T any] struct {
	stats  func() T
	series []series[T]
}

// series is one metric of a snapshot: its description, kind and value.
type series[T any] struct {
	desc *prometheus.Desc
	kind prometheus.ValueType
	pick func(T) float64
}

func counter[T any](name, help string, pick func(T) float64) series[T] {
	return series[T]{desc: prometheus.NewDesc(name, help, nil, nil), kind: prometheus.CounterValue, pick: pick}
}

func gauge[T any](name, help string, pick func(T) float64) series[T] {
	return series[T]{desc: prometheus.NewDesc(name, help, nil, nil), kind: prometheus.GaugeValue, pick: pick}
}

func (c *snapshot[T]) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range c.series {
		ch <- s.desc
	}
}

func (c *snapshot[T]) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	for _, s := range c.series {
		ch <- prometheus.MustNewConstMetric(s.desc, s.kind, s.pick(st))
	}
}

// Connected moves the connection gauge.
func (m *Metrics) Connected(namespace string, delta int) {
	m.connections.WithLabelValues(namespace).Add(float64(delta))
}
