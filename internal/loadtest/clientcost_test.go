package loadtest

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zishang520/socket.io/clients/engine/v3/transports"
	"github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/switchboard/switchboard/auth"
)

// TestClientCost is the measurement behind the choice of client (see the
// package comment): the tool-side memory and CPU per connection of the
// library's Go client versus this package's client, against a node running
// in another process (so that only the client side is in this process).
// Opt-in, one client kind per process so the RSS figures do not mix:
//
//	SWITCHBOARD_LOAD_COMPARE=library|mini SWITCHBOARD_LOAD_URL=http://127.0.0.1:3911 \
//	SWITCHBOARD_LOAD_SECRET=... SWITCHBOARD_LOAD_N=2000 \
//	go test -run TestClientCost -v ./internal/loadtest/
func TestClientCost(t *testing.T) {
	kind := os.Getenv("SWITCHBOARD_LOAD_COMPARE")
	if kind == "" {
		t.Skip("opt-in measurement: set SWITCHBOARD_LOAD_COMPARE=library|mini and SWITCHBOARD_LOAD_URL")
	}
	url := os.Getenv("SWITCHBOARD_LOAD_URL")
	if err := CheckTarget(url, false); err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(os.Getenv("SWITCHBOARD_LOAD_N"))
	if n <= 0 || n > 10_000 {
		n = 1000
	}
	if _, err := RaiseNoFile(); err != nil {
		t.Fatal(err)
	}
	key := auth.SigningKey{Secret: os.Getenv("SWITCHBOARD_LOAD_SECRET")}
	run := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	token := func(i int) string {
		tok, err := auth.Mint(key, auth.Claims{UserID: fmt.Sprintf("cost-%s-%d", run, i/2), DeviceID: "d" + strconv.Itoa(i%2)}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	var events atomic.Int64
	runtime.GC()
	before, _ := ReadProc(0)
	gBefore := runtime.NumGoroutine()
	start := time.Now()
	var closers []func()
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	var failed atomic.Int64
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			tok := token(i)
			switch kind {
			case "mini":
				c, err := Dial(context.Background(), DialOptions{URL: url, Auth: []byte(`{"token":"` + tok + `"}`),
					Handler: func(*Client, Event) { events.Add(1) }})
				if err != nil {
					failed.Add(1)
					return
				}
				mu.Lock()
				closers = append(closers, c.Abort)
				mu.Unlock()
			case "library":
				opts := socket.DefaultOptions()
				opts.SetForceNew(true)
				opts.SetMultiplex(false)
				opts.SetReconnection(false)
				opts.SetAuth(map[string]any{"token": tok})
				opts.SetTransports(types.NewSet(transports.WebSocket))
				s, err := socket.Connect(url+"/", opts)
				if err != nil {
					failed.Add(1)
					return
				}
				ok := make(chan bool, 2)
				s.On("connect", func(...any) { ok <- true })
				s.On("connect_error", func(...any) { ok <- false })
				s.OnAny(func(...any) { events.Add(1) })
				select {
				case v := <-ok:
					if !v {
						failed.Add(1)
					}
				case <-time.After(10 * time.Second):
					failed.Add(1)
				}
				mu.Lock()
				closers = append(closers, func() { s.Disconnect() })
				mu.Unlock()
			default:
				t.Errorf("unknown client kind %q", kind)
			}
		}(i)
	}
	wg.Wait()
	connectWall := time.Since(start)
	connected, _ := ReadProc(0)
	// Hold: the presence broadcasts of the connects drain, pings flow.
	time.Sleep(10 * time.Second)
	runtime.GC()
	held, _ := ReadProc(0)
	t.Logf("%s client, %d connections (%d failed) in %v: RSS +%d KiB (%.1f KiB/conn), goroutines/conn %.1f, "+
		"CPU connect+drain %.0f µs/conn, CPU while holding 10s %.2fs, events received %d (%.1f µs CPU per event overall)",
		kind, n, failed.Load(), connectWall.Round(time.Millisecond), held.RSSKiB-before.RSSKiB,
		float64(held.RSSKiB-before.RSSKiB)/float64(n), float64(runtime.NumGoroutine()-gBefore)/float64(n),
		float64((connected.CPU-before.CPU).Microseconds())/float64(n), (held.CPU - connected.CPU).Seconds(),
		events.Load(), float64((held.CPU-before.CPU).Microseconds())/float64(max(events.Load(), 1)))
	for _, c := range closers {
		c()
	}
}
