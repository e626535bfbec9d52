package wstransport

import (
	"runtime"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// heartbeatOpts sets a short heartbeat for the tests.
func heartbeatOpts(interval, timeout time.Duration) func(*socket.ServerOptions) {
	return func(o *socket.ServerOptions) {
		o.SetPingInterval(interval)
		o.SetPingTimeout(timeout)
	}
}

// The transport's heartbeat pings one interval after the session opened
// and one interval after each pong, never sooner.
func TestHeartbeatPingsEveryInterval(t *testing.T) {
	const interval = 150 * time.Millisecond
	s := startServer(t, ours(), heartbeatOpts(interval, 2*time.Second))
	c := dialMany(t, s, 1, "EIO=4")[0]
	if !s.transportOf(c.sid).hasHeartbeat() {
		t.Fatal("the transport did not take the session's heartbeat")
	}
	last := time.Now()
	for i := range 4 {
		c.expect(ws.TextMessage, "2")
		if gap := time.Since(last); i > 0 && gap < interval {
			t.Fatalf("ping %d came %v after the previous pong, before the interval", i, gap)
		}
		c.write("3")
		last = time.Now()
	}
	if s.connected.Load() != 1 {
		t.Fatal("socket closed despite pongs")
	}
}

// A client that stops answering pings is closed with "ping timeout", one
// timeout after the unanswered ping.
func TestHeartbeatTimesOut(t *testing.T) {
	const interval, timeout = 100 * time.Millisecond, 300 * time.Millisecond
	s := startServer(t, ours(), heartbeatOpts(interval, timeout))
	c := dialMany(t, s, 1, "EIO=4")[0]
	c.expect(ws.TextMessage, "2")
	c.write("3")
	c.expect(ws.TextMessage, "2")
	sent := time.Now()
	// Anything but a pong does not count as one.
	c.write(`42["noop"]`)
	c.closed()
	if e := time.Since(sent); e < timeout-20*time.Millisecond {
		t.Fatalf("closed %v after the unanswered ping, before the ping timeout", e)
	}
	if r := s.reason(5 * time.Second); r != "ping timeout" {
		t.Fatalf("disconnect reason %q, want ping timeout", r)
	}
	waitFor(t, 5*time.Second, "no engine sessions", func() bool { return s.engineClients() == 0 })
}

// Idle sessions on the transport's heartbeat hold no goroutine each: the
// engine's heartbeat parked one per session on its timer.
func TestIdleSessionsHoldNoGoroutine(t *testing.T) {
	s := startServer(t, ours(), heartbeatOpts(time.Minute, time.Minute))
	dialMany(t, s, 1, "EIO=4") // the server's lazily started goroutines
	time.Sleep(100 * time.Millisecond)
	base := runtime.NumGoroutine()
	const n = 200
	dialMany(t, s, n, "EIO=4")
	var held int
	deadline := time.Now().Add(5 * time.Second)
	for {
		held = runtime.NumGoroutine() - base
		if held < n/10 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if held >= n/10 {
		t.Fatalf("%d idle sessions hold %d goroutines", n, held)
	}
}

// Sessions the transport does not take keep the engine's heartbeat: one
// upgraded from polling, one on protocol 3, and every one when the idle
// timeout is shorter than a ping interval and timeout.
func TestHeartbeatLeftToTheEngine(t *testing.T) {
	t.Run("upgraded from polling", func(t *testing.T) {
		s := startServer(t, ours(), heartbeatOpts(100*time.Millisecond, 2*time.Second))
		c := upgradeFromPolling(t, s)
		if s.transportOf(c.sid).hasHeartbeat() {
			t.Fatal("the transport took the heartbeat of an upgraded session")
		}
		for range 2 {
			c.expect(ws.TextMessage, "2")
			c.write("3")
		}
	})
	t.Run("protocol 3", func(t *testing.T) {
		s := startServer(t, ours(), func(o *socket.ServerOptions) {
			allowEIO3(o)
			heartbeatOpts(100*time.Millisecond, 2*time.Second)(o)
		})
		c := dialMany(t, s, 1, "EIO=3")[0]
		if s.transportOf(c.sid).hasHeartbeat() {
			t.Fatal("the transport took the heartbeat of a protocol 3 session")
		}
		c.write("2")
		c.expect(ws.TextMessage, "3")
	})
	t.Run("short idle timeout", func(t *testing.T) {
		s := startServer(t, ours(), func(o *socket.ServerOptions) {
			heartbeatOpts(100*time.Millisecond, 2*time.Second)(o)
			o.SetIdleTimeout(time.Second)
		})
		c := dialMany(t, s, 1, "EIO=4")[0]
		if s.transportOf(c.sid).hasHeartbeat() {
			t.Fatal("the transport took the heartbeat with an idle timeout shorter than interval and timeout")
		}
		c.expect(ws.TextMessage, "2")
		c.write("3")
	})
}

// transportOf returns our transport under the engine session sid.
func (s *testServer) transportOf(sid string) *Transport {
	s.tb.Helper()
	tr, ok := s.waitSocket(sid).Conn().Transport().(*Transport)
	if !ok {
		s.tb.Fatalf("session %s is not on our transport", sid)
	}
	return tr
}

// hasHeartbeat reports whether t runs its session's heartbeat.
func (t *Transport) hasHeartbeat() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.heart != nil
}
