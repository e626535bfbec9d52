// Package wstransport is Switchboard's Engine.IO WebSocket transport, a
// drop-in replacement for the one in github.com/zishang520/socket.io
// (servers/engine/v3 transports.websocket), registered through the
// library's exported transport-extension API.
//
// Why it exists: a Socket.IO broadcast is encoded once by the adapter, which
// hands the same pre-encoded frame buffer (packet.Options.WsPreEncodedFrame)
// to every recipient. The library's transport turns that buffer into a new
// gorilla websocket.PreparedMessage on every recipient socket and writes
// from a queue goroutine per connection. This transport builds the frame
// once per broadcast (a small cache keyed by the identity of the shared
// buffer) and writes its bytes to each connection directly from the
// goroutine that sends, without a goroutine hand-off, whenever the
// connection's socket buffer has room, which is nearly always.
//
// Everything else follows the library's transport, which the engine socket
// relies on:
//   - Send never blocks (and holds Engine.IO pings back briefly, see Send). It writes the frames with a non-blocking write on
//     the connection's descriptor; if they are all written, it emits "drain"
//     and the transport stays writable. If the socket buffer fills (a slow or
//     stalled client), or the connection is not a TCP connection, the rest is
//     queued: the transport becomes not writable and one flusher goroutine,
//     started on demand and gone when the queue is empty, writes the queue in
//     order with blocking writes, emits "drain" after each batch, and at the
//     end marks the transport writable and emits "ready" (the engine socket
//     flushes what it buffered meanwhile on "ready"). While a flusher runs,
//     later sends queue behind it, so frames reach the wire in the order they
//     were sent. A stalled client therefore only holds its own flusher, until
//     the heartbeat closes the connection and the blocked write fails.
//   - The transport writes every frame itself, the replies to the peer's
//     WebSocket pings and close frames too, so its writes never interleave
//     with gorilla's. (gorilla still answers a protocol violation by the peer
//     with a close frame of its own, on a connection it is about to fail.)
//   - One reader goroutine per connection reads messages (text as
//     types.StringBuffer, binary as types.BytesBuffer) and passes them to
//     OnData, with a read deadline of the server's idle timeout renewed
//     before each message. Now and then, after a message, the loop goes on
//     in a fresh goroutine, so an idle connection does not keep the stack
//     its last message grew.
//   - A close frame from the peer, or the connection closed under it, closes
//     the transport; any other read or write error is reported as a
//     transport error (the engine then closes the socket); when the reader
//     stops for any other reason the transport is closed too.
//   - Closing the transport (DoClose, or the peer's close) stops the write
//     queue and closes the network connection. Like the library, it does
//     not send a close frame and does not wait for queued writes.
//   - Frames are sent uncompressed. Per-message deflate, if the server
//     negotiated it, is not used for writes (RFC 7692 lets a sender leave any
//     message uncompressed); Switchboard does not enable it.
package wstransport

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	ws "github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/v3/pkg/types"
	"golang.org/x/sys/unix"
)

// Builder is the transports.TransportCtor for "websocket". Register it with
// the library's polling builder, for example
//
//	opts.SetTransports(types.NewSet[socket.TransportCtor](socket.Polling, wstransport.NewBuilder()))
//
// Clients may then open a WebSocket directly or upgrade to it from polling.
// All transports a Builder makes share its frame cache. A Builder is safe
// for concurrent use once registered (set PingDelay before). The zero
// Builder works but caches nothing (every pre-encoded frame is built per
// recipient, as the library does) and writes pings at once, which the
// engine's pong-timeout race makes unsafe under load: use NewBuilder.
type Builder struct {
	cache *frameCache

	// PingDelay holds back each Engine.IO ping this long before writing it
	// (see Send). NewBuilder sets DefaultPingDelay; keep it well under the
	// server's ping timeout.
	PingDelay time.Duration

	// flushers counts the flusher goroutines started by its transports:
	// with clients that keep up it stays 0 (tests read it).
	flushers atomic.Uint64
}

// NewBuilder returns a Builder with a frame cache of 256 frames and 8 MiB of
// payload.
func NewBuilder() *Builder {
	return &Builder{cache: newFrameCache(defaultCacheEntries, defaultCacheBytes), PingDelay: DefaultPingDelay}
}

// DefaultPingDelay is NewBuilder's PingDelay.
const DefaultPingDelay = 500 * time.Millisecond

// Name is the transport's name in the Engine.IO protocol: "websocket".
func (*Builder) Name() string { return transports.WEBSOCKET }

// HandlesUpgrades reports true: the transport accepts a WebSocket that
// upgrades an existing polling session as well as a direct connection.
func (*Builder) HandlesUpgrades() bool { return true }

// UpgradesTo is nil: nothing upgrades from a WebSocket.
func (*Builder) UpgradesTo() []string { return nil }

// New makes the transport of a WebSocket connection the engine has just
// accepted (ctx.Websocket). The engine calls it during a handshake or an
// upgrade, and afterwards sets per-message deflate and hands the transport
// to an engine socket. The reader starts once the engine grants
// ctx.TransportReadPermission.
func (b *Builder) New(ctx *types.HttpContext) transports.Transport {
	t := &Transport{Transport: transports.MakeTransport(), cache: b.cache, flushers: &b.flushers, pingDelay: b.PingDelay}
	t.Prototype(t)
	t.Construct(ctx)
	return t
}

// Transport is one Engine.IO WebSocket transport. It embeds the library's
// base transport (state, parser, events) and overrides Name,
// HandlesUpgrades, Construct, Send, OnClose and DoClose; see the package
// documentation for the contract. Make one with Builder.New.
type Transport struct {
	transports.Transport

	cache     *frameCache
	flushers  *atomic.Uint64
	pingDelay time.Duration
	conn      *types.WebSocketConn
	nc        net.Conn        // the connection under the WebSocket
	raw       syscall.RawConn // nc's descriptor for non-blocking writes; nil if nc is not TCP
	idle      time.Duration

	mu      sync.Mutex
	queue   []batch // frames waiting for the flusher, in order
	writing bool    // a flusher goroutine is running
	closed  bool    // no more writes: the transport is closing
}

// batch is what one call wrote: the frames still to write, and whether the
// engine waits for a "drain" once they are written (a Send does; the
// transport's own control frames do not).
type batch struct {
	bufs  net.Buffers
	drain bool
}

// Name returns "websocket".
func (*Transport) Name() string { return transports.WEBSOCKET }

// HandlesUpgrades returns true.
func (*Transport) HandlesUpgrades() bool { return true }

// Construct initialises the transport on ctx.Websocket: the base state
// (parser from the EIO query, binary support), the idle timeout, the close
// and error handling of the connection, the replies to control frames, and
// the reader. The transport starts writable. It must be called once, after
// Prototype. Without a WebSocket in ctx the transport is made closed, and
// the engine drops it.
func (t *Transport) Construct(ctx *types.HttpContext) {
	t.Transport.Construct(ctx)
	if ctx.Websocket == nil || ctx.Websocket.Conn == nil {
		t.mu.Lock()
		t.closed = true
		t.mu.Unlock()
		t.SetReadyState("closed")
		return
	}
	t.conn = ctx.Websocket
	t.idle = ctx.IdleTimeout
	t.nc = t.conn.NetConn()
	if tcp, ok := t.nc.(*net.TCPConn); ok {
		t.raw, _ = tcp.SyscallConn()
	}

	_ = t.conn.On("error", func(args ...any) {
		var err error
		if len(args) > 0 {
			err, _ = args[0].(error)
		}
		t.OnError("websocket error", err)
	})
	// types.WebSocketConn.Close emits "close", as does the reader when the
	// peer goes away: either way the transport closes, once.
	_ = t.conn.Once("close", func(...any) { t.OnClose() })
	// gorilla calls these from the reader; their replies go through the
	// transport's own writes (gorilla's defaults would write beside them).
	t.conn.SetPingHandler(func(data string) error {
		t.write(net.Buffers{appendFrame(nil, opPong, []byte(data))}, false)
		return nil
	})
	t.conn.SetCloseHandler(func(code int, _ string) error {
		t.write(net.Buffers{appendFrame(nil, opClose, ws.FormatCloseMessage(code, ""))}, false)
		return nil
	})

	t.SetWritable(true)
	t.SetPerMessageDeflate(nil)

	transports.StartReader(t, ctx.TransportReadPermission(), t.read)
}

// read is the reader goroutine: it delivers each message to OnData until
// the connection fails or closes, then makes sure the transport closes.
func (t *Transport) read() { t.readFrom(time.Time{}) }

// readerMoveInterval is how often at most the reader moves to a fresh
// goroutine after a message (see readFrom).
const readerMoveInterval = 30 * time.Second

// readFrom is the read loop of read. After delivering a message it moves to
// a fresh goroutine, if it has not done so for readerMoveInterval (so after
// the handshake's first message at once), and returns: the stack that
// handling the message grew (the handshake runs authentication and store
// calls here, an event the library's decoding) is freed instead of staying
// with a connection that may then idle for minutes. That is about 4 KiB of
// the memory of each idle connection, for at most one goroutine start per
// connection every readerMoveInterval.
func (t *Transport) readFrom(moved time.Time) {
	handedOver := false
	defer func() {
		if !handedOver && !t.isClosed() {
			t.conn.Emit("close")
		}
	}()
	for {
		if t.idle > 0 {
			_ = t.conn.SetReadDeadline(time.Now().Add(t.idle))
		}
		mt, r, err := t.conn.NextReader()
		if err != nil {
			t.fail(err)
			return
		}
		// NextReader returns only data messages: gorilla handles control
		// frames through the handlers set in Construct and reports a close
		// frame as a *CloseError.
		var data types.BufferInterface
		if mt == ws.BinaryMessage {
			data = types.NewBytesBuffer(nil)
		} else {
			data = types.NewStringBuffer(nil)
		}
		if _, err := data.ReadFrom(r); err != nil {
			t.fail(err)
			return
		}
		t.OnData(data)
		if now := time.Now(); now.Sub(moved) >= readerMoveInterval {
			handedOver = true
			go t.readFrom(now)
			return
		}
	}
}

// fail routes a connection error as the library does: a close frame from
// the peer or a closed connection closes the transport, anything else is a
// transport error.
func (t *Transport) fail(err error) {
	var closeErr *ws.CloseError
	if errors.As(err, &closeErr) || errors.Is(err, net.ErrClosed) {
		t.conn.Emit("close")
		return
	}
	t.conn.Emit("error", err)
}

// Send writes packets, or queues what does not fit in the socket buffer,
// and returns at once; see the package documentation. After the transport
// closed, Send drops the packets and the transport stays not writable, as
// the library does.
//
// An Engine.IO ping (protocol 4: the server pings) is written PingDelay
// later, on a timer. The library's engine sends the ping and only then arms
// the timeout that the client's pong clears: a ping written at once can be
// answered, and the pong handled, before the timeout is armed, which then
// closes a healthy connection ("ping timeout" one timeout after a pong).
// Under load that hit about 3% of 5,000 connections per ping round.
func (t *Transport) Send(packets []*packet.Packet) {
	bufs := make(net.Buffers, 0, len(packets))
	var pings net.Buffers
	for _, p := range packets {
		frame, err := t.frameOf(p)
		if err != nil {
			// Only a packet the parser cannot encode gets here. The engine
			// calls Send under its flush lock, so report it from outside.
			t.SetWritable(false)
			go t.fail(err)
			return
		}
		if p.Type == packet.PING && t.pingDelay > 0 {
			pings = append(pings, frame)
			continue
		}
		bufs = append(bufs, frame)
	}
	if len(pings) > 0 {
		time.AfterFunc(t.pingDelay, func() { t.write(pings, false) })
	}
	t.write(bufs, true)
}

// frameOf returns the WebSocket frame of p: a pre-encoded broadcast frame
// from the cache (shared, read-only), anything else encoded by the
// transport's parser.
func (t *Transport) frameOf(p *packet.Packet) ([]byte, error) {
	if p.Options != nil && p.Options.WsPreEncodedFrame != nil {
		return t.cache.frame(p.Options.WsPreEncodedFrame), nil
	}
	data, err := t.Parser().EncodePacket(p, t.SupportsBinary())
	if err != nil {
		return nil, err
	}
	return appendFrame(nil, opcodeOf(data), data.Bytes()), nil
}

// write writes bufs now if nothing is queued and the socket buffer takes
// them, and queues the rest for the flusher otherwise. drain says whether
// "drain" is emitted once they are written.
func (t *Transport) write(bufs net.Buffers, drain bool) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		t.SetWritable(false)
		return
	}
	if !t.writing && t.raw != nil {
		rest, err := t.writeNow(bufs)
		switch {
		case err != nil:
			// The connection is broken: stop writing to it, and report it
			// as for an encoding error, not under the engine's lock.
			t.closed = true
			t.queue = nil
			t.mu.Unlock()
			t.SetWritable(false)
			go t.fail(err)
			return
		case len(rest) == 0:
			t.mu.Unlock()
			if drain {
				t.emitDrain()
			}
			return
		}
		bufs = rest
	}
	t.SetWritable(false)
	t.queue = append(t.queue, batch{bufs: bufs, drain: drain})
	start := !t.writing
	t.writing = true
	t.mu.Unlock()
	if start {
		t.flushers.Add(1)
		go t.flush()
	}
}

// writeNow writes as much of bufs as the socket buffer takes without
// blocking and returns the rest. The caller holds t.mu.
func (t *Transport) writeNow(bufs net.Buffers) (net.Buffers, error) {
	var werr error
	err := t.raw.Write(func(fd uintptr) bool {
		for len(bufs) > 0 {
			var n int
			var err error
			if len(bufs) == 1 {
				n, err = unix.Write(int(fd), bufs[0])
			} else {
				n, err = unix.Writev(int(fd), bufs)
			}
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				return true // full: the flusher waits for room
			case err != nil:
				werr = err
				return true
			}
			bufs = consume(bufs, n)
		}
		return true
	})
	if err == nil {
		err = werr
	}
	return bufs, err
}

// flush is the flusher goroutine: it writes the queued batches in order,
// with blocking writes, until the queue is empty or the transport closed;
// then it marks the transport writable and emits "ready". A write error is
// reported (see fail) and ends the flusher: the engine closes the transport.
func (t *Transport) flush() {
	for {
		t.mu.Lock()
		if t.closed || len(t.queue) == 0 {
			closed := t.closed
			t.queue = nil
			t.writing = false
			if !closed {
				// Under t.mu, as write marks it not writable: the flag is
				// false exactly while a flusher has frames to write.
				t.SetWritable(true)
			}
			t.mu.Unlock()
			if !closed {
				t.Emit("ready")
			}
			return
		}
		b := t.queue[0]
		t.queue[0] = batch{}
		t.queue = t.queue[1:]
		t.mu.Unlock()

		if _, err := b.bufs.WriteTo(t.nc); err != nil {
			t.stop()
			t.mu.Lock()
			t.writing = false
			t.mu.Unlock()
			t.fail(err)
			return
		}
		if b.drain {
			t.emitDrain()
		}
	}
}

// emitDrain emits "drain". A panic in a listener is dropped, as the
// library's write queue recovers its tasks: neither the sender nor the
// flusher is taken down by it.
func (t *Transport) emitDrain() {
	defer func() { _ = recover() }()
	t.Emit("drain")
}

// isClosed reports whether the transport stopped its write queue.
func (t *Transport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// stop stops the write queue: queued batches are dropped (the connection is
// about to close, so they could not be written) and later Sends are ignored.
// A write in progress finishes or fails on the closed connection.
func (t *Transport) stop() {
	t.mu.Lock()
	t.closed = true
	t.queue = nil
	t.mu.Unlock()
}

// OnClose runs on every close path (the peer's close frame, a closed
// connection, a DoClose): it stops the write queue, marks the transport
// closed and emits "close" (once, by the base transport), and closes the
// network connection so that nothing is leaked whichever path came first.
func (t *Transport) OnClose() {
	t.stop()
	t.Transport.OnClose()
	if t.conn != nil {
		_ = t.conn.Close()
	}
}

// DoClose closes the transport on the engine's request (the base Close
// calls it once, in state "closing"): it stops the write queue, calls fn,
// then closes the connection, whose "close" event completes the close
// through OnClose.
func (t *Transport) DoClose(fn types.Callable) {
	t.stop()
	if t.conn != nil {
		defer func() { _ = t.conn.Close() }()
	}
	if fn != nil {
		fn()
	}
}
