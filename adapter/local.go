package adapter

import (
	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// Local is the in-memory adapter of one namespace on one node: the
// library's rooms and membership (embedded), with a cheaper delivery of
// broadcasts to the local sockets. It is the adapter of a node without
// Redis (LocalBuilder), and the Redis Adapter delivers through it.
//
// Delivery: the packet is encoded once, as the library does. The library
// then sends it to each recipient through its Socket.IO client and
// Engine.IO socket, which costs a copy of the packet, a packet object,
// five events and two locks per recipient, on top of the write. Local
// hands the shared pre-encoded frame straight to the recipient's transport
// when the transport can take it (PreEncodedSender: Switchboard's
// websocket transport, internal/wstransport), which writes it in order with
// everything else sent to that connection. Any other recipient (long
// polling, the library's websocket transport, a binary packet) goes the
// library's way.
type Local struct {
	socket.Adapter

	nsp     socket.Namespace
	encoder parser.Encoder
}

var _ socket.Adapter = (*Local)(nil)

// PreEncodedSender is a transport that writes a broadcast's pre-encoded
// Engine.IO message (packet.Options.WsPreEncodedFrame) directly. It reports
// false when it cannot take the frame now in order with what the engine
// sent before; the caller then sends through the engine. With later, the
// transport may leave the write to a writer of its own, to run beside the
// fan-out and carry several frames per write (internal/wstransport's
// outbox); the frame still reaches the wire in order with what is sent to
// the connection before and after it.
type PreEncodedSender interface {
	SendPreEncoded(frame types.BufferInterface, later bool) bool
}

// laterFrom is the audience from which Broadcast lets the transports write
// its frame later (PreEncodedSender): a fan-out this large gains from
// writes that run beside it and carry several frames each, while a smaller
// one (a call's events, to a few devices) is written at once, without the
// hand-off to another goroutine.
const laterFrom = 8

// LocalBuilder makes Local adapters; set it with
// socket.ServerOptions.SetAdapter on a node without Redis.
type LocalBuilder struct{}

// New implements socket.AdapterConstructor.
func (LocalBuilder) New(nsp socket.Namespace) socket.Adapter { return NewLocal(nsp) }

// NewLocal returns the Local adapter of nsp.
func NewLocal(nsp socket.Namespace) *Local {
	l := newLocal()
	l.Construct(nsp)
	return l
}

// newLocal returns a Local that is not constructed yet, for embedding: the
// embedder sets its prototype, then calls Construct.
func newLocal() *Local {
	l := &Local{Adapter: socket.MakeAdapter()}
	l.Prototype(l)
	return l
}

// Construct implements socket.Adapter.
func (l *Local) Construct(nsp socket.Namespace) {
	l.Adapter.Construct(nsp)
	l.nsp = nsp
	l.encoder = nsp.Server().Encoder()
}

// Broadcast implements socket.Adapter: it sends packet to the local sockets
// in opts.Rooms (all sockets when there are none) that are connected and
// not in opts.Except, as the library's adapter does.
func (l *Local) Broadcast(packet *parser.Packet, opts *socket.BroadcastOptions) {
	packet.Nsp = l.nsp.Name()
	encoded := l.encoder.Encode(packet)
	wopts := &socket.WriteOptions{PreEncoded: true}
	if opts != nil && opts.Flags != nil {
		wopts.Volatile = opts.Flags.Volatile
		wopts.Compress = opts.Flags.Compress
	}
	// A packet without binary attachments is one string: its Engine.IO
	// message ("4" for message, then the packet) is what every websocket
	// recipient gets, as the library's adapter prepares it.
	var frame types.BufferInterface
	if len(encoded) == 1 {
		if p, ok := encoded[0].(*types.StringBuffer); ok {
			frame = types.NewStringBufferString("4")
			_, _ = frame.Write(p.Bytes())
			wopts.WsPreEncodedFrame = frame
		}
	}
	later := frame != nil && l.audience(opts) >= laterFrom
	l.each(opts, func(s *socket.Socket) {
		if notify := s.NotifyOutgoingListeners(); notify != nil {
			notify(packet)
		}
		if frame != nil {
			if conn := s.Conn(); conn.ReadyState() == "open" {
				if d, ok := conn.Transport().(PreEncodedSender); ok && d.SendPreEncoded(frame, later) {
					return
				}
			}
		}
		s.Client().WriteToEngine(encoded, wopts)
	})
}

// audience is the number of local sockets in opts.Rooms (counted once per
// room), or of all local sockets when there are none: at least the number
// of recipients of a broadcast with opts.
func (l *Local) audience(opts *socket.BroadcastOptions) int {
	if opts == nil || opts.Rooms == nil || opts.Rooms.Len() == 0 {
		return l.nsp.Sockets().Len()
	}
	n := 0
	for _, room := range opts.Rooms.Keys() {
		if ids, ok := l.Rooms().Load(room); ok {
			n += ids.Len()
		}
	}
	return n
}

// each calls fn for every connected local socket that opts selects: the
// members of opts.Rooms (each once), or every socket when there are none,
// minus the members of opts.Except.
func (l *Local) each(opts *socket.BroadcastOptions, fn func(*socket.Socket)) {
	var rooms, except []socket.Room
	if opts != nil {
		if opts.Rooms != nil {
			rooms = opts.Rooms.Keys()
		}
		if opts.Except != nil {
			except = opts.Except.Keys()
		}
	}
	var skip map[socket.SocketId]struct{}
	for _, room := range except {
		if ids, ok := l.Rooms().Load(room); ok {
			if skip == nil {
				skip = make(map[socket.SocketId]struct{})
			}
			for _, id := range ids.Keys() {
				skip[id] = struct{}{}
			}
		}
	}
	sockets := l.nsp.Sockets()
	visit := func(id socket.SocketId) {
		if _, no := skip[id]; no {
			return
		}
		if s, ok := sockets.Load(id); ok && s.Connected() {
			fn(s)
		}
	}
	switch len(rooms) {
	case 0:
		l.Sids().Range(func(id socket.SocketId, _ *types.Set[socket.Room]) bool {
			visit(id)
			return true
		})
	case 1:
		if ids, ok := l.Rooms().Load(rooms[0]); ok {
			for _, id := range ids.Keys() {
				visit(id)
			}
		}
	default:
		seen := make(map[socket.SocketId]struct{})
		for _, room := range rooms {
			ids, ok := l.Rooms().Load(room)
			if !ok {
				continue
			}
			for _, id := range ids.Keys() {
				if _, dup := seen[id]; dup {
					continue
				}
				seen[id] = struct{}{}
				visit(id)
			}
		}
	}
}
