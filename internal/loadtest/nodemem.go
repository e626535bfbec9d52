package loadtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// NodeMemory is a node's own account of its memory, read from its
// /metrics: unlike RSS it needs no PID, so it works for remote nodes too,
// and it separates what the connections hold (the live heap) from the
// collector's headroom.
type NodeMemory struct {
	URL         string  `json:"url"`
	Connections float64 `json:"connections"`
	Goroutines  float64 `json:"goroutines"`
	// LiveHeapBytes is the heap that survived the node's last GC
	// (go_gc_heap_live_bytes); the runtime collects at least every 2
	// minutes, so on a short idle hold it may date from the connect storm.
	LiveHeapBytes float64 `json:"live_heap_bytes"`
	// LiveHeapPerConnKiB divides LiveHeapBytes by Connections.
	LiveHeapPerConnKiB float64 `json:"live_heap_per_conn_kib,omitempty"`
}

// maxMetricsBytes bounds the /metrics page read from a node.
const maxMetricsBytes = 4 << 20

// scrapeNodeMemory reads base's /metrics.
func scrapeNodeMemory(ctx context.Context, client *http.Client, base string) (NodeMemory, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/metrics", nil)
	if err != nil {
		return NodeMemory{}, err
	}
	res, err := client.Do(req)
	if err != nil {
		return NodeMemory{}, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return NodeMemory{}, fmt.Errorf("GET /metrics: %s", res.Status)
	}
	m, err := parseNodeMemory(io.LimitReader(res.Body, maxMetricsBytes))
	m.URL = base
	return m, err
}

// parseNodeMemory reads the figures of NodeMemory from a Prometheus text
// exposition; the connections are summed over namespaces.
func parseNodeMemory(r io.Reader) (NodeMemory, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return NodeMemory{}, fmt.Errorf("parse /metrics: %w", err)
	}
	sum := func(name string) (float64, bool) {
		f, ok := families[name]
		if !ok {
			return 0, false
		}
		var v float64
		for _, m := range f.GetMetric() {
			v += gaugeValue(m)
		}
		return v, true
	}
	var m NodeMemory
	var ok bool
	if m.LiveHeapBytes, ok = sum("go_gc_heap_live_bytes"); !ok {
		return m, fmt.Errorf("parse /metrics: no go_gc_heap_live_bytes (a node older than this tool?)")
	}
	m.Goroutines, _ = sum("go_goroutines")
	m.Connections, _ = sum("switchboard_connections")
	if m.Connections > 0 {
		m.LiveHeapPerConnKiB = m.LiveHeapBytes / 1024 / m.Connections
	}
	return m, nil
}

// gaugeValue is a gauge's or an untyped sample's value.
func gaugeValue(m *dto.Metric) float64 {
	if g := m.GetGauge(); g != nil {
		return g.GetValue()
	}
	return m.GetUntyped().GetValue()
}

// sampleNodeMemory scrapes every node, noting the ones that fail.
func (r *runner) sampleNodeMemory(ctx context.Context) []NodeMemory {
	client := &http.Client{}
	var out []NodeMemory
	for _, u := range r.cfg.URLs {
		m, err := scrapeNodeMemory(ctx, client, u)
		if err != nil {
			r.rep.note("%s: node memory not read: %v", u, err)
			continue
		}
		out = append(out, m)
	}
	return out
}
