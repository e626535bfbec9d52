package loadtest

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func durations(vs ...int) []time.Duration {
	out := make([]time.Duration, len(vs))
	for i, v := range vs {
		out[i] = time.Duration(v) * time.Millisecond
	}
	return out
}

func TestPercentileNearestRank(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample is every percentile", durations(7), 99, 7 * time.Millisecond},
		{"1..100 p50", hundred, 50, 50 * time.Millisecond},
		{"1..100 p95 (no float drift to 96)", hundred, 95, 95 * time.Millisecond},
		{"1..100 p99", hundred, 99, 99 * time.Millisecond},
		{"1..100 p100", hundred, 100, 100 * time.Millisecond},
		{"1..100 p0 is the minimum", hundred, 0, 1 * time.Millisecond},
		{"1..100 p99.9 rounds up to the max", hundred, 99.9, 100 * time.Millisecond},
		// With 10 samples, p99 must be the 10th (ceil(9.9)), never an
		// interpolation between the 9th and the 10th.
		{"ten samples p99", durations(1, 2, 3, 4, 5, 6, 7, 8, 9, 50), 99, 50 * time.Millisecond},
		{"ten samples p90", durations(1, 2, 3, 4, 5, 6, 7, 8, 9, 50), 90, 9 * time.Millisecond},
		{"two samples p50 is the lower", durations(1, 3), 50, 1 * time.Millisecond},
		{"two samples p51 is the upper", durations(1, 3), 51, 3 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := Percentile(tt.sorted, tt.p); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestLatencySummary(t *testing.T) {
	l := NewLatency()
	if s := l.Summary(); s != (Summary{}) {
		t.Fatalf("empty: %+v", s)
	}
	// Added out of order, from several goroutines.
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 100 - g; i > 0; i -= 4 {
				l.Add(time.Duration(i) * time.Millisecond)
			}
		}(g)
	}
	wg.Wait()
	l.Add(-time.Millisecond) // clamps to 0
	s := l.Summary()
	if s.Count != 101 || s.Min != 0 || s.P50 != 50 || s.P95 != 95 || s.P99 != 99 || s.Max != 100 {
		t.Fatalf("summary: %+v", s)
	}
	if s.Mean < 49.9 || s.Mean > 50.1 {
		t.Fatalf("mean: %v", s.Mean)
	}
}

// Past the sample limit the count, the mean and the max stay exact and the
// percentiles come from a uniform reservoir.
func TestLatencyReservoir(t *testing.T) {
	l := newLatency(1000)
	for i := 1; i <= 100_000; i++ {
		l.Add(time.Duration(i) * time.Microsecond)
	}
	if len(l.samples) != 1000 {
		t.Fatalf("kept %d samples", len(l.samples))
	}
	s := l.Summary()
	if s.Count != 100_000 || s.Max != 100 {
		t.Fatalf("summary: %+v", s)
	}
	// The true median is 50 ms; a uniform reservoir of 1000 is within a few
	// percent.
	if s.P50 < 45 || s.P50 > 55 {
		t.Fatalf("reservoir median %v ms is not near 50", s.P50)
	}
}

func TestCounter(t *testing.T) {
	var c Counter
	if m := c.Map(); m == nil || len(m) != 0 {
		t.Fatalf("empty map: %v", m)
	}
	c.Add("call:create: rate_limited", 2)
	c.Add("call:create: rate_limited", 1)
	c.Add("connect: unauthorized", 1)
	if m := c.Map(); m["call:create: rate_limited"] != 3 || c.Total() != 4 {
		t.Fatalf("counter: %v", m)
	}
}

func TestEventCounter(t *testing.T) {
	var c eventCounter
	buf := []byte("presence:user_connected")
	for i := 0; i < 3; i++ {
		c.add(buf)
	}
	copy(buf, "PRESENCE") // the counter must not alias the caller's buffer
	c.add([]byte("call:incoming"))
	got := c.snapshot()
	if got["presence:user_connected"] != 3 || got["call:incoming"] != 1 || len(got) != 2 {
		t.Fatalf("snapshot: %v", got)
	}
	if allocs := testing.AllocsPerRun(100, func() { c.add([]byte("call:incoming")) }); allocs != 0 {
		t.Fatalf("counting a known event allocates %v times", allocs)
	}
}

func TestReportTable(t *testing.T) {
	rep := newReport(Config{Scenario: ScenarioCall, URLs: []string{"http://127.0.0.1:1"}, Devices: 2})
	l := NewLatency()
	l.Add(3 * time.Millisecond)
	rep.step("notify→incoming (per device)", l)
	rep.deliveries("call:incoming").add(Deliveries{Expected: 2, OnTime: 1, Lost: 1})
	rep.Errors = map[string]int64{"call:create: rate_limited": 1}
	rep.note("hello %d", 1)
	var b strings.Builder
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"notify→incoming (per device)", "call:incoming", "call:create: rate_limited", "note: hello 1"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	if rep.Lost() != 1 || rep.Duplicates() != 0 {
		t.Fatalf("lost %d dup %d", rep.Lost(), rep.Duplicates())
	}
}
