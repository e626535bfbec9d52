package adapter

import (
	"sync"
	"sync/atomic"

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
//
// Rooms: Local keeps its own index of which local sockets are in which
// rooms (roomIndex), and overrides every method of the library's adapter
// that reads or changes rooms; it emits the same "create-room",
// "join-room", "leave-room" and "delete-room" events. Rooms and Sids
// return copies.
type Local struct {
	socket.Adapter

	nsp     socket.Namespace
	encoder parser.Encoder
	index   *roomIndex
	targets sync.Pool // *[]target: the recipients of a fan-out
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
	l := &Local{Adapter: socket.MakeAdapter(), index: newRoomIndex()}
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
	encoded, wopts := l.encode(packet, opts)
	frame := wopts.WsPreEncodedFrame
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

// encode encodes packet for the namespace once for all recipients, as the
// library's adapter does: a packet without binary attachments is one
// string, and its Engine.IO message ("4" for message, then the packet) is
// what every websocket recipient gets (WsPreEncodedFrame).
func (l *Local) encode(packet *parser.Packet, opts *socket.BroadcastOptions) ([]types.BufferInterface, *socket.WriteOptions) {
	packet.Nsp = l.nsp.Name()
	encoded := l.encoder.Encode(packet)
	wopts := &socket.WriteOptions{PreEncoded: true}
	if opts != nil && opts.Flags != nil {
		wopts.Volatile = opts.Flags.Volatile
		wopts.Compress = opts.Flags.Compress
	}
	if len(encoded) == 1 {
		if p, ok := encoded[0].(*types.StringBuffer); ok {
			frame := make([]byte, 1, 1+p.Len())
			frame[0] = '4'
			wopts.WsPreEncodedFrame = types.NewStringBuffer(append(frame, p.Bytes()...))
		}
	}
	return encoded, wopts
}

// BroadcastWithAck implements socket.Adapter as the library's adapter does:
// the packet goes to every selected socket with one packet id, whose
// answers go to ack; clientCountCallback gets the number of recipients.
func (l *Local) BroadcastWithAck(packet *parser.Packet, opts *socket.BroadcastOptions, clientCountCallback func(uint64), ack socket.Ack) {
	id := l.nsp.Ids()
	packet.Id = &id
	encoded, wopts := l.encode(packet, opts)
	var count atomic.Uint64
	l.each(opts, func(s *socket.Socket) {
		count.Add(1)
		s.Acks().Store(id, ack)
		if notify := s.NotifyOutgoingListeners(); notify != nil {
			notify(packet)
		}
		s.Client().WriteToEngine(encoded, wopts)
	})
	clientCountCallback(count.Load())
}

// audience is the number of local sockets in opts.Rooms (counted once per
// room), or of all local sockets when there are none: at least the number
// of recipients of a broadcast with opts.
func (l *Local) audience(opts *socket.BroadcastOptions) int {
	if opts == nil || opts.Rooms == nil || opts.Rooms.Len() == 0 {
		return l.index.count()
	}
	n := 0
	for _, room := range opts.Rooms.Keys() {
		n += l.index.size(room)
	}
	return n
}

// each calls fn for every connected local socket that opts selects: the
// members of opts.Rooms (each once), or every socket when there are none,
// minus the members of opts.Except. The selection is taken first, so fn
// may join and leave rooms.
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
	buf, _ := l.targets.Get().(*[]target)
	if buf == nil {
		buf = new([]target)
	}
	ts := (*buf)[:0]
	defer func() {
		clear(ts)
		*buf = ts[:0]
		l.targets.Put(buf)
	}()
	var skip map[socket.SocketId]struct{}
	if len(except) > 0 {
		for _, room := range except {
			ts = l.index.appendIn(ts, room)
		}
		if len(ts) > 0 {
			skip = make(map[socket.SocketId]struct{}, len(ts))
			for _, t := range ts {
				skip[t.id] = struct{}{}
			}
		}
		ts = ts[:0]
	}
	switch len(rooms) {
	case 0:
		ts = l.index.appendAll(ts)
	case 1:
		ts = l.index.appendIn(ts, rooms[0])
	default:
		for _, room := range rooms {
			ts = l.index.appendIn(ts, room)
		}
		if len(ts) > 1 {
			seen := make(map[socket.SocketId]struct{}, len(ts))
			kept := ts[:0]
			for _, t := range ts {
				if _, dup := seen[t.id]; !dup {
					seen[t.id] = struct{}{}
					kept = append(kept, t)
				}
			}
			ts = kept
		}
	}
	sockets := l.nsp.Sockets()
	for _, t := range ts {
		if _, no := skip[t.id]; no {
			continue
		}
		s := t.sock
		if s == nil {
			var ok bool
			if s, ok = sockets.Load(t.id); !ok {
				continue
			}
		}
		if s.Connected() {
			fn(s)
		}
	}
}

// AddAll implements socket.Adapter: socket id joins rooms.
func (l *Local) AddAll(id socket.SocketId, rooms *types.Set[socket.Room]) {
	for _, c := range l.index.add(id, rooms.Keys(), l.lookup) {
		if c.edge {
			l.Emit("create-room", c.room)
		}
		l.Emit("join-room", c.room, id)
	}
}

// lookup finds socket id in the namespace; nil when it is not there (yet).
func (l *Local) lookup(id socket.SocketId) *socket.Socket {
	if l.nsp == nil {
		return nil
	}
	s, _ := l.nsp.Sockets().Load(id)
	return s
}

// Del implements socket.Adapter: socket id leaves room.
func (l *Local) Del(id socket.SocketId, room socket.Room) {
	l.left(id, l.index.remove(id, room, false))
}

// DelAll implements socket.Adapter: socket id leaves all its rooms.
func (l *Local) DelAll(id socket.SocketId) {
	l.left(id, l.index.remove(id, "", true))
}

func (l *Local) left(id socket.SocketId, changes []roomChange) {
	for _, c := range changes {
		l.Emit("leave-room", c.room, id)
		if c.edge {
			l.Emit("delete-room", c.room)
		}
	}
}

// Rooms implements socket.Adapter with a copy of the rooms that have local
// sockets and their sockets.
func (l *Local) Rooms() *types.Map[socket.Room, *types.Set[socket.SocketId]] {
	return l.index.roomsCopy()
}

// Sids implements socket.Adapter with a copy of the local sockets and their
// rooms.
func (l *Local) Sids() *types.Map[socket.SocketId, *types.Set[socket.Room]] {
	return l.index.socketsCopy()
}

// SocketRooms implements socket.Adapter: the rooms of socket id, in a new
// set; nil when it is in none.
func (l *Local) SocketRooms(id socket.SocketId) *types.Set[socket.Room] {
	return l.index.roomsOf(id)
}

// Sockets implements socket.Adapter: the connected local sockets in rooms
// (all of them when rooms is empty).
func (l *Local) Sockets(rooms *types.Set[socket.Room]) *types.Set[socket.SocketId] {
	ids := types.NewSet[socket.SocketId]()
	l.each(&socket.BroadcastOptions{Rooms: rooms}, func(s *socket.Socket) { ids.Add(s.Id()) })
	return ids
}

// FetchSockets implements socket.Adapter for the local sockets.
func (l *Local) FetchSockets(opts *socket.BroadcastOptions) func(func([]socket.SocketDetails, error)) {
	return func(callback func([]socket.SocketDetails, error)) {
		sockets := []socket.SocketDetails{}
		l.each(opts, func(s *socket.Socket) { sockets = append(sockets, s) })
		callback(sockets, nil)
	}
}

// AddSockets implements socket.Adapter: the selected local sockets join
// rooms.
func (l *Local) AddSockets(opts *socket.BroadcastOptions, rooms []socket.Room) {
	l.each(opts, func(s *socket.Socket) { s.Join(rooms...) })
}

// DelSockets implements socket.Adapter: the selected local sockets leave
// rooms.
func (l *Local) DelSockets(opts *socket.BroadcastOptions, rooms []socket.Room) {
	l.each(opts, func(s *socket.Socket) {
		for _, room := range rooms {
			s.Leave(room)
		}
	})
}

// DisconnectSockets implements socket.Adapter: the selected local sockets
// disconnect (closing their connection when status).
func (l *Local) DisconnectSockets(opts *socket.BroadcastOptions, status bool) {
	l.each(opts, func(s *socket.Socket) { s.Disconnect(status) })
}
