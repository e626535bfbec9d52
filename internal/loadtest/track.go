package loadtest

import (
	"sync"
	"sync/atomic"
	"time"
)

// epoch is the monotonic origin of the arrival times kept in atomics.
var epoch = time.Now()

func mono(t time.Time) int64 { return int64(t.Sub(epoch)) }

// slot is one expected delivery: how many times it arrived and when first.
type slot struct {
	n  atomic.Int32
	at atomic.Int64 // mono() of the first arrival
}

// stage tracks the expected deliveries of one broadcast (one event to a
// known set of sockets). The scenario creates it, marks the sockets that
// must not receive, arms it just before emitting, and waits; readers call
// arrive from their goroutines; accounting happens once the run is quiet.
type stage struct {
	slots    []slot
	excluded []bool // set before arm, read-only after
	// sent is mono() of the emit, set before arm.
	sent      int64
	armed     atomic.Bool
	remaining atomic.Int32
	done      chan struct{}
}

func newStage(n int) *stage {
	return &stage{slots: make([]slot, n), done: make(chan struct{})}
}

// exclude marks slot i as not expected (the emitting socket). Call before
// arm.
func (s *stage) exclude(i int) {
	if s.excluded == nil {
		s.excluded = make([]bool, len(s.slots))
	}
	s.excluded[i] = true
}

// arm records the emit time and starts accepting arrivals.
func (s *stage) arm(sent time.Time) {
	s.sent = mono(sent)
	n := len(s.slots)
	for _, x := range s.excluded {
		if x {
			n--
		}
	}
	s.remaining.Store(int32(n))
	if n == 0 {
		close(s.done)
	}
	s.armed.Store(true)
}

// arrive records a delivery to slot i at time at. It reports false when the
// delivery was not expected (stage not armed, slot excluded or out of
// range): the caller counts it as unexpected.
func (s *stage) arrive(i int, at time.Time) bool {
	if s == nil || !s.armed.Load() || i < 0 || i >= len(s.slots) || (s.excluded != nil && s.excluded[i]) {
		return false
	}
	sl := &s.slots[i]
	if sl.n.Add(1) == 1 {
		sl.at.Store(mono(at))
		if s.remaining.Add(-1) == 0 {
			close(s.done)
		}
	}
	return true
}

// wait waits until every expected delivery arrived, up to timeout.
func (s *stage) wait(timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-s.done:
		return true
	case <-t.C:
		return false
	}
}

// Deliveries counts the expected deliveries of one event kind.
type Deliveries struct {
	// Expected deliveries (one per socket that must receive, per emit).
	Expected int64 `json:"expected"`
	// OnTime arrived within the delivery timeout.
	OnTime int64 `json:"on_time"`
	// Lost did not arrive within the delivery timeout.
	Lost int64 `json:"lost"`
	// Late is the part of Lost that arrived after the timeout, before
	// the run ended.
	Late int64 `json:"late"`
	// Duplicates are arrivals beyond the first at the same socket.
	Duplicates int64 `json:"duplicates"`
	// Unexpected arrived at a socket that was not in the audience, or
	// for an operation the tool did not start.
	Unexpected int64 `json:"unexpected"`
}

func (d *Deliveries) add(o Deliveries) {
	d.Expected += o.Expected
	d.OnTime += o.OnTime
	d.Lost += o.Lost
	d.Late += o.Late
	d.Duplicates += o.Duplicates
	d.Unexpected += o.Unexpected
}

// account adds the stage's outcome to d and the on-time latencies of the
// slots for which want(i) holds (nil: all) to lat. Call once the run is
// quiet. An unarmed stage (the operation failed before emitting) expects
// nothing.
func (s *stage) account(d *Deliveries, timeout time.Duration, lat *Latency, want func(i int) bool) {
	if s == nil || !s.armed.Load() {
		return
	}
	for i := range s.slots {
		if s.excluded != nil && s.excluded[i] {
			continue
		}
		d.Expected++
		sl := &s.slots[i]
		n := sl.n.Load()
		if n == 0 {
			d.Lost++
			continue
		}
		d.Duplicates += int64(n - 1)
		at := sl.at.Load()
		if at == 0 { // first arrival still storing its time: it is now
			at = mono(time.Now())
		}
		lag := time.Duration(at - s.sent)
		if lag > timeout {
			d.Lost++
			d.Late++
			continue
		}
		d.OnTime++
		if lat != nil && (want == nil || want(i)) {
			lat.Add(lag)
		}
	}
}

// last returns how long after the emit the last expected delivery arrived,
// and false when one is missing: the time for a broadcast to reach its
// whole audience.
func (s *stage) last() (time.Duration, bool) {
	if s == nil || !s.armed.Load() {
		return 0, false
	}
	var latest int64
	for i := range s.slots {
		if s.excluded != nil && s.excluded[i] {
			continue
		}
		at := s.slots[i].at.Load()
		if at == 0 {
			return 0, false
		}
		latest = max(latest, at)
	}
	return time.Duration(latest - s.sent), true
}

// eventCounter counts received events by name without allocating on the
// hot path (the map lookup with a []byte key converted in place does not
// allocate; only a new name does).
type eventCounter struct {
	mu sync.RWMutex
	m  map[string]*atomic.Int64
}

func (c *eventCounter) add(name []byte) {
	c.mu.RLock()
	p := c.m[string(name)]
	c.mu.RUnlock()
	if p == nil {
		c.mu.Lock()
		if c.m == nil {
			c.m = map[string]*atomic.Int64{}
		}
		if p = c.m[string(name)]; p == nil {
			p = new(atomic.Int64)
			c.m[string(name)] = p
		}
		c.mu.Unlock()
	}
	p.Add(1)
}

func (c *eventCounter) snapshot() map[string]int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make(map[string]int64, len(c.m))
	for k, v := range c.m {
		out[k] = v.Load()
	}
	return out
}
