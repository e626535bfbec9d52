package loadtest

import (
	"context"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/gateway"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/service"
	"github.com/switchboard/switchboard/state/memory"
)

const smokeSecret = "load-smoke-secret-0123456789abcdef0123"

// smokeGrace is the presence grace of the in-process node: short, so the
// presence scenario's disconnects arrive quickly.
const smokeGrace = 300 * time.Millisecond

// startNode serves one in-process node (memory store, real clock, loops
// running) on 127.0.0.1 and returns its base URL.
func startNode(t testing.TB) string {
	t.Helper()
	v, err := auth.NewVerifier(auth.KeyConfig{Secret: smokeSecret})
	if err != nil {
		t.Fatal(err)
	}
	scfg := service.DefaultConfig()
	scfg.NodeID = "load-smoke"
	scfg.PresenceGrace = smokeGrace
	scfg.MaxConnsPerUser = MaxDevices // TestProfile's idle runs use many devices per user
	gcfg := gateway.DefaultConfig()
	gcfg.PresenceGrace = smokeGrace
	log := zerolog.Nop()
	if os.Getenv("SWITCHBOARD_TEST_LOG") == "1" {
		log = zerolog.New(os.Stderr).With().Timestamp().Logger()
	}
	n, err := node.New(node.Options{
		Service:  scfg,
		Gateway:  gcfg,
		Store:    memory.New(time.Now),
		Verifier: v,
		Logger:   log,
		JobPoll:  20 * time.Millisecond,
		// No clients are left when the test ends: do not wait out a drain.
		DrainTimeout: time.Second,
		Loops:        true,
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = n.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Shutdown(ctx)
	})
	return "http://" + l.Addr().String()
}

func smokeConfig(url, scenario string) Config {
	return Config{
		Scenario:        scenario,
		URLs:            []string{url},
		Secret:          smokeSecret,
		Duration:        2 * time.Second,
		Quiet:           300 * time.Millisecond,
		DeliveryTimeout: 3 * time.Second,
		PIDs:            []int{os.Getpid()},
	}
}

// clean asserts a run without lost or duplicate deliveries, errors or
// unexpected events, in which every scheduled operation completed.
func clean(t *testing.T, rep *Report, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	_ = rep.WriteTable(&table)
	t.Logf("\n%s", table.String())
	if rep.Connect.Failed != 0 || rep.Connect.Connected != rep.Connect.Attempted {
		t.Errorf("connect: %+v", rep.Connect)
	}
	if len(rep.Errors) != 0 {
		t.Errorf("errors: %v", rep.Errors)
	}
	if rep.Lost() != 0 || rep.Duplicates() != 0 {
		t.Errorf("lost %d, duplicates %d", rep.Lost(), rep.Duplicates())
	}
	for name, d := range rep.Deliveries {
		if d.Unexpected != 0 {
			t.Errorf("%s: %d unexpected deliveries", name, d.Unexpected)
		}
		if d.Expected == 0 {
			t.Errorf("%s: nothing was expected", name)
		}
	}
	if s := rep.Schedule; s != nil {
		if s.Dropped != 0 || s.Started == 0 || rep.Completed != s.Started {
			t.Errorf("completed %d of %d started (%d dropped)", rep.Completed, s.Started, s.Dropped)
		}
	}
}

// The call scenario at a low rate against an in-process node: every
// call completes, with no lost and no duplicate delivery.
func TestSmokeCall(t *testing.T) {
	url := startNode(t)
	cfg := smokeConfig(url, ScenarioCall)
	cfg.Conns, cfg.Devices, cfg.Rate = 24, 2, 10
	rep, err := Run(context.Background(), cfg)
	clean(t, rep, err)
	if rep.Completed < 15 {
		t.Fatalf("only %d calls completed in 2 s at 10/s", rep.Completed)
	}
	inc := rep.Deliveries["call:incoming"]
	if inc.Expected != rep.Completed*2 {
		t.Fatalf("expected incoming %d for %d calls × 2 devices", inc.Expected, rep.Completed)
	}
	for _, s := range rep.Steps {
		if s.Count == 0 {
			t.Errorf("step %s measured nothing", s.Name)
		}
	}
	if len(rep.Servers) != 1 || rep.Servers[0].CPUSeconds <= 0 || rep.ServerCPUPerOpMs <= 0 {
		t.Errorf("server figures: %+v, %v ms/op", rep.Servers, rep.ServerCPUPerOpMs)
	}
}

func TestSmokeFanout(t *testing.T) {
	url := startNode(t)
	cfg := smokeConfig(url, ScenarioFanout)
	cfg.Conns, cfg.Devices, cfg.Rate, cfg.Count = 30, 3, 5, 5
	rep, err := Run(context.Background(), cfg)
	clean(t, rep, err)
	if d := rep.Deliveries["meeting:updated"]; d.Expected != 5*29 {
		t.Fatalf("expected %d deliveries, want 5 × 29", d.Expected)
	}
}

func TestSmokePresence(t *testing.T) {
	url := startNode(t)
	cfg := smokeConfig(url, ScenarioPresence)
	cfg.Watchers, cfg.Rate, cfg.Count = 10, 5, 5
	cfg.Hold, cfg.PresenceGrace = 200*time.Millisecond, smokeGrace
	rep, err := Run(context.Background(), cfg)
	clean(t, rep, err)
	if d := rep.Deliveries["presence:user_disconnected"]; d.Expected != 5*10 {
		t.Fatalf("expected %d disconnect deliveries, want 50", d.Expected)
	}
}

func TestSmokeIdle(t *testing.T) {
	url := startNode(t)
	cfg := smokeConfig(url, ScenarioIdle)
	cfg.Conns, cfg.Duration = 50, 500*time.Millisecond
	rep, err := Run(context.Background(), cfg)
	clean(t, rep, err)
	if rep.Completed != 50 || rep.Servers[0].RSSAfterKiB <= 0 {
		t.Fatalf("idle: %d alive, servers %+v", rep.Completed, rep.Servers)
	}
	if len(rep.Nodes) != 1 || rep.Nodes[0].Connections != 50 || rep.Nodes[0].Goroutines < 50 {
		t.Fatalf("idle: node memory %+v, notes %q", rep.Nodes, rep.Notes)
	}
}

// A node with another key refuses the tool's tokens; the run reports it
// rather than hanging.
func TestSmokeWrongKey(t *testing.T) {
	url := startNode(t)
	cfg := smokeConfig(url, ScenarioIdle)
	cfg.Conns, cfg.Duration, cfg.Secret = 4, 100*time.Millisecond, ""
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Connect.Failed != 4 || rep.Errors["connect: unauthorized"] != 4 {
		t.Fatalf("connect %+v errors %v", rep.Connect, rep.Errors)
	}
	if len(rep.Notes) == 0 || !strings.Contains(rep.Notes[0], "development key") {
		t.Fatalf("notes %v", rep.Notes)
	}
}

// TestProfile runs a scenario at a chosen size against the in-process node,
// for `go test -cpuprofile` (the node exposes no pprof endpoint): the
// profile shows the server's and the tool's time together. Opt-in:
//
//	SWITCHBOARD_LOAD_PROFILE=call SWITCHBOARD_LOAD_CONNS=400 SWITCHBOARD_LOAD_RATE=200 \
//	go test -run TestProfile -cpuprofile /tmp/cpu.out ./internal/loadtest/
//	go tool pprof -top /tmp/cpu.out
func TestProfile(t *testing.T) {
	scenario := os.Getenv("SWITCHBOARD_LOAD_PROFILE")
	if scenario == "" {
		t.Skip("opt-in: set SWITCHBOARD_LOAD_PROFILE to a scenario")
	}
	url := startNode(t)
	cfg := smokeConfig(url, scenario)
	cfg.Conns, _ = strconv.Atoi(os.Getenv("SWITCHBOARD_LOAD_CONNS"))
	cfg.Rate, _ = strconv.ParseFloat(os.Getenv("SWITCHBOARD_LOAD_RATE"), 64)
	cfg.Watchers, _ = strconv.Atoi(os.Getenv("SWITCHBOARD_LOAD_WATCHERS"))
	cfg.Devices, _ = strconv.Atoi(os.Getenv("SWITCHBOARD_LOAD_DEVICES"))
	cfg.Talk, _ = time.ParseDuration(os.Getenv("SWITCHBOARD_LOAD_TALK"))
	if d, err := time.ParseDuration(os.Getenv("SWITCHBOARD_LOAD_DURATION")); err == nil {
		cfg.Duration = d
	}
	// SWITCHBOARD_LOAD_HEAP_AT=20s SWITCHBOARD_LOAD_HEAP=/tmp/heap.out
	// writes a heap profile, and the goroutines to the same name +
	// ".goroutines", that long into the run, e.g. during an idle hold.
	if at, err := time.ParseDuration(os.Getenv("SWITCHBOARD_LOAD_HEAP_AT")); err == nil {
		timer := time.AfterFunc(at, func() {
			runtime.GC()
			f, err := os.Create(os.Getenv("SWITCHBOARD_LOAD_HEAP"))
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			_ = pprof.WriteHeapProfile(f)
			if g, err := os.Create(os.Getenv("SWITCHBOARD_LOAD_HEAP") + ".goroutines"); err == nil {
				_ = pprof.Lookup("goroutine").WriteTo(g, 1)
				g.Close()
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			t.Logf("at %v: %d goroutines, heap in use %d KiB, stacks %d KiB", at, runtime.NumGoroutine(), ms.HeapInuse>>10, ms.StackInuse>>10)
		})
		defer timer.Stop()
	}
	cfg.Log = os.Stderr
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	_ = rep.WriteTable(&table)
	t.Logf("\n%s", table.String())
}
