package adapter

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/redistest"
	csio "github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// benchArgs is a typical event: a name and an object of a few fields.
var benchArgs = []any{"call:ringing", map[string]any{
	"call_id": "call_01HZX3", "from": map[string]any{"user_id": "alice", "name": "Alice"},
	"kind": "video", "expires_at": "2026-01-01T00:00:00Z", "seq": 42,
}}

// BenchmarkEncode: normalize the arguments and encode one broadcast (what
// Broadcast adds to the local delivery before queueing the publish).
func BenchmarkEncode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		args, _, err := normalizeArgs(benchArgs)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := encodeBroadcast("0123456789abcdef", "/", args, []string{"user:bob"}, []string{"device:bob:1"}, wireFlags{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode: decode one received broadcast.
func BenchmarkDecode(b *testing.B) {
	raw, err := encodeBroadcast("0123456789abcdef", "/", benchArgs, []string{"user:bob"}, []string{"device:bob:1"}, wireFlags{})
	if err != nil {
		b.Fatal(err)
	}
	payload := string(raw)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeBroadcast(payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLocalFanout: one broadcast received from Redis for a room of
// 1,000 sockets on this node, each a real WebSocket client on loopback in
// the same process. ns/op is the receiving node's call: decode, room
// lookup, one socket.io encoding and 1,000 frames handed to the websocket
// transport (adapter.Local), which writes each at once unless the client's
// socket buffer is full. The timer is
// stopped while the clients drain each message; e2e-ms/fanout reports the
// whole time until all 1,000 clients had it, clients' CPU included (they
// share the machine's cores with the server).
func BenchmarkLocalFanout(b *testing.B) {
	const members = 1000
	rs := redistest.Start(b)
	n := startNode(b, testConfig(rs.Client()))
	var received atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 50)
	for i := range members {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if !joinBig(b, n.url, &received) {
				b.Errorf("client %d did not join", i)
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	n.b.mu.Lock()
	a := n.b.adapters["/"]
	n.b.mu.Unlock()
	if ids, ok := a.Rooms().Load("room:big"); !ok || ids.Len() != members {
		b.Fatalf("room:big does not have %d members", members)
	}
	raw, err := encodeBroadcast("another-node", "/", benchArgs, []string{"room:big"}, nil, wireFlags{})
	if err != nil {
		b.Fatal(err)
	}
	payload := string(raw)
	sent := int64(0)
	var e2e time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		a.onBroadcast("room:big", payload)
		sent += members
		b.StopTimer()
		drain(b, &received, sent)
		e2e += time.Since(start)
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(e2e.Milliseconds())/float64(b.N), "e2e-ms/fanout")
}

// joinBig connects one client and joins room:big (at most 4 attempts).
func joinBig(b *testing.B, url string, received *atomic.Int64) bool {
	opts := csio.DefaultOptions()
	opts.SetTransports(types.NewSet(csio.WebSocket))
	opts.SetReconnection(false)
	opts.SetForceNew(true)
	opts.SetAutoConnect(false)
	opts.SetTimeout(time.Hour) // see tryConnect
	for range 4 {
		s, err := csio.Connect(url, opts)
		if err != nil {
			continue
		}
		joined := make(chan struct{})
		var once sync.Once
		_ = s.On("ready", func(...any) {
			_ = s.Emit("join", []any{"room:big"}, func([]any, error) { once.Do(func() { close(joined) }) })
		})
		_ = s.On("call:ringing", func(...any) { received.Add(1) })
		s.Connect()
		select {
		case <-joined:
			b.Cleanup(func() { s.Disconnect() })
			return true
		case <-time.After(5 * time.Second):
			s.Disconnect()
		}
	}
	return false
}

func drain(b *testing.B, received *atomic.Int64, want int64) {
	deadline := time.Now().Add(60 * time.Second)
	for received.Load() < want {
		if time.Now().After(deadline) {
			b.Fatalf("clients got %d of %d messages", received.Load(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkRoomChurn: a room is created and deleted (a call starts and
// ends) on a node whose adapter already follows 10,000 rooms (one per
// connected user); each change is waited for in Redis (Flush), as the
// gateway waits before acking a join. ns/op is one create and one delete.
func BenchmarkRoomChurn(b *testing.B) {
	const rooms = 10000
	rs := redistest.Start(b)
	n := startNode(b, testConfig(rs.Client()))
	n.b.mu.Lock()
	a := n.b.adapters["/"]
	n.b.mu.Unlock()
	for i := range rooms {
		room := fmt.Sprint("user:", i)
		n.b.bus.set(a.roomCh(room), route{kind: routeRoom, a: a, room: room})
	}
	ctx := context.Background()
	if err := n.b.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		room := fmt.Sprint("call:", i)
		ch := a.roomCh(room)
		n.b.bus.set(ch, route{kind: routeRoom, a: a, room: room})
		if err := n.b.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		n.b.bus.del(ch, a)
		if err := n.b.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
