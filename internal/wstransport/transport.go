// Package wstransport is Switchboard's Engine.IO WebSocket transport, a
// drop-in replacement for the one in github.com/zishang520/socket.io
// (servers/engine/v3 transports.websocket), registered through the
// library's exported transport-extension API.
//
// Why it exists: a Socket.IO broadcast is encoded once by the adapter, which
// hands the same pre-encoded frame buffer (packet.Options.WsPreEncodedFrame)
// to every recipient. The library's transport turns that buffer into a new
// gorilla websocket.PreparedMessage (frame header plus a copy of the
// payload, in a scratch connection with its own 4 KiB write buffer) on every
// recipient socket, which made the per-recipient write path most of the CPU
// of a presence broadcast storm. This transport looks the prepared message
// up in a small cache keyed by the identity of that shared buffer, so it is
// built once per broadcast and its bytes written to every connection.
//
// Everything else follows the library's transport, which the engine socket
// relies on:
//   - Send never blocks: it marks the transport not writable and queues the
//     batch; one writer goroutine per connection, started on demand and gone
//     when the queue is empty, writes the batches in order and after each
//     emits "drain", marks the transport writable and emits "ready" (the
//     engine socket flushes what it buffered meanwhile on "ready"). A slow or
//     dead client therefore only holds its own writer, until the heartbeat
//     closes the connection and the blocked write fails.
//   - One reader goroutine per connection reads messages (text as
//     types.StringBuffer, binary as types.BytesBuffer) and passes them to
//     OnData, with a read deadline of the server's idle timeout renewed
//     before each message.
//   - A close frame from the peer, or the connection closed under it, closes
//     the transport; any other read or write error is reported as a
//     transport error (the engine then closes the socket); when the reader
//     stops for any other reason the transport is closed too.
//   - Closing the transport (DoClose, or the peer's close) stops the write
//     queue and closes the network connection. Like the library, it does
//     not send a close frame and does not wait for queued writes.
//   - Per-message deflate: when the server configures it, writes go through
//     the library's encoder path with compression as the packet asks and no
//     prepared message is used, as in the library. Switchboard runs with it
//     off.
package wstransport

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	ws "github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// Builder is the transports.TransportCtor for "websocket". Register it with
// the library's polling builder, for example
//
//	opts.SetTransports(types.NewSet[socket.TransportCtor](socket.Polling, wstransport.NewBuilder()))
//
// Clients may then open a WebSocket directly or upgrade to it from polling.
// All transports a Builder makes share its frame cache. A Builder is safe
// for concurrent use; the zero Builder works but caches nothing (every
// pre-encoded frame is prepared per recipient, as the library does).
type Builder struct {
	cache *frameCache
}

// NewBuilder returns a Builder with a frame cache of 256 frames and 8 MiB of
// payload.
func NewBuilder() *Builder {
	return &Builder{cache: newFrameCache(defaultCacheEntries, defaultCacheBytes)}
}

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
	t := &Transport{Transport: transports.MakeTransport(), cache: b.cache}
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

	cache *frameCache
	conn  *types.WebSocketConn
	idle  time.Duration

	mu      sync.Mutex
	queue   [][]*packet.Packet // batches waiting for the writer
	writing bool               // a writer goroutine is running
	closed  bool               // no more writes: the transport is closing
}

// Name returns "websocket".
func (*Transport) Name() string { return transports.WEBSOCKET }

// HandlesUpgrades returns true.
func (*Transport) HandlesUpgrades() bool { return true }

// Construct initialises the transport on ctx.Websocket: the base state
// (parser from the EIO query, binary support), the idle timeout, the close
// and error handling of the connection, and the reader. The transport starts
// writable. It must be called once, after Prototype. Without a WebSocket in
// ctx the transport is made closed, and the engine drops it.
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

	t.SetWritable(true)
	t.SetPerMessageDeflate(nil)

	transports.StartReader(t, ctx.TransportReadPermission(), t.read)
}

// read is the reader goroutine: it delivers each message to OnData until
// the connection fails or closes, then makes sure the transport closes.
func (t *Transport) read() {
	defer func() {
		if !t.isClosed() {
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
		// frames itself and reports a close frame as a *CloseError.
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

// Send queues packets for the writer and returns at once; the transport is
// not writable until the writer has written them and emitted "drain" and
// "ready". Batches are written in the order they were sent. After the
// transport closed, Send drops the packets (and the transport stays not
// writable), as the library does.
func (t *Transport) Send(packets []*packet.Packet) {
	t.SetWritable(false)
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	if t.writing {
		t.queue = append(t.queue, packets)
		t.mu.Unlock()
		return
	}
	t.writing = true
	t.mu.Unlock()
	go t.writer(packets)
}

// writer writes batches until the queue is empty or the transport closed,
// then exits.
func (t *Transport) writer(batch []*packet.Packet) {
	for {
		t.sendBatch(batch)

		t.mu.Lock()
		if t.closed || len(t.queue) == 0 {
			t.queue = nil
			t.writing = false
			t.mu.Unlock()
			return
		}
		batch = t.queue[0]
		t.queue[0] = nil
		t.queue = t.queue[1:]
		t.mu.Unlock()
	}
}

// sendBatch writes one batch and then, whatever happened, emits "drain",
// sets the transport writable and emits "ready". A write error stops the
// batch and is reported (see fail). A panic while writing (gorilla panics on
// a concurrent write) is reported as a transport error; a panic in an event
// listener is dropped. Neither takes the process down, as the library's
// write queue recovers its tasks too.
func (t *Transport) sendBatch(packets []*packet.Packet) {
	defer func() { _ = recover() }()
	defer func() {
		t.Emit("drain")
		t.SetWritable(true)
		t.Emit("ready")
	}()
	defer func() {
		if r := recover(); r != nil {
			t.fail(fmt.Errorf("wstransport: write panicked: %v", r))
		}
	}()
	for _, p := range packets {
		if err := t.writePacket(p); err != nil {
			t.fail(err)
			return
		}
	}
}

// writePacket writes one packet: a pre-encoded broadcast frame as the
// shared prepared message (when per-message deflate is off), anything else
// encoded by the transport's parser.
func (t *Transport) writePacket(p *packet.Packet) error {
	compress := true
	if p.Options != nil {
		if p.Options.Compress != nil && !*p.Options.Compress {
			compress = false
		}
		if frame := p.Options.WsPreEncodedFrame; frame != nil && t.PerMessageDeflate() == nil {
			pm, err := t.cache.prepared(frame)
			if err != nil {
				return err
			}
			return t.conn.WritePreparedMessage(pm)
		}
	}
	data, err := t.Parser().EncodePacket(p, t.SupportsBinary())
	if err != nil {
		return err
	}
	if pmd := t.PerMessageDeflate(); pmd != nil && data.Len() < pmd.Threshold {
		compress = false
	}
	t.conn.EnableWriteCompression(compress)
	mt := ws.BinaryMessage
	if _, ok := data.(*types.StringBuffer); ok {
		mt = ws.TextMessage
	}
	return t.conn.WriteMessage(mt, data.Bytes())
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
