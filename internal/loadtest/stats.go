package loadtest

import (
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"time"
)

// maxSamples bounds the memory of one Latency: beyond it, samples are kept
// by reservoir sampling (every sample equally likely to be kept), while the
// count, the sum and the maximum stay exact.
const maxSamples = 1 << 20

// Latency collects durations and summarises them by percentiles. It is safe
// for concurrent use.
type Latency struct {
	mu      sync.Mutex
	samples []time.Duration
	count   int64
	sum     time.Duration
	max     time.Duration
	rng     *rand.Rand
	limit   int
}

// NewLatency returns an empty recorder.
func NewLatency() *Latency { return newLatency(maxSamples) }

func newLatency(limit int) *Latency {
	// A fixed seed keeps runs reproducible; the reservoir only matters
	// past a million samples.
	return &Latency{rng: rand.New(rand.NewPCG(1, 2)), limit: limit}
}

// Add records one duration (negative durations count as zero: clocks are
// monotonic, so these can only come from rounding).
func (l *Latency) Add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.count++
	l.sum += d
	if d > l.max {
		l.max = d
	}
	if len(l.samples) < l.limit {
		l.samples = append(l.samples, d)
		return
	}
	// Algorithm R: keep the new sample with probability limit/count.
	if j := l.rng.Int64N(l.count); j < int64(l.limit) {
		l.samples[j] = d
	}
}

// Summary is a Latency's digest, in milliseconds for humans and machines.
type Summary struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	Min   float64 `json:"min_ms"`
	P50   float64 `json:"p50_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// Summary computes the percentiles of what was recorded so far.
func (l *Latency) Summary() Summary {
	l.mu.Lock()
	s := append([]time.Duration(nil), l.samples...)
	count, sum, mx := l.count, l.sum, l.max
	l.mu.Unlock()
	if count == 0 {
		return Summary{}
	}
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return Summary{
		Count: count,
		Mean:  ms(sum / time.Duration(count)),
		Min:   ms(s[0]),
		P50:   ms(Percentile(s, 50)),
		P95:   ms(Percentile(s, 95)),
		P99:   ms(Percentile(s, 99)),
		Max:   ms(mx),
	}
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of sorted by the
// nearest-rank method: the smallest sample such that at least p% of the
// samples are less than or equal to it. It is an observed value, never an
// interpolation, so "p99 = 4 ms" means 99% of the deliveries took at most
// 4 ms. An empty slice gives 0.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	if p >= 100 {
		return sorted[n-1]
	}
	// The tiny epsilon absorbs binary floating point error in p/100*n,
	// e.g. 0.95*100 = 95.00000000000001 must rank 95, not 96.
	rank := int(math.Ceil(p/100*float64(n) - 1e-9))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Millisecond)*1000) / 1000
}

// Counter is a set of named counts (errors by code), safe for concurrent
// use.
type Counter struct {
	mu sync.Mutex
	m  map[string]int64
}

// Add increments key by n.
func (c *Counter) Add(key string, n int64) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]int64{}
	}
	c.m[key] += n
	c.mu.Unlock()
}

// Map returns a copy (empty, not nil, when nothing was counted).
func (c *Counter) Map() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) == 0 {
		return map[string]int64{}
	}
	out := make(map[string]int64, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

// Total sums every key.
func (c *Counter) Total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var t int64
	for _, v := range c.m {
		t += v
	}
	return t
}
