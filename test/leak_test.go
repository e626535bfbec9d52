package test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/loadtest"
	"github.com/switchboard/switchboard/service"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/memory"
)

// Leak test bounds. Clients and server share this process, so the figures
// are the whole process's; with every client closed the clients hold
// nothing (one reader goroutine per open connection, stopped by Close or
// Abort), so what remains above the baseline is the node's.
const (
	// leakGoroutineSlack allows for goroutines that exist only after the
	// first connection (the socket.io library's lazily started timers and
	// cleanup loops, net/http's and the runtime's own) and for a few
	// still-exiting ones at the time of counting. A per-connection leak,
	// even of a single goroutine, shows up as thousands.
	leakGoroutineSlack = 20
	// Heap, after GC, two bounds:
	//
	// Against the baseline: leakHeapSlack or leakHeapRatio of the baseline,
	// whichever is larger, plus leakPerPeakGoroutine for every goroutine
	// the process ran at its peak. The runtime never frees a goroutine
	// descriptor (runtime.g, kept for reuse), which a heap profile of this
	// test shows as runtime.malg: 3.6 MB at 6,000 peak goroutines, about
	// 600 B each; the maps that held every socket (the socket.io server's,
	// the gateway's, the memory store's) also keep their buckets once
	// emptied. (SWITCHBOARD_LEAK_HEAPPROFILE=file writes that profile.)
	//
	// Across cycles, the leak check proper: the heap after the last cycle
	// may exceed the heap after the first by leakCycleSlack or
	// leakCycleRatio, whichever is larger. Retained capacity is all there
	// after the first cycle; a leak of L bytes per connection adds
	// L × clients × (cycles-1): at 1,000 × 10, from about 230 B on.
	leakHeapSlack        = 10 << 20
	leakHeapRatio        = 0.20
	leakPerPeakGoroutine = 640
	leakCycleSlack       = 2 << 20
	leakCycleRatio       = 0.10
)

// leakScale reads the scale: SWITCHBOARD_LEAK_CLIENTS (default 1000, the
// issue's 5,000 by hand) and SWITCHBOARD_LEAK_CYCLES (default 10).
func leakScale() (clients, cycles int) {
	clients, cycles = 1000, 10
	if raceEnabled() {
		clients = 300 // the race detector makes each socket ~10× dearer
	}
	if v, err := strconv.Atoi(os.Getenv("SWITCHBOARD_LEAK_CLIENTS")); err == nil && v > 0 && v <= 20000 {
		clients = v
	}
	if v, err := strconv.Atoi(os.Getenv("SWITCHBOARD_LEAK_CYCLES")); err == nil && v > 0 && v <= 100 {
		cycles = v
	}
	return clients, cycles
}

// raceEnabled reports whether the binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

type memSample struct {
	goroutines int
	heap       uint64 // HeapAlloc after GC
}

func sampleMem() memSample {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSample{goroutines: runtime.NumGoroutine(), heap: ms.HeapAlloc}
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// TestLeakConnectDisconnectCycles is issue 5's leak check: goroutines and
// heap back to their baseline after cycles of connecting and disconnecting
// many clients, the node holding no socket and the store no presence of
// them afterwards. The clients are the load tool's minimal websocket client
// (one goroutine each), 20 devices per user (the per-user limit), half of
// them leaving with a Socket.IO disconnect and half dropping the transport.
//
// Default 1,000 clients × 10 cycles (300 under -race); the figure:
//
//	SWITCHBOARD_LEAK_CLIENTS=5000 go test -run TestLeakConnectDisconnectCycles -v ./test/
func TestLeakConnectDisconnectCycles(t *testing.T) {
	if testing.Short() {
		t.Skip("leak test skipped in -short mode")
	}
	clients, cycles := leakScale()
	if os.Getenv("SWITCHBOARD_LEAK_HEAPPROFILE") != "" {
		defer func(r int) { runtime.MemProfileRate = r }(runtime.MemProfileRate)
		runtime.MemProfileRate = 1024 // a fine-grained profile of what stays
	}
	if _, err := loadtest.RaiseNoFile(); err != nil {
		t.Logf("raise open files limit: %v", err)
	}
	const grace = 200 * time.Millisecond
	const devicesPerUser = 20
	e := newEnv(t, func(o *nodeOptions) {
		o.Clock = time.Now
		o.Store = memory.New(time.Now)
		o.Loops = true
		o.JobPoll = 50 * time.Millisecond
		o.Service.PresenceGrace = grace
		o.Gateway.PresenceGrace = grace
		o.Gateway.SweepInterval = 500 * time.Millisecond
	})
	users := (clients + devicesPerUser - 1) / devicesPerUser
	userID := func(i int) string { return fmt.Sprintf("leak-u%04d", i/devicesPerUser) }
	auths := make([][]byte, clients)
	for i := range auths {
		auths[i] = []byte(`{"token":"` + token(t, userID(i), "d"+strconv.Itoa(i%devicesPerUser), "") + `"}`)
	}
	userIDs := make([]string, users)
	for i := range userIDs {
		userIDs[i] = userID(i * devicesPerUser)
	}
	ctx := context.Background()
	nodeID := e.Node.Service.Config().NodeID

	// Warm up with one client, so the baseline includes what exists once
	// and for all after the first connection (library timers, pools).
	c, err := loadtest.Dial(ctx, loadtest.DialOptions{URL: e.URL, Auth: auths[0]})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	eventually(t, 10*time.Second, "warm-up client gone", func() bool { return e.Node.Gateway.Conns() == 0 })
	waitSettled(t, e, userIDs[:1], nodeID, 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	base := sampleMem()
	t.Logf("scale: %d clients (%d users × %d devices) × %d cycles; baseline %d goroutines, heap %s", clients, users, devicesPerUser, cycles, base.goroutines, mib(base.heap))

	const dialers = 32
	start := time.Now()
	var peakG int
	var peakHeap uint64
	var last, first memSample
	for cycle := 1; cycle <= cycles; cycle++ {
		cstart := time.Now()
		conns := make([]*loadtest.Client, clients)
		var failed atomic.Int64
		var firstErr atomic.Value
		forEach(clients, dialers, func(i int) {
			var c *loadtest.Client
			var err error
			for attempt := 0; attempt < 3; attempt++ { // a refused dial under load is retried, bounded
				c, err = loadtest.Dial(ctx, loadtest.DialOptions{URL: e.URL, Auth: auths[i], Timeout: 20 * time.Second, Tag: i})
				if err == nil {
					break
				}
			}
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			conns[i] = c
		})
		if n := failed.Load(); n > 0 {
			t.Fatalf("cycle %d: %d of %d clients failed to connect; first error: %v", cycle, n, clients, firstErr.Load())
		}
		eventually(t, 30*time.Second, "all sockets registered", func() bool { return e.Node.Gateway.Conns() == clients })
		connected := time.Since(cstart)
		up := sampleMem()
		peakG, peakHeap = max(peakG, up.goroutines), max(peakHeap, up.heap)
		online, err := e.Node.Service.QueryPresence(ctx, service.PresenceQuery{UserIDs: userIDs[:min(len(userIDs), 500)]})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range online {
			if p.Status != state.Online {
				t.Fatalf("cycle %d: %s is %s while its devices are connected", cycle, p.UserID, p.Status)
			}
		}

		// Half leave cleanly, half drop the transport.
		forEach(clients, dialers, func(i int) {
			if i%2 == 0 {
				conns[i].Close()
			} else {
				conns[i].Abort()
			}
			conns[i] = nil
		})
		eventually(t, 30*time.Second, "node holds no socket", func() bool { return e.Node.Gateway.Conns() == 0 })
		waitSettled(t, e, userIDs, nodeID, 30*time.Second)
		last = sampleMem()
		if cycle == 1 {
			first = last
		}
		t.Logf("cycle %2d: connected in %v (%d goroutines, heap %s with all up); after: %d goroutines, heap %s; cycle %v",
			cycle, connected.Round(time.Millisecond), up.goroutines, mib(up.heap), last.goroutines, mib(last.heap), time.Since(cstart).Round(time.Millisecond))
	}

	// Goroutines of the closed sockets may still be on their way out:
	// wait (bounded) for the count to come back.
	deadline := time.Now().Add(15 * time.Second)
	for last.goroutines > base.goroutines+leakGoroutineSlack && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		last = sampleMem()
	}
	if path := os.Getenv("SWITCHBOARD_LEAK_HEAPPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			runtime.GC()
			_ = pprof.WriteHeapProfile(f)
			f.Close()
			t.Logf("heap profile written to %s (go tool pprof -sample_index=inuse_space -top %s)", path, path)
		}
	}
	heapLimit := base.heap + max(uint64(leakHeapSlack), uint64(float64(base.heap)*leakHeapRatio)) + uint64(peakG)*leakPerPeakGoroutine
	cycleLimit := first.heap + max(uint64(leakCycleSlack), uint64(float64(first.heap)*leakCycleRatio))
	t.Logf("after %d cycles of %d clients in %v: goroutines %d → %d (peak %d); heap %s → %s after the first cycle → %s after the last (peak %s; limits %s from the baseline, %s from the first cycle)",
		cycles, clients, time.Since(start).Round(time.Millisecond), base.goroutines, last.goroutines, peakG,
		mib(base.heap), mib(first.heap), mib(last.heap), mib(peakHeap), mib(heapLimit), mib(cycleLimit))
	if last.goroutines > base.goroutines+leakGoroutineSlack {
		t.Errorf("goroutines %d after the cycles, baseline %d (+%d allowed)\n%s", last.goroutines, base.goroutines, leakGoroutineSlack, goroutineSummary())
	}
	if last.heap > heapLimit {
		t.Errorf("heap %s after the cycles, baseline %s (limit %s)", mib(last.heap), mib(base.heap), mib(heapLimit))
	}
	if last.heap > cycleLimit {
		t.Errorf("heap grew over the cycles: %s after the first, %s after the last (limit %s)", mib(first.heap), mib(last.heap), mib(cycleLimit))
	}
	if n := e.Node.Gateway.Conns(); n != 0 {
		t.Errorf("gateway still holds %d sockets", n)
	}
}

// waitSettled waits until the store holds no connection of the node and
// every user is offline (the presence grace has run out and its job ran).
func waitSettled(t *testing.T, e *env, users []string, nodeID string, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	var why string
	deadline := time.Now().Add(timeout)
	for {
		why = ""
		conns, err := e.Node.Service.Store().Presence().NodeConns(ctx, nodeID)
		switch {
		case err != nil:
			why = err.Error()
		case len(conns) > 0:
			why = fmt.Sprintf("%d connections still indexed under the node", len(conns))
		}
		for i := 0; why == "" && i < len(users); i += 500 {
			ps, err := e.Node.Service.QueryPresence(ctx, service.PresenceQuery{UserIDs: users[i:min(i+500, len(users))]})
			if err != nil {
				why = err.Error()
				break
			}
			for _, p := range ps {
				if p.Status != state.Offline {
					why = fmt.Sprintf("%s still %s", p.UserID, p.Status)
					break
				}
			}
		}
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("presence not settled after %v: %s", timeout, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// goroutineSummary groups the live goroutines by their top frames, for a
// failure message that says what leaked.
func goroutineSummary() string {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	counts := map[string]int{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		lines := strings.Split(g, "\n")
		key := ""
		for i := 1; i < len(lines) && i < 6; i += 2 {
			key += strings.TrimSpace(lines[i]) + " < "
		}
		counts[key]++
	}
	var b strings.Builder
	for k, n := range counts {
		if n >= 5 {
			fmt.Fprintf(&b, "%6d  %s\n", n, k)
		}
	}
	return b.String()
}

// forEach runs f(0) … f(n-1) on workers goroutines and returns when all
// are done.
func forEach(n, workers int, f func(i int)) {
	var wg sync.WaitGroup
	var next atomic.Int64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(i)
			}
		}()
	}
	wg.Wait()
}
