package wstransport

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// wire is a server/client WebSocket pair on loopback: frames written to the
// server side's connection are read back as a WebSocket client sees them.
type wire struct {
	tb     testing.TB
	server *ws.Conn
	client *ws.Conn
}

func newWire(tb testing.TB) *wire {
	tb.Helper()
	conns := make(chan *ws.Conn, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := ws.Upgrader{}
		c, err := up.Upgrade(w, r, nil)
		if err == nil {
			conns <- c
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	client, resp, err := ws.DefaultDialer.Dial("ws://"+ln.Addr().String()+"/", nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		tb.Fatal(err)
	}
	w := &wire{tb: tb, client: client, server: <-conns}
	tb.Cleanup(func() {
		_ = w.client.Close()
		_ = w.server.Close()
		_ = srv.Close()
	})
	return w
}

// roundTrip writes frame and returns what the client read.
func (w *wire) roundTrip(frame []byte) (int, string) {
	w.tb.Helper()
	mt, data, err := w.roundTripErr(frame)
	if err != nil {
		w.tb.Fatal(err)
	}
	return mt, data
}

func (w *wire) roundTripErr(frame []byte) (int, string, error) {
	if _, err := w.server.NetConn().Write(frame); err != nil {
		return 0, "", err
	}
	_ = w.client.SetReadDeadline(time.Now().Add(5 * time.Second))
	mt, data, err := w.client.ReadMessage()
	return mt, string(data), err
}

// otherBuffer is a BufferInterface the cache does not key (a struct, not
// one of the library's pointer types): its frame is built on every request.
type otherBuffer struct{ *types.StringBuffer }

func text(s string) types.BufferInterface     { return types.NewStringBufferString(s) }
func bytesBuf(s string) types.BufferInterface { return types.NewBytesBufferString(s) }

// Table of request sequences against a small cache: every request must
// return exactly its own frame's bytes and type, whatever was cached or
// evicted before; builds and size must match the FIFO policy.
func TestFrameCache(t *testing.T) {
	w := newWire(t)
	type step struct {
		frame int // index into frames
		build bool
	}
	for _, tc := range []struct {
		name     string
		entries  int
		maxBytes int
		frames   []types.BufferInterface
		steps    []step
		size     int // cached frames at the end
	}{
		{
			name: "same frame is built once", entries: 4, maxBytes: 1 << 20,
			frames: []types.BufferInterface{text("42[\"a\"]")},
			steps:  []step{{0, true}, {0, false}, {0, false}},
			size:   1,
		},
		{
			name: "equal bytes in different buffers are different frames", entries: 4, maxBytes: 1 << 20,
			frames: []types.BufferInterface{text("42[\"same\"]"), text("42[\"same\"]"), bytesBuf("42[\"same\"]")},
			steps:  []step{{0, true}, {1, true}, {2, true}, {0, false}, {1, false}, {2, false}},
			size:   3,
		},
		{
			name: "text and binary", entries: 4, maxBytes: 1 << 20,
			frames: []types.BufferInterface{text("4hello"), bytesBuf("\x04\x00\xff"), text(""), bytesBuf("")},
			steps:  []step{{0, true}, {1, true}, {2, true}, {3, true}, {1, false}, {0, false}, {3, false}, {2, false}},
			size:   4,
		},
		{
			name: "FIFO eviction by count", entries: 3, maxBytes: 1 << 20,
			frames: []types.BufferInterface{text("f0"), text("f1"), text("f2"), text("f3"), text("f4")},
			steps: []step{
				{0, true}, {1, true}, {2, true}, // full: f0 f1 f2
				{0, false}, // a hit does not refresh
				{3, true},  // evicts f0
				{1, false}, {2, false}, {3, false},
				{0, true}, // rebuilt, evicts f1
				{1, true}, // evicts f2
				{4, true}, // evicts f3
				{0, false}, {1, false}, {4, false},
			},
			size: 3,
		},
		{
			name: "FIFO eviction by bytes", entries: 8, maxBytes: 10,
			frames: []types.BufferInterface{text("aaaa"), text("bbbb"), text("cccc"), text(strings.Repeat("d", 20)), text("e")},
			steps: []step{
				{0, true}, {1, true}, // 8 bytes
				{2, true}, // 12 > 10: evicts aaaa
				{1, false}, {2, false},
				{0, true}, // evicts bbbb
				{3, true}, // larger than the budget: cached alone
				{3, false},
				{2, true}, {4, true}, // evict dddd, then fit
				{2, false}, {4, false},
			},
			size: 2,
		},
		{
			name: "frames that are not keyed are built every time", entries: 4, maxBytes: 1 << 20,
			frames: []types.BufferInterface{otherBuffer{&types.StringBuffer{Buffer: types.NewBufferString("42[\"o\"]")}}},
			steps:  []step{{0, true}, {0, true}},
			size:   0,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFrameCache(tc.entries, tc.maxBytes)
			for i, st := range tc.steps {
				frame := tc.frames[st.frame]
				before := c.builds()
				wire := c.frame(frame)
				if built := c.builds() != before; built != st.build {
					t.Fatalf("step %d (frame %d): built=%v, want %v", i, st.frame, built, st.build)
				}
				mt, data := w.roundTrip(wire)
				if mt != int(opcodeOf(frame)) || data != string(frame.Bytes()) {
					t.Fatalf("step %d (frame %d): got (%d) %q, want (%d) %q", i, st.frame, mt, data, opcodeOf(frame), frame.Bytes())
				}
				if c.len() > tc.entries {
					t.Fatalf("cache holds %d frames, capacity %d", c.len(), tc.entries)
				}
			}
			if c.len() != tc.size {
				t.Fatalf("cache holds %d frames, want %d", c.len(), tc.size)
			}
		})
	}
}

// A buffer written to after its frame was built is built again:
// the cache never serves bytes the buffer no longer holds.
func TestFrameCacheRewrittenBuffer(t *testing.T) {
	w := newWire(t)
	c := newFrameCache(4, 1<<20)
	frame := text("42[\"v1\"]")
	for _, next := range []func(){
		func() {},
		func() { _, _ = frame.WriteString("more") },
		func() { frame.Reset(); _, _ = frame.WriteString("42[\"v2\"]") },
		func() { _, _ = frame.ReadByte() },
	} {
		next()
		if _, data := w.roundTrip(c.frame(frame)); data != string(frame.Bytes()) {
			t.Fatalf("got %q, want %q", data, frame.Bytes())
		}
	}
	if c.len() != 1 {
		t.Fatalf("cache holds %d frames for one buffer", c.len())
	}
}

// Many goroutines asking for many frames at once: each gets its own bytes,
// and a frame asked for concurrently is built once while it stays cached.
func TestFrameCacheConcurrent(t *testing.T) {
	const frames, readers = 16, 32
	c := newFrameCache(frames, 1<<20)
	fs := make([]types.BufferInterface, frames)
	for i := range fs {
		fs[i] = text(fmt.Sprintf("42[\"frame\",%d]", i))
	}
	w := newWire(t)
	var wmu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range frames {
				f := fs[(i+r)%frames]
				wire := c.frame(f)
				wmu.Lock()
				_, data, err := w.roundTripErr(wire)
				wmu.Unlock()
				if err != nil {
					errs <- err
					return
				}
				if data != string(f.Bytes()) {
					errs <- fmt.Errorf("got %q, want %q", data, f.Bytes())
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if b := c.builds(); b != frames {
		t.Fatalf("%d frames asked for by %d goroutines built %d messages", frames, readers, b)
	}
}

// A nil cache (the zero Builder) builds every time and is still correct.
func TestNilFrameCache(t *testing.T) {
	w := newWire(t)
	var c *frameCache
	f := text("42[\"nil\"]")
	for range 2 {
		if _, data := w.roundTrip(c.frame(f)); data != string(f.Bytes()) {
			t.Fatalf("got %q", data)
		}
	}
}
