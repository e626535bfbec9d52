package wstransport

import (
	"net"
	"time"

	"github.com/zishang520/socket.io/servers/engine/v3"
)

// TakeHeartbeats makes the Builder's transports run the Engine.IO heartbeat
// (protocol 4: the server pings every ping interval, and closes the session
// with "ping timeout" when the pong does not come within the ping timeout)
// of the sessions opened directly on one of them, instead of the engine
// socket. Call it once, after srv exists (socket.Server.ServeHandler or
// Attach made it).
//
// Why: the engine socket keeps a goroutine per session for its whole life,
// parked on the heartbeat's timer (utils.SetTimeout starts one per timer),
// with its stack (~2 KiB) and a timer, channel and closures (~0.6 KiB). The
// transport runs the same heartbeat on one runtime timer, which also serves
// as its idle timeout, and no goroutine while it waits.
//
// How: the engine hands each new session's "start the heartbeat" callback
// to the handshake's context (HttpContext.SetTransportReady) and runs it
// once the session is initialised; the engine server's "connection" event
// comes in between, and there the Builder takes the callback for a session
// of its own transport and starts the transport's heartbeat instead.
// Sessions it does not take keep the engine's heartbeat: those opened on
// polling (even once upgraded to a WebSocket), protocol 3 (the client
// pings there), and all of them when the server's idle timeout is shorter
// than a ping interval and timeout together (the transport's timer would
// then have two deadlines to keep).
//
// The session behaves as with the engine's heartbeat: a ping ("2") one
// interval after the session opened and one interval after each pong, the
// session closed with reason "ping timeout" when no pong ("3") came within
// the timeout after a ping. The pong still reaches the engine, which emits
// "heartbeat" as before.
func (b *Builder) TakeHeartbeats(srv engine.BaseServer) {
	opts := srv.Opts()
	interval, timeout, idle := opts.PingInterval(), opts.PingTimeout(), opts.IdleTimeout()
	if interval <= 0 || timeout <= 0 || (idle > 0 && idle < interval+timeout) {
		return
	}
	_ = srv.On("connection", func(args ...any) {
		if len(args) > 0 {
			if sock, ok := args[0].(engine.Socket); ok {
				takeHeartbeat(sock, interval, timeout)
			}
		}
	})
}

// closer is the engine socket's close with a reason (its OnClose), which
// its heartbeat calls with "ping timeout".
type closer interface {
	OnClose(reason string, description ...error)
}

// takeHeartbeat moves the heartbeat of sock, a session that has just been
// opened, from the engine socket to its transport, if the transport is ours
// and the engine has not started it.
func takeHeartbeat(sock engine.Socket, interval, timeout time.Duration) {
	t, ok := sock.Transport().(*Transport)
	c, closes := sock.(closer)
	ctx := sock.Request()
	if !ok || !closes || ctx == nil || sock.Protocol() != 4 || t.Protocol() != 4 {
		return
	}
	start := ctx.TakeTransportReady()
	if start == nil {
		return // started already, or the session will not open
	}
	t.mu.Lock()
	if t.closed || t.timer != nil {
		t.mu.Unlock()
		ctx.SetTransportReady(start) // not ours to run: leave it to the engine
		return
	}
	t.heart = &heartbeat{interval: interval, timeout: timeout, expire: func() { c.OnClose("ping timeout") }}
	t.mu.Unlock()
}

// heartbeat is the state of a transport's Engine.IO heartbeat; t.mu guards
// it.
type heartbeat struct {
	interval, timeout time.Duration
	expire            func() // closes the engine socket: "ping timeout"
	// due is when the timer should run next: a run that a pong's Reset
	// overtook finds it in the future and sets the timer for it.
	due time.Time
	// waiting: a ping went out and no pong came since.
	waiting bool
}

// pingFrame is the WebSocket frame of an Engine.IO ping (text "2"). It is
// shared and never written to.
var pingFrame = appendFrame(nil, opText, []byte("2"))

// startHeartbeat arms the heartbeat's timer for the first ping. The caller
// holds t.mu, with t.heart set and no timer.
func (t *Transport) startHeartbeat() {
	t.heart.due = time.Now().Add(t.heart.interval)
	t.timer = time.AfterFunc(t.heart.interval, t.beat)
}

// beat runs on the heartbeat's timer: it sends a ping and waits the ping
// timeout for its pong, or, when that time is up without one, closes the
// session.
func (t *Transport) beat() {
	t.mu.Lock()
	h := t.heart
	if t.closed || t.timer == nil {
		t.mu.Unlock()
		return
	}
	if early := time.Until(h.due); early > 0 {
		t.timer.Reset(early)
		t.mu.Unlock()
		return
	}
	if h.waiting {
		t.mu.Unlock()
		h.expire()
		return
	}
	h.waiting = true
	h.due = time.Now().Add(h.timeout)
	t.timer.Reset(h.timeout)
	t.mu.Unlock()
	// Armed before it is written: a pong cannot come before its wait.
	t.write(net.Buffers{pingFrame}, false)
}

// pong records the client's pong: the next ping goes one interval from now.
func (t *Transport) pong() {
	t.mu.Lock()
	if h := t.heart; h.waiting && !t.closed && t.timer != nil {
		h.waiting = false
		h.due = time.Now().Add(h.interval)
		t.timer.Reset(h.interval)
	}
	t.mu.Unlock()
}
