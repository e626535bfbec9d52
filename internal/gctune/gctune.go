// Package gctune lowers the Go collector's GOGC while the process is quiet
// and puts it back as soon as the process allocates again.
//
// Why: with GOGC=100 the heap may grow to twice the live heap before the
// next collection, and the runtime keeps those pages. A gateway node that
// took a storm of connections and now holds them idle keeps about as much
// memory again as its connections need: half of its RSS is the collector's
// headroom, which an idle node never uses. While the node is quiet (it
// allocates less than a small share of its live heap per period), the tuner
// sets GOGC to Config.QuietPercent and returns the free pages to the system
// at once (debug.FreeOSMemory); the heap can then grow only by that share
// before the next collection, which at a quiet node's allocation rate is
// rare. The first busy period restores the process's own GOGC, so a loaded
// node collects as it always did. A small heap (under Config.MinLive) is
// left alone: its headroom is not worth a collection.
//
// The other way round, a busy process whose live heap is small collects
// very often at GOGC=100: a node carrying calls keeps ~10 MiB live and
// allocates ~60 KB per call, so at ~1,500 calls a second it collected ~8
// times a second, ~15% of its CPU. With Config.MinHeadroom the tuner
// raises GOGC while busy so that the heap may grow at least that much
// between collections (at most GOGC=1000, never below the process's own):
// a few tens of MiB of RSS for most of that CPU. A large live heap (a node
// holding many connections) already has that headroom and keeps its GOGC.
package gctune

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/rs/zerolog"
)

// Config configures a Tuner. Zero fields take the defaults below.
type Config struct {
	// QuietPercent is GOGC while the process is quiet. Zero or less, or not
	// below the process's own GOGC, turns the tuner off.
	QuietPercent int
	// Period is how often the tuner looks at the heap (default 5 s).
	Period time.Duration
	// QuietShare: a period is quiet when the process allocated less than
	// this share of its live heap in it (default 0.1).
	QuietShare float64
	// QuietPeriods is how many quiet periods in a row lower GOGC
	// (default 2).
	QuietPeriods int
	// MinLive is the live heap under which the tuner stays out (default
	// 64 MiB).
	MinLive uint64
	// MinHeadroom is the least the heap may grow between collections
	// while the process is busy; zero: no floor. Under it, GOGC is
	// 100 × MinHeadroom / live heap, at most maxPercent and never below
	// the process's own.
	MinHeadroom uint64
}

// maxPercent bounds the GOGC that MinHeadroom sets.
const maxPercent = 1000

// Tuner is the loop; make one with New and call Run.
type Tuner struct {
	cfg     Config
	log     zerolog.Logger
	busy    int  // the process's own GOGC
	quietOn bool // the quiet GOGC applies (QuietPercent below busy)
	cur     int  // GOGC as the tuner last left it

	// The runtime, replaced in tests.
	read  func() sample
	setGC func(int) int
	free  func()

	prev    uint64 // allocated bytes at the previous look
	run     int    // quiet periods in a row
	lowered bool
}

// sample is what the tuner reads of the runtime.
type sample struct {
	allocs uint64 // bytes allocated since the process started
	live   uint64 // live heap at the last collection
	gogc   int    // GOGC now
}

// New returns a Tuner for this process.
func New(cfg Config, log zerolog.Logger) *Tuner {
	if cfg.Period <= 0 {
		cfg.Period = 5 * time.Second
	}
	if cfg.QuietShare <= 0 {
		cfg.QuietShare = 0.1
	}
	if cfg.QuietPeriods <= 0 {
		cfg.QuietPeriods = 2
	}
	if cfg.MinLive == 0 {
		cfg.MinLive = 64 << 20
	}
	return &Tuner{cfg: cfg, log: log, read: readRuntime, setGC: debug.SetGCPercent, free: debug.FreeOSMemory}
}

// Run tunes until ctx ends, then puts the process's GOGC back.
func (t *Tuner) Run(ctx context.Context) {
	if !t.start() {
		return
	}
	tick := time.NewTicker(t.cfg.Period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if t.cur != t.busy {
				t.setGC(t.busy)
			}
			return
		case <-tick.C:
			t.step()
		}
	}
}

// start reads the process's GOGC and reports whether there is anything to
// tune. GOGC=off (negative) is left alone.
func (t *Tuner) start() bool {
	s := t.read()
	t.busy, t.cur, t.prev = s.gogc, s.gogc, s.allocs
	t.quietOn = t.cfg.QuietPercent > 0 && t.busy > t.cfg.QuietPercent
	return t.quietOn || (t.cfg.MinHeadroom > 0 && t.busy > 0)
}

// busyPercent is GOGC for a busy period whose live heap is live: the
// process's own, raised to give the heap MinHeadroom.
func (t *Tuner) busyPercent(live uint64) int {
	p := t.busy
	if t.cfg.MinHeadroom == 0 || live == 0 || p <= 0 {
		return p
	}
	want := min(100*t.cfg.MinHeadroom/live, maxPercent)
	return max(p, int(want))
}

// step looks at one period: enough quiet periods in a row lower GOGC and
// free what the heap does not use; a busy one restores it.
func (t *Tuner) step() {
	s := t.read()
	allocated := s.allocs - t.prev
	t.prev = s.allocs
	quiet := t.quietOn && s.live >= t.cfg.MinLive && float64(allocated) < t.cfg.QuietShare*float64(s.live)
	switch {
	case quiet && !t.lowered:
		t.run++
		if t.run < t.cfg.QuietPeriods {
			return
		}
		t.setGC(t.cfg.QuietPercent)
		t.free()
		t.lowered, t.cur = true, t.cfg.QuietPercent
		t.log.Info().Str("event", "gc_quiet").Int("gogc", t.cfg.QuietPercent).Uint64("live_mib", s.live>>20).
			Msg("quiet: collector headroom lowered and free memory returned")
	case !quiet:
		t.run = 0
		want := t.busyPercent(s.live)
		switch {
		case t.lowered:
			t.setGC(want)
			t.lowered, t.cur = false, want
			t.log.Info().Str("event", "gc_busy").Int("gogc", want).Uint64("allocated_mib", allocated>>20).
				Msg("busy: collector headroom restored")
		case 10*abs(want-t.cur) > t.cur:
			// More than a tenth off: the live heap moved, and so does
			// the headroom it gets.
			t.setGC(want)
			t.cur = want
			t.log.Debug().Str("event", "gc_headroom").Int("gogc", want).Uint64("live_mib", s.live>>20).
				Msg("busy: collector headroom follows the live heap")
		}
	}
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// readRuntime reads the sample from runtime/metrics.
func readRuntime() sample {
	ms := []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/gogc:percent"},
	}
	metrics.Read(ms)
	var s sample
	if ms[0].Value.Kind() == metrics.KindUint64 {
		s.allocs = ms[0].Value.Uint64()
	}
	if ms[1].Value.Kind() == metrics.KindUint64 {
		s.live = ms[1].Value.Uint64()
	}
	if ms[2].Value.Kind() == metrics.KindUint64 {
		s.gogc = int(ms[2].Value.Uint64())
	}
	return s
}
