package wstransport

import (
	"io"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zishang520/socket.io/servers/engine/v3/transports"
)

// BenchmarkBroadcast: one Socket.IO broadcast (a presence event of about
// 120 bytes, io.Emit on the main namespace) to 1,000 WebSocket clients on
// loopback in the same process, with our transport and with the library's
// on the same kind of server. An op is the whole fan-out: the Emit call and
// every client having read the message, so the writers' work (where the
// transports differ) is inside the timer; the clients' reading is too, the
// same for both. Reported besides ns/op and allocs/op (process-wide):
// cpu-ns/op, the process's user+system CPU per broadcast (the machine's
// cores are shared, so CPU is steadier than wall time); emit-ns/op, how
// long the broadcasting goroutine was held; builds/op, frames built per
// broadcast, and flushers/op, flusher goroutines started per broadcast
// (ours only).
func BenchmarkBroadcast(b *testing.B) {
	bothTransports(b, func(b *testing.B, ctor transports.TransportCtor) { benchBroadcast(b, ctor, 1000) })
}

// bothTransports runs bench with our transport and with the library's.
func bothTransports(b *testing.B, bench func(*testing.B, transports.TransportCtor)) {
	b.Run("transport=ours", func(b *testing.B) { bench(b, ours()) })
	b.Run("transport=library", func(b *testing.B) { bench(b, library()) })
}

func benchBroadcast(b *testing.B, ctor transports.TransportCtor, n int) {
	s := startServer(b, ctor, nil)
	clients := dialMany(b, s, n, "EIO=4")
	var received, target atomic.Int64
	done := make(chan struct{}, 1)
	for _, c := range clients {
		go func() {
			_ = c.c.SetReadDeadline(time.Time{})
			for {
				_, r, err := c.c.NextReader()
				if err != nil {
					return
				}
				if _, err := io.Copy(io.Discard, r); err != nil {
					return
				}
				if received.Add(1) == target.Load() {
					done <- struct{}{}
				}
			}
		}()
	}
	presence := map[string]any{
		"userId":    "user-0c4f9e2a",
		"status":    "online",
		"device":    "desktop",
		"meetingId": "meeting-7d1b",
		"at":        "2025-01-01T12:00:00.000Z",
	}
	builds0, flushers0 := s.builds(), s.flushers()
	var emit time.Duration
	cpu0 := cpuTime()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		target.Store(int64(i+1) * int64(n))
		start := time.Now()
		s.io.Emit("presence", presence)
		emit += time.Since(start)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			b.Fatalf("broadcast %d: %d of %d messages received", i, received.Load()-int64(i)*int64(n), n)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(emit.Nanoseconds())/float64(b.N), "emit-ns/op")
	if s.builder != nil {
		b.ReportMetric(float64(s.builds()-builds0)/float64(b.N), "builds/op")
		b.ReportMetric(float64(s.flushers()-flushers0)/float64(b.N), "flushers/op")
	}
}

// cpuTime is the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkInbound: 100 clients each send a Socket.IO event that the server
// handles (an ack-less no-op handler counting it), all at once; an op is one
// event read, parsed and handed to its handler. With our transport the
// connections are read through the poller; with the library's, by a
// goroutine each. Reported besides ns/op: cpu-ns/op, the process's CPU per
// event (the clients' writing included, the same for both).
func BenchmarkInbound(b *testing.B) {
	bothTransports(b, func(b *testing.B, ctor transports.TransportCtor) { benchInbound(b, ctor, 100) })
}

func benchInbound(b *testing.B, ctor transports.TransportCtor, n int) {
	s := startServer(b, ctor, nil)
	clients := dialMany(b, s, n, "EIO=4")
	var handled atomic.Int64
	for _, c := range clients {
		_ = s.waitSocket(c.sid).On("tick", func(...any) { handled.Add(1) })
	}
	msg := []byte(`42["tick",{"userId":"user-0c4f9e2a","status":"online"}]`)
	rounds := (b.N + n - 1) / n
	cpu0 := cpuTime()
	b.ResetTimer()
	for r := 0; r < rounds; r++ {
		for _, c := range clients {
			if err := c.c.WriteMessage(1, msg); err != nil {
				b.Fatal(err)
			}
		}
		want := int64((r + 1) * n)
		deadline := time.Now().Add(30 * time.Second)
		for handled.Load() < want {
			if time.Now().After(deadline) {
				b.Fatalf("round %d: %d of %d events handled", r, handled.Load(), want)
			}
			time.Sleep(20 * time.Microsecond)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(rounds*n), "cpu-ns/op")
}
