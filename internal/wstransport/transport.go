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
// buffer). The engine's packets it writes to the connection directly from
// the goroutine that sends, whenever the connection's socket buffer has
// room, which is nearly always; broadcast frames it leaves to an outbox,
// whose writers write each connection's waiting frames with one system
// call (see outbox).
//
// Everything else follows the library's transport, which the engine socket
// relies on:
//   - Send never blocks (and holds Engine.IO pings back briefly, see Send).
//     It writes the frames with a non-blocking write on the connection's
//     descriptor and emits "drain" once they are written.
//     If the socket buffer fills (a slow or stalled client), or the
//     connection is not a TCP connection, the rest is queued and one flusher
//     goroutine, started on demand and gone when the queue is empty, writes
//     the queue in order with blocking writes and emits "drain" after each
//     batch the engine sent. While a flusher runs, later sends queue behind
//     it, so frames reach the wire in the order they were sent. The
//     transport stays writable meanwhile, so the engine socket never keeps
//     packets of its own: every packet it sends is in the transport's hands
//     when its send returns, which is what lets SendPreEncoded write beside
//     it in order. The queue is bounded (Builder.MaxQueue): a client that
//     falls further behind gets a transport error (ErrSlowClient) and is
//     disconnected, instead of holding the node's memory until its
//     heartbeat times out.
//   - SendPreEncoded sends a broadcast's shared frame without the engine
//     socket's per-packet work (packet objects, events, its write buffer);
//     the adapter in package adapter uses it for local fan-out. The frame
//     waits in the Builder's outbox until an outbox writer writes it with
//     the connection's other waiting frames, or a frame written at once
//     takes them all along, in order.
//   - The transport writes every frame itself, the replies to the peer's
//     WebSocket pings and close frames too, and reads and parses the
//     client's frames itself (frameReader): gorilla's connection, which
//     the library made, is neither read nor written after the upgrade.
//   - No goroutine waits on an idle connection. The Builder's poller
//     registers each connection with one epoll instance; when it is
//     readable a goroutine reads what is there into a shared buffer,
//     passes each message to OnData (text as types.StringBuffer, binary
//     as types.BytesBuffer), answers pings, and ends (one such goroutine
//     at a time per connection, so messages keep their order). The idle
//     timeout is a timer that fails the transport when nothing was read
//     for that long; with Builder.TakeHeartbeats the same timer runs the
//     Engine.IO heartbeat instead, so no goroutine waits on the engine's
//     heartbeat either. A connection that is not TCP, or any connection off
//     Linux, is read by a goroutine of its own with a read deadline
//     instead. A message over Builder.MaxMessage or a protocol violation
//     is answered with a close frame (1009 or 1002) and fails the
//     transport.
//   - A close frame from the peer, or the connection closed under it, closes
//     the transport; any other read or write error is reported as a
//     transport error (the engine then closes the socket).
//   - Closing the transport (DoClose, or the peer's close) stops the write
//     queue and closes the network connection. Like the library, it does
//     not send a close frame and does not wait for queued writes.
//   - Per-message deflate is not supported: frames are sent uncompressed,
//     and a compressed frame from the client is a protocol error. The
//     server must not enable it (ServerOptions.SetPerMessageDeflate);
//     Switchboard does not.
package wstransport

import (
	"errors"
	"fmt"
	"github.com/switchboard/switchboard/internal/rawio"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	ws "github.com/gorilla/websocket"
	"github.com/switchboard/switchboard/internal/warm"
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
// for concurrent use once registered (set PingDelay, MaxQueue,
// BroadcastDelay and MaxMessage before). The zero Builder works but caches nothing (every
// pre-encoded frame is built per recipient, as the library does), bounds no
// queue and no message, reads each connection with a goroutine and writes
// pings at once, which the engine's pong-timeout race makes unsafe under
// load: use NewBuilder.
type Builder struct {
	cache   *frameCache
	poll    *poller
	readers *warm.Pool // runs readReady on kept goroutines; nil: a new one each time
	out     *outbox    // writes the frames SendPreEncoded defers; nil: written at once

	// PingDelay holds back each Engine.IO ping this long before writing it
	// (see Send). NewBuilder sets DefaultPingDelay; keep it well under the
	// server's ping timeout.
	PingDelay time.Duration

	// MaxQueue bounds the bytes a connection may have queued behind a full
	// socket buffer; a send past it fails the transport with ErrSlowClient
	// and the engine closes the connection. Zero means no bound. NewBuilder
	// sets DefaultMaxQueue.
	MaxQueue int

	// BroadcastDelay holds the frames of large fan-outs (SendPreEncoded
	// with later) up to this long before the outbox writes them, so that
	// the broadcasts a connection gets in that time go out in one write:
	// fewer system calls for the node and fewer wake-ups for the client,
	// for at most this much latency on those broadcasts. A frame the
	// transport writes at once (Send, or SendPreEncoded without later)
	// takes the waiting frames with it, in order. Zero (NewBuilder's
	// default): a lane's writer runs as soon as the scheduler lets it.
	BroadcastDelay time.Duration

	// MaxMessage is the largest message payload a client may send, its
	// fragments together; a larger one closes the connection (close code
	// 1009, then a transport error). Zero means no limit. NewBuilder sets
	// DefaultMaxMessage; set it to the server's MaxHttpBufferSize.
	MaxMessage int64

	stats counters
}

// counters are a Builder's statistics, shared by its transports.
type counters struct {
	flushers, direct, slow, outboxWrites atomic.Uint64
}

// Stats are a Builder's counters since it was made.
type Stats struct {
	// Flushers is the number of flusher goroutines started: one each time
	// a connection's socket buffer filled. With clients that keep up it
	// stays near 0.
	Flushers uint64
	// Direct is the number of broadcast frames written by SendPreEncoded.
	Direct uint64
	// SlowClients is the number of connections cut off by MaxQueue.
	SlowClients uint64
	// OutboxWrites is the number of writes that carried the frames
	// SendPreEncoded left to the outbox: its writers' writes, and the
	// writes made at once that took them along. Direct / OutboxWrites is
	// about how many broadcast frames one system call carried.
	OutboxWrites uint64
}

// Stats returns the counters of the Builder's transports.
func (b *Builder) Stats() Stats {
	return Stats{
		Flushers:     b.stats.flushers.Load(),
		Direct:       b.stats.direct.Load(),
		SlowClients:  b.stats.slow.Load(),
		OutboxWrites: b.stats.outboxWrites.Load(),
	}
}

// NewBuilder returns a Builder with a frame cache of 256 frames and 8 MiB of
// payload, whose transports are read through one epoll instance (Linux; a
// goroutine per connection elsewhere) and write broadcast frames through an
// outbox (see SendPreEncoded).
func NewBuilder() *Builder {
	b := &Builder{
		cache:      newFrameCache(defaultCacheEntries, defaultCacheBytes),
		poll:       &poller{},
		readers:    warm.New(readerWorkers, readerWorkerIdle),
		PingDelay:  DefaultPingDelay,
		MaxQueue:   DefaultMaxQueue,
		MaxMessage: DefaultMaxMessage,
	}
	b.out = newOutbox(&b.BroadcastDelay)
	return b
}

const (
	// DefaultPingDelay is NewBuilder's PingDelay.
	DefaultPingDelay = 500 * time.Millisecond
	// DefaultMaxQueue is NewBuilder's MaxQueue: 8 MiB, room for a burst of
	// about 100,000 presence events to one member (the whole organisation
	// reconnecting at once) before a client that does not read is cut off.
	DefaultMaxQueue = 8 << 20
	// DefaultMaxMessage is NewBuilder's MaxMessage, the library's default
	// MaxHttpBufferSize (1 MB).
	DefaultMaxMessage = 1e6
)

// ErrSlowClient is the transport error of a connection whose queue of
// unwritten frames outgrew Builder.MaxQueue.
var ErrSlowClient = errors.New("wstransport: client does not read fast enough: write queue full")

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
	t := &Transport{Transport: transports.MakeTransport(), cache: b.cache, stats: &b.stats, poll: b.poll, readers: b.readers, pingDelay: b.PingDelay, maxQueue: b.MaxQueue}
	t.frames.limit = b.MaxMessage
	if b.out != nil {
		t.lane = b.out.lane()
	}
	t.Prototype(t)
	t.Construct(ctx)
	return t
}

// Transport is one Engine.IO WebSocket transport. It embeds the library's
// base transport (state, parser) and overrides Name, HandlesUpgrades,
// Construct, Send, OnClose and DoClose, and the event emitter with the
// methods that emit (see emitter.go); see the package documentation for
// the contract. Make one with Builder.New.
type Transport struct {
	transports.Transport

	cache     *frameCache
	stats     *counters
	poll      *poller    // reads t without a goroutine of its own; nil: readLoop
	readers   *warm.Pool // where readReady runs; nil: a new goroutine
	pingDelay time.Duration
	maxQueue  int
	conn      *types.WebSocketConn // the library's; its "close" event matters until reading starts
	nc        net.Conn             // the connection under the WebSocket
	raw       syscall.RawConn      // nc's descriptor for non-blocking writes and reads; nil if nc is not TCP
	idle      time.Duration

	closing atomic.Bool // OnClose has run

	// Reading: frames is used by one reader at a time (readReady or
	// readLoop); pollKey is set once, before the poller can read t.
	frames     frameReader
	pollKey    uint32
	readState  atomic.Int32 // readIdle, reading or readAgain (poller only)
	peerClosed atomic.Bool  // the poller saw the peer close or the connection fail
	lastRead   atomic.Int64 // unix nanoseconds of the last bytes read (idle timeout)
	// timer (under mu) runs the heartbeat (beat) when the transport has
	// one (heart, set before reading starts; see Builder.TakeHeartbeats),
	// which also bounds how long the client may stay silent; otherwise,
	// while the poller reads t, the idle timeout (checkIdle).
	timer *time.Timer
	heart *heartbeat

	// engaged turns true once the engine's first Send of anything but an
	// upgrade probe's pong has written or queued its packets: from then on
	// the engine socket has handed this transport every packet it ever
	// buffered, and they are ahead of any frame SendPreEncoded takes.
	engaged atomic.Bool

	lane *lane // the outbox lane that writes queue when scheduled; nil: nothing is deferred

	events emitter // the listeners on the transport (see Emit)

	mu      sync.Mutex
	queue   []batch // frames waiting for the flusher or the outbox, in order
	queued  int     // bytes in queue
	writing bool    // a flusher goroutine is running
	closed  bool    // no more writes: the transport is closing
	// scheduled: t waits in its outbox lane, whose writer writes queue
	// (SendPreEncoded with later), unless a write made at once took the
	// queue along first, or a flusher took over (writing): the flusher then
	// owns the queue, and the lane's writer leaves it alone.
	scheduled bool
}

// batch is what one or more calls wrote: the frames still to write, and the
// number of "drain"s the engine waits for once they are written (one per
// Send; the transport's own control frames and SendPreEncoded want none).
type batch struct {
	bufs   net.Buffers
	size   int
	drains int
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
	// The upgrade response is written: the headers set for it (CORS, 0.8
	// KiB) would otherwise stay with the connection for its life.
	ctx.ResponseHeaders().Replace(map[string][]string{})
	t.nc = t.conn.NetConn()
	if tcp, ok := t.nc.(*net.TCPConn); ok {
		t.raw, _ = tcp.SyscallConn()
	}

	// The engine closes the WebSocketConn when it aborts the handshake
	// before reading starts (its Close emits "close"): the transport closes
	// with it. The transport's own close paths call OnClose themselves.
	_ = t.conn.Once("close", func(...any) { t.OnClose() })
	t.SetWritable(true)
	t.SetPerMessageDeflate(nil)

	transports.StartReader(t, ctx.TransportReadPermission(), t.startReading)
}

// readBufferSize is the size of the buffers the transport reads into. The
// poller's are shared by all connections, so an idle connection holds none.
const readBufferSize = 16 << 10

// readsPerWake bounds the reads of a connection by one goroutine, so a
// client that sends without pause does not keep a goroutine to itself:
// after that many the reading goes on in a new one.
const readsPerWake = 4

// errIdle is the transport error of a connection that sent nothing for the
// idle timeout.
var errIdle = fmt.Errorf("wstransport: nothing read for the idle timeout: %w", os.ErrDeadlineExceeded)

// startReading starts reading once the engine allows it (StartReader runs
// it in a goroutine of its own): through the poller, which needs no
// goroutine while the connection is idle, or else with readLoop.
//
// It also drops the gorilla connection the library made for the upgrade:
// the transport reads and writes the network connection itself, and the
// library touches ctx.Websocket.Conn only until the engine lets the
// transport read (a handshake aborted before that closes it), so from here
// on it is dead weight, about 3 KiB per connection with its read and
// write buffers. The listeners on the library's WebSocketConn go too (the
// engine's and the transport's, ~0.5 KiB): from here on nothing but the
// transport closes the connection, and it calls OnClose itself.
func (t *Transport) startReading() {
	t.conn.Conn = nil
	t.conn.Clear()
	polled := t.raw != nil && t.poll != nil
	t.lastRead.Store(time.Now().UnixNano())
	t.mu.Lock()
	switch {
	case t.closed:
	case t.heart != nil:
		t.startHeartbeat()
	case polled && t.idle > 0:
		t.timer = time.AfterFunc(t.idle, t.checkIdle)
	}
	t.mu.Unlock()
	if polled {
		if t.poll.add(t) {
			return
		}
		if t.heart == nil {
			t.stopTimer()
		}
	}
	t.readLoop()
}

// Read states of a connection the poller reads (Transport.readState).
const (
	readIdle  = iota // no reader goroutine
	reading          // a reader goroutine runs
	readAgain        // it runs, and data arrived since it started
)

// readable is the poller's report that data arrived on the connection: it
// starts a reader goroutine (readReady), or tells the running one to read
// again before it ends.
func (t *Transport) readable() {
	for {
		switch t.readState.Load() {
		case readIdle:
			if t.readState.CompareAndSwap(readIdle, reading) {
				t.goRead()
				return
			}
		case reading:
			if t.readState.CompareAndSwap(reading, readAgain) {
				return
			}
		default:
			return
		}
	}
}

// Kept reader goroutines (Builder.readers): reading a message runs the
// engine's and Socket.IO's decoding, deep enough to grow a fresh
// goroutine's stack every time.
const (
	readerWorkers    = 32
	readerWorkerIdle = 5 * time.Second
)

// goRead runs readReady on a kept goroutine, or a new one.
func (t *Transport) goRead() {
	if t.readers != nil {
		t.readers.Go(t.readReady)
		return
	}
	go t.readReady()
}

// readReady is a connection's reader goroutine, one at a time per
// connection: it reads what the connection has, delivers the messages, and
// ends once the socket is drained and no data arrived meanwhile.
func (t *Transport) readReady() {
	bp := t.poll.buffer()
	defer t.poll.putBuffer(bp)
	buf := *bp
	for {
		drained := false
		for range readsPerWake {
			n, err := t.readNow(buf)
			if n > 0 {
				t.lastRead.Store(time.Now().UnixNano())
				if !t.consume(buf[:n]) {
					return
				}
				if n < len(buf) && !t.peerClosed.Load() {
					// A short read emptied the socket's receive queue: skip
					// the read that would say EAGAIN. Data arriving from now
					// on is reported by the poller (readAgain). Not once the
					// peer closed or failed: that was reported already, with
					// or before the data just read, and no edge will follow,
					// so read on to the end of the stream or the error.
					drained = true
					break
				}
			}
			if err == unix.EAGAIN {
				drained = true
				break
			}
			if err != nil {
				t.fail(err)
				return
			}
		}
		if !drained {
			// A client that sends without pause does not keep a
			// goroutine to itself: go on in another, at the back of the
			// run queue.
			t.goRead()
			return
		}
		if t.readState.CompareAndSwap(reading, readIdle) {
			return
		}
		t.readState.Store(reading) // readAgain: read what arrived
	}
}

// readNow reads once into buf without blocking: unix.EAGAIN when there is
// nothing to read, io.EOF when the peer closed, net.ErrClosed when the
// transport did.
func (t *Transport) readNow(buf []byte) (int, error) {
	var n int
	var rerr error
	err := t.raw.Read(func(fd uintptr) bool {
		for {
			n, rerr = rawio.Read(int(fd), buf)
			if rerr != unix.EINTR {
				return true
			}
		}
	})
	switch {
	case err != nil:
		return 0, err
	case rerr != nil:
		return 0, rerr
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// readLoop reads the connection with blocking reads until it fails or
// closes: for connections the poller cannot take (not TCP, or not on
// Linux). The idle timeout is a read deadline renewed before each read.
func (t *Transport) readLoop() {
	buf := make([]byte, 4<<10)
	for {
		if t.idle > 0 {
			_ = t.nc.SetReadDeadline(time.Now().Add(t.idle))
		}
		n, err := t.nc.Read(buf)
		if n > 0 && !t.consume(buf[:n]) {
			return
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				err = errIdle
			}
			t.fail(err)
			return
		}
	}
}

// checkIdle runs on the idle timer of a connection the poller reads: it
// fails the transport if nothing was read for the idle timeout, and
// otherwise sets the timer for when that would be.
func (t *Transport) checkIdle() {
	since := time.Since(time.Unix(0, t.lastRead.Load()))
	if since >= t.idle {
		t.fail(errIdle)
		return
	}
	t.mu.Lock()
	if !t.closed && t.timer != nil {
		t.timer.Reset(t.idle - since)
	}
	t.mu.Unlock()
}

// stopTimer stops the idle or heartbeat timer, if there is one.
func (t *Transport) stopTimer() {
	t.mu.Lock()
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
	t.mu.Unlock()
}

// consume parses data read from the connection and delivers what it
// completes, and reports whether reading goes on: after the peer's close
// frame, or a protocol violation (answered with a close frame carrying the
// code, as gorilla does), the transport is closed or failed instead.
func (t *Transport) consume(data []byte) bool {
	err := t.frames.feed(data, t.deliver)
	if err == nil {
		return true
	}
	var pe *ProtocolError
	if errors.As(err, &pe) {
		t.write(net.Buffers{appendFrame(nil, opClose, ws.FormatCloseMessage(pe.Code, ""))}, false)
	}
	t.fail(err)
	return false
}

// deliver handles one message or control frame from the client: a message
// goes to the engine (text as types.StringBuffer, binary as
// types.BytesBuffer, in a copy: payload is the read buffer), a ping is
// answered, and a close frame is answered with its code and ends reading
// (a *ws.CloseError, which fail turns into a close).
func (t *Transport) deliver(op byte, payload []byte) error {
	switch op {
	case opText:
		if t.heart != nil && len(payload) == 1 && payload[0] == '3' {
			t.pong() // and the engine sees it too
		}
		if p, ok := decodeText(t.Protocol(), payload); ok {
			t.OnPacket(p)
			break
		}
		t.OnData(types.NewStringBuffer(append([]byte(nil), payload...)))
	case opBinary:
		t.OnData(types.NewBytesBuffer(append([]byte(nil), payload...)))
	case opPing:
		t.write(net.Buffers{appendFrame(nil, opPong, payload)}, false)
	case opClose:
		code := ws.CloseNoStatusReceived
		if len(payload) >= 2 {
			code = int(payload[0])<<8 | int(payload[1])
		}
		t.write(net.Buffers{appendFrame(nil, opClose, ws.FormatCloseMessage(code, ""))}, false)
		return &ws.CloseError{Code: code}
	}
	return nil
}

// fail routes a connection error as the library does: a close frame from
// the peer or a closed connection closes the transport, anything else
// (a protocol violation, the idle timeout, a reset) is a transport error.
func (t *Transport) fail(err error) {
	var closeErr *ws.CloseError
	if errors.As(err, &closeErr) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
		t.OnClose()
		return
	}
	t.OnError("websocket error", err)
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
	engage := false
	for _, p := range packets {
		engage = engage || p.Type != packet.PONG
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
	if engage {
		// Only now: a frame SendPreEncoded takes from here on reaches the
		// wire after these packets (the first ones the engine may have held
		// back during an upgrade), never before them.
		t.engaged.Store(true)
	}
}

// SendPreEncoded writes frame, a broadcast's pre-encoded Engine.IO message
// (the WsPreEncodedFrame the Socket.IO adapter shares between recipients:
// "4" and the encoded Socket.IO packet), to the connection as Send would,
// but without the engine socket: no packet object, no events, no "drain".
// The frame is built once for all recipients through the frame cache.
//
// It reports false, and sends nothing, until the engine has sent its own
// first packet through this transport: before that, on a connection
// upgrading from polling, the engine may still hold packets for the old
// transport that must go first. Once it reports true it always does; after
// the transport closed the frame is dropped, as the engine drops packets
// for a closed socket. A frame sent here after a packet the same goroutine
// sent through the engine (or the other way round) reaches the wire after
// it: the engine hands its packets to Send before its send returns.
//
// With later, the frame is not written by the caller but by the Builder's
// outbox, soon after (or Builder.BroadcastDelay after), together with
// whatever else reaches the connection before its writer gets to it (see
// outbox). A large fan-out thus costs the broadcasting goroutine no system
// call, its writes run beside it on the other cores, and a connection that
// gets many broadcasts gets them in few writes. Without later, the frame is
// written at once as Send would, and the frames waiting in the outbox for
// this connection go first in the same write.
func (t *Transport) SendPreEncoded(frame types.BufferInterface, later bool) bool {
	if !t.engaged.Load() {
		return false
	}
	t.stats.direct.Add(1)
	t.send(net.Buffers{t.cache.frame(frame)}, false, later)
	return true
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
// "drain" is emitted once they are written. A batch that would take the
// queue past maxQueue fails the transport instead (ErrSlowClient).
func (t *Transport) write(bufs net.Buffers, drain bool) { t.send(bufs, drain, false) }

// send is write, and with later, leaves bufs queued for the outbox instead
// of writing them now (when the transport has a lane and the connection
// is TCP and not behind a flusher). A write made now takes the frames
// waiting for the outbox with it, in front (the lane's writer then finds
// nothing left): what is sent at once is not held back by broadcasts the
// outbox has not written yet, and they still reach the wire first.
func (t *Transport) send(bufs net.Buffers, drain, later bool) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		t.SetWritable(false)
		return
	}
	drains := 0
	if drain {
		drains = 1
	}
	ready := !t.writing && t.raw != nil
	outbox := ready && t.lane != nil && later
	if ready && !outbox {
		if len(t.queue) > 0 {
			// Only the outbox's frames can be queued while no flusher runs.
			bufs, drains = t.takeQueue(bufs, drains)
			t.stats.outboxWrites.Add(1)
		}
		rest, err := t.writeNow(bufs)
		switch {
		case err != nil:
			// The connection is broken: stop writing to it, and report it
			// as for an encoding error, not under the engine's lock.
			t.abort(err)
			return
		case len(rest) == 0:
			t.mu.Unlock()
			for range drains {
				t.emitDrain()
			}
			return
		}
		bufs = rest
	}
	b := batch{bufs: bufs, size: sizeOf(bufs), drains: drains}
	if t.maxQueue > 0 && t.queued+b.size > t.maxQueue {
		t.stats.slow.Add(1)
		t.abort(ErrSlowClient)
		return
	}
	t.enqueue(b, outbox)
}

// enqueue queues b for the outbox's lane (toLane) or for the flusher, and
// starts the one that is not already on it. The caller holds t.mu; enqueue
// releases it.
func (t *Transport) enqueue(b batch, toLane bool) {
	t.queue = append(t.queue, b)
	t.queued += b.size
	on := &t.writing
	if toLane {
		on = &t.scheduled
	}
	start := !*on
	*on = true
	t.mu.Unlock()
	switch {
	case !start:
	case toLane:
		t.lane.add(t)
	default:
		t.stats.flushers.Add(1)
		go t.flush()
	}
}

// writePending is the outbox's write of t: everything queued, in one system
// call when the socket buffer takes it (nearly always), the rest left for a
// flusher as write does.
func (t *Transport) writePending() {
	t.mu.Lock()
	t.scheduled = false
	if t.closed || t.writing || len(t.queue) == 0 {
		t.mu.Unlock()
		return
	}
	bufs, drains := t.takeQueue(nil, 0)
	t.stats.outboxWrites.Add(1)
	rest, err := t.writeNow(bufs)
	switch {
	case err != nil:
		t.abort(err)
		return
	case len(rest) > 0:
		t.enqueue(batch{bufs: rest, size: sizeOf(rest), drains: drains}, false)
		return
	}
	t.mu.Unlock()
	for range drains {
		t.emitDrain()
	}
}

// takeQueue empties the queue and returns its frames followed by bufs, and
// its drains added to drains. The caller holds t.mu.
func (t *Transport) takeQueue(bufs net.Buffers, drains int) (net.Buffers, int) {
	n := len(bufs)
	for _, b := range t.queue {
		n += len(b.bufs)
		drains += b.drains
	}
	all := t.queue[0].bufs
	if len(all) < n {
		all = make(net.Buffers, 0, n)
		for _, b := range t.queue {
			all = append(all, b.bufs...)
		}
		all = append(all, bufs...)
	}
	t.queue, t.queued = nil, 0
	return all, drains
}

// abort stops the write queue and reports err from another goroutine (the
// caller may hold the engine's flush lock). The caller holds t.mu; abort
// releases it.
func (t *Transport) abort(err error) {
	t.closed = true
	t.queue, t.queued = nil, 0
	t.mu.Unlock()
	t.SetWritable(false)
	go t.fail(err)
}

// sizeOf is the number of bytes in bufs.
func sizeOf(bufs net.Buffers) int {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return n
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
				n, err = rawio.Write(int(fd), bufs[0])
			} else {
				n, err = rawio.Writev(int(fd), bufs)
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
// with blocking writes, until the queue is empty or the transport closed.
// It takes everything queued at once and writes it with one writev (as
// many as the kernel needs), so a client that catches up costs a few
// system calls, not one per frame; the bytes count against maxQueue until
// they are written. A write error is reported (see fail) and ends the
// flusher: the engine closes the transport.
func (t *Transport) flush() {
	for {
		t.mu.Lock()
		if t.closed || len(t.queue) == 0 {
			t.queue, t.queued = nil, 0
			t.writing = false
			t.mu.Unlock()
			return
		}
		batches := t.queue
		t.queue = nil
		t.mu.Unlock()

		var bufs net.Buffers
		size, drains := 0, 0
		for _, b := range batches {
			bufs = append(bufs, b.bufs...)
			size += b.size
			drains += b.drains
		}
		if _, err := bufs.WriteTo(t.nc); err != nil {
			t.stop()
			t.mu.Lock()
			t.writing = false
			t.mu.Unlock()
			t.fail(err)
			return
		}
		t.mu.Lock()
		if !t.closed {
			t.queued -= size
		}
		t.mu.Unlock()
		for range drains {
			t.emitDrain()
		}
	}
}

// Queued is the number of bytes queued and not yet written: zero while the
// client keeps up and the outbox has written.
func (t *Transport) Queued() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.queued
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
	t.queue, t.queued = nil, 0
	t.mu.Unlock()
}

// OnClose runs on every close path (the peer's close frame, a closed
// connection, a DoClose, the engine aborting the handshake), and does its
// work once: it stops the write queue, marks the transport closed and
// emits "close" (by the base transport), and closes the network connection
// so that nothing is leaked whichever path came first.
func (t *Transport) OnClose() {
	if !t.closing.CompareAndSwap(false, true) {
		return
	}
	t.stop()
	t.stopTimer()
	if t.poll != nil {
		t.poll.remove(t)
	}
	if t.ReadyState() != "closed" {
		t.SetReadyState("closed")
		t.Emit("close")
	}
	t.closeConn()
}

// closeConn closes the network connection, emits "close" on the library's
// WebSocketConn as its Close does (its gorilla connection may be gone, see
// startReading), and completes the close through OnClose.
func (t *Transport) closeConn() {
	if t.conn != nil {
		_ = t.nc.Close()
		t.conn.Emit("close")
		t.OnClose()
	}
}

// DoClose closes the transport on the engine's request (the base Close
// calls it once, in state "closing"): it stops the write queue, calls fn,
// then closes the connection and completes the close through OnClose.
func (t *Transport) DoClose(fn types.Callable) {
	t.stop()
	defer t.closeConn()
	if fn != nil {
		fn()
	}
}
