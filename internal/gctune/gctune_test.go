package gctune

import (
	"context"
	"runtime"
	"runtime/debug"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

const mib = 1 << 20

// fakeRuntime drives a Tuner with made-up samples.
type fakeRuntime struct {
	s     sample
	gogc  []int // what setGC was given, in order
	frees int
}

func (f *fakeRuntime) tuner(cfg Config) *Tuner {
	t := New(cfg, zerolog.Nop())
	t.read = func() sample { return f.s }
	t.setGC = func(p int) int { f.gogc = append(f.gogc, p); return 0 }
	t.free = func() { f.frees++ }
	return t
}

func TestTunerStates(t *testing.T) {
	type period struct {
		allocated, live uint64
		wantGOGC        []int // setGC calls after this period, all so far
		wantFrees       int
	}
	cases := []struct {
		name    string
		cfg     Config
		busy    int
		off     bool // the tuner has nothing to do
		periods []period
	}{
		{
			name: "two quiet periods lower, a busy one restores",
			cfg:  Config{QuietPercent: 25},
			busy: 100,
			periods: []period{
				{allocated: 1 * mib, live: 200 * mib},
				{allocated: 1 * mib, live: 200 * mib, wantGOGC: []int{25}, wantFrees: 1},
				{allocated: 2 * mib, live: 200 * mib, wantGOGC: []int{25}, wantFrees: 1},
				{allocated: 50 * mib, live: 200 * mib, wantGOGC: []int{25, 100}, wantFrees: 1},
				{allocated: 1 * mib, live: 200 * mib, wantGOGC: []int{25, 100}, wantFrees: 1},
				{allocated: 1 * mib, live: 200 * mib, wantGOGC: []int{25, 100, 25}, wantFrees: 2},
			},
		},
		{
			name: "a busy period between quiet ones starts the count again",
			cfg:  Config{QuietPercent: 25},
			busy: 100,
			periods: []period{
				{allocated: 1 * mib, live: 200 * mib},
				{allocated: 40 * mib, live: 200 * mib},
				{allocated: 1 * mib, live: 200 * mib},
				{allocated: 1 * mib, live: 200 * mib, wantGOGC: []int{25}, wantFrees: 1},
			},
		},
		{
			name: "a small heap is left alone",
			cfg:  Config{QuietPercent: 25},
			busy: 100,
			periods: []period{
				{allocated: 0, live: 10 * mib},
				{allocated: 0, live: 10 * mib},
				{allocated: 0, live: 10 * mib},
			},
		},
		{
			name: "the process's own GOGC is what comes back",
			cfg:  Config{QuietPercent: 25},
			busy: 400,
			periods: []period{
				{allocated: 0, live: 100 * mib},
				{allocated: 0, live: 100 * mib, wantGOGC: []int{25}, wantFrees: 1},
				{allocated: 30 * mib, live: 100 * mib, wantGOGC: []int{25, 400}, wantFrees: 1},
			},
		},
		{
			name: "a small live heap gets the least headroom while busy",
			cfg:  Config{MinHeadroom: 32 * mib},
			busy: 100,
			periods: []period{
				{allocated: 500 * mib, live: 10 * mib, wantGOGC: []int{320}},
				{allocated: 500 * mib, live: 10*mib + mib/2, wantGOGC: []int{320}}, // 304: within a tenth
				{allocated: 500 * mib, live: 20 * mib, wantGOGC: []int{320, 160}},
				{allocated: 500 * mib, live: 64 * mib, wantGOGC: []int{320, 160, 100}},
				{allocated: 500 * mib, live: mib / 4, wantGOGC: []int{320, 160, 100, 1000}}, // at most 1000
			},
		},
		{
			name: "the floor never lowers the process's own GOGC",
			cfg:  Config{MinHeadroom: 32 * mib},
			busy: 400,
			periods: []period{
				{allocated: 500 * mib, live: 10 * mib},
				{allocated: 500 * mib, live: 4 * mib, wantGOGC: []int{800}},
				{allocated: 500 * mib, live: 10 * mib, wantGOGC: []int{800, 400}},
			},
		},
		{
			name: "quiet, then busy with a small heap: the floor, not the process's GOGC",
			cfg:  Config{QuietPercent: 25, MinHeadroom: 32 * mib, MinLive: 8 * mib},
			busy: 100,
			periods: []period{
				{allocated: 0, live: 10 * mib},
				{allocated: 0, live: 10 * mib, wantGOGC: []int{25}, wantFrees: 1},
				{allocated: 100 * mib, live: 10 * mib, wantGOGC: []int{25, 320}, wantFrees: 1},
				{allocated: 100 * mib, live: 10 * mib, wantGOGC: []int{25, 320}, wantFrees: 1},
			},
		},
		{
			name: "the floor alone, with GOGC=off: off",
			cfg:  Config{MinHeadroom: 32 * mib},
			busy: -1,
			off:  true,
		},
		{
			name: "off with GOGC=off",
			cfg:  Config{QuietPercent: 25},
			busy: -1,
			off:  true,
		},
		{
			name: "off when the quiet percent is not below the process's",
			cfg:  Config{QuietPercent: 50},
			busy: 50,
			off:  true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeRuntime{s: sample{gogc: tc.busy, allocs: 1000 * mib}}
			tu := f.tuner(tc.cfg)
			if on := tu.start(); on == tc.off {
				t.Fatalf("tuner on: %v, want %v", on, !tc.off)
			}
			for i, p := range tc.periods {
				f.s.allocs += p.allocated
				f.s.live = p.live
				tu.step()
				if !slices.Equal(f.gogc, p.wantGOGC) || f.frees != p.wantFrees {
					t.Fatalf("after period %d: GOGC set to %v and %d frees, want %v and %d", i, f.gogc, f.frees, p.wantGOGC, p.wantFrees)
				}
			}
		})
	}
}

// On the real runtime: a quiet process with a large live heap gets the
// quiet GOGC, its free pages go back to the system, and GOGC comes back
// when Run ends.
func TestTunerOnTheRuntime(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	live := make([][]byte, 80)
	for i := range live {
		live[i] = make([]byte, mib)
	}
	runtime.GC()
	tu := New(Config{QuietPercent: 30, Period: 20 * time.Millisecond, MinLive: 32 * mib}, zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tu.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for readRuntime().gogc != 30 {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC still %d after 5 s of quiet", readRuntime().gogc)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if g := readRuntime().gogc; g != 100 {
		t.Fatalf("GOGC %d after Run ended, want 100", g)
	}
	runtime.KeepAlive(live)
}

// On the real runtime: a busy process with a small live heap gets GOGC
// raised to its headroom floor, and its own back when Run ends.
func TestTunerHeadroomOnTheRuntime(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	tu := New(Config{MinHeadroom: 256 * mib, Period: 20 * time.Millisecond}, zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tu.Run(ctx); close(done) }()
	var sink []byte
	deadline := time.Now().Add(5 * time.Second)
	for readRuntime().gogc <= 100 {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC still %d after 5 s busy with a small heap", readRuntime().gogc)
		}
		sink = make([]byte, 64<<10) // busy: allocating
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if g := readRuntime().gogc; g != 100 {
		t.Fatalf("GOGC %d after Run ended, want 100", g)
	}
	runtime.KeepAlive(sink)
}
