package adapter

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// Adapter is the adapter of one namespace on one node. It embeds the
// in-memory adapter Local (which keeps the rooms and delivers to local
// sockets) and overrides what must cross nodes; the Builder creates it.
//
// Subscriptions: the namespace channel `<prefix>#<nsp>#`, the request
// channel, this node's response channel, and `<prefix>#<nsp>#<room>#` for
// each room that has at least one local member, driven by the embedded
// adapter's "create-room" and "delete-room" events. Private rooms (room ==
// socket id) are skipped unless Config.SubscribeSocketRooms.
type Adapter struct {
	*Local

	b    *Builder
	name string

	bcastCh   string // <prefix>#<nsp>#
	reqCh     string // <prefix>-request#<nsp>#
	respCh    string // <prefix>-response#<nsp>#
	ownRespCh string // <prefix>-response#<nsp>#<uid>#

	ctx     context.Context
	cancel  context.CancelFunc
	stopped atomic.Bool

	mu      sync.Mutex
	rooms   map[socket.Room]struct{} // rooms whose channel is routed here
	pending map[string]*pendingRequest
	acks    map[string]*ackRequest
}

var _ socket.Adapter = (*Adapter)(nil)

func newAdapter(b *Builder, nsp socket.Namespace) *Adapter {
	p, name := b.cfg.Prefix, nsp.Name()
	a := &Adapter{
		Local:     newLocal(),
		b:         b,
		name:      name,
		bcastCh:   p + "#" + name + "#",
		reqCh:     p + "-request#" + name + "#",
		respCh:    p + "-response#" + name + "#",
		ownRespCh: p + "-response#" + name + "#" + b.uid + "#",
		rooms:     make(map[socket.Room]struct{}),
		pending:   make(map[string]*pendingRequest),
		acks:      make(map[string]*ackRequest),
	}
	a.ctx, a.cancel = context.WithCancel(b.ctx)
	// Our overrides must be what the embedded adapter calls back into.
	a.Prototype(a)
	a.Construct(nsp)
	return a
}

// start subscribes the namespace's fixed channels and follows room
// creation and deletion.
func (a *Adapter) start() {
	_ = a.On("create-room", a.onCreateRoom)
	_ = a.On("delete-room", a.onDeleteRoom)
	a.b.bus.set(a.bcastCh, route{kind: routeBroadcast, a: a})
	a.b.bus.set(a.reqCh, route{kind: routeRequest, a: a})
	a.b.bus.set(a.ownRespCh, route{kind: routeResponse, a: a})
	if a.b.cfg.ListenSharedResponses {
		a.b.bus.set(a.respCh, route{kind: routeResponse, a: a})
	}
}

// stop unsubscribes everything and ends pending requests.
func (a *Adapter) stop() {
	if !a.stopped.CompareAndSwap(false, true) {
		return
	}
	a.cancel()
	a.mu.Lock()
	rooms := a.rooms
	a.rooms = make(map[socket.Room]struct{})
	a.mu.Unlock()
	for room := range rooms {
		a.b.bus.del(a.roomCh(string(room)), a)
	}
	for _, ch := range []string{a.bcastCh, a.reqCh, a.respCh, a.ownRespCh} {
		a.b.bus.del(ch, a)
	}
}

// Close implements socket.Adapter; the server calls it when it closes.
func (a *Adapter) Close() {
	a.stop()
	a.b.mu.Lock()
	if a.b.adapters[a.name] == a {
		delete(a.b.adapters, a.name)
	}
	a.b.mu.Unlock()
}

func (a *Adapter) roomCh(room string) string { return a.bcastCh + room + "#" }

// isPrivate tells whether room is the private room of a local socket.
func (a *Adapter) isPrivate(room socket.Room) bool {
	return a.index.hasSocket(socket.SocketId(room))
}

func (a *Adapter) onCreateRoom(args ...any) {
	room, ok := firstRoom(args)
	if !ok || (!a.b.cfg.SubscribeSocketRooms && a.isPrivate(room)) {
		return
	}
	a.mu.Lock()
	if a.stopped.Load() {
		a.mu.Unlock()
		return
	}
	a.rooms[room] = struct{}{}
	// Under mu so that a concurrent delete cannot reorder with this set.
	a.b.bus.set(a.roomCh(string(room)), route{kind: routeRoom, a: a, room: string(room)})
	a.mu.Unlock()
}

func (a *Adapter) onDeleteRoom(args ...any) {
	room, ok := firstRoom(args)
	if !ok {
		return
	}
	a.mu.Lock()
	if _, ok := a.rooms[room]; ok {
		delete(a.rooms, room)
		a.b.bus.del(a.roomCh(string(room)), a)
	}
	a.mu.Unlock()
}

func firstRoom(args []any) (socket.Room, bool) {
	if len(args) == 0 {
		return "", false
	}
	room, ok := args[0].(socket.Room)
	return room, ok
}

// Broadcast delivers to the local sockets, then publishes the packet for
// the other nodes unless opts.Flags.Local. It never blocks on Redis: when
// the publish queue is full the remote copy is dropped and counted.
//
// Channel: `<prefix>#<nsp>#<room>#` when there is exactly one room, else
// `<prefix>#<nsp>#`. Exceptions: a single room that is the private room of
// a local socket is not published at all (no other node has that socket),
// and a single room that looks like a socket id (20 or 24 base64url
// characters) goes to `<prefix>#<nsp>#` (no node subscribes to private
// rooms), unless Config.SubscribeSocketRooms.
func (a *Adapter) Broadcast(packet *parser.Packet, opts *socket.BroadcastOptions) {
	if isLocal(opts) || a.stopped.Load() {
		a.Local.Broadcast(packet, opts)
		return
	}
	packet.Nsp = a.name
	args, consumed, err := normalizeArgs(packet.Data)
	if consumed {
		packet.Data = args
	}
	a.Local.Broadcast(packet, opts)
	if err != nil {
		a.b.stats.dropped.Add(1)
		a.b.log.Warn().Err(err).Str("nsp", a.name).Msg("broadcast payload cannot be encoded: not published")
		return
	}
	rooms, except := roomStrings(opts, true), roomStrings(opts, false)
	ch, ok := a.publishChannel(rooms)
	if !ok {
		return
	}
	msg, err := encodeBroadcast(a.b.uid, a.name, args, rooms, except, flagsOf(opts, nil))
	if err != nil {
		a.b.stats.dropped.Add(1)
		a.b.log.Warn().Err(err).Str("nsp", a.name).Msg("broadcast not published")
		return
	}
	a.b.pub.publish(ch, msg)
}

// publishChannel picks the channel of a broadcast to rooms; false means
// that no other node can have a recipient.
func (a *Adapter) publishChannel(rooms []string) (string, bool) {
	if len(rooms) != 1 {
		return a.bcastCh, true
	}
	room := rooms[0]
	if a.isPrivate(socket.Room(room)) {
		return "", false
	}
	if !a.b.cfg.SubscribeSocketRooms && looksLikeSocketID(room) {
		return a.bcastCh, true
	}
	return a.roomCh(room), true
}

// looksLikeSocketID matches the ids of socket.io servers: 20 (Node) or 24
// (this Go server) base64url characters. A user room that happens to match
// is still delivered correctly, only through the namespace channel.
func looksLikeSocketID(s string) bool {
	if len(s) != 20 && len(s) != 24 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// onBroadcast delivers a broadcast received from Redis to the local
// sockets. room is the room of the channel ("" for the namespace channel):
// a message on a room channel is delivered only while the room has local
// members.
func (a *Adapter) onBroadcast(room, payload string) {
	if strings.HasPrefix(payload, a.b.own) {
		a.b.stats.ignored.Add(1) // our own, back from Redis
		return
	}
	msg, err := decodeBroadcast(payload)
	if err != nil {
		a.b.stats.malformed.Add(1)
		a.b.stats.dropped.Add(1)
		a.b.log.Debug().Err(err).Str("nsp", a.name).Msg("malformed broadcast ignored")
		return
	}
	if msg.UID == a.b.uid || msg.Nsp != a.name {
		a.b.stats.ignored.Add(1)
		return
	}
	if room != "" {
		if !a.index.hasRoom(socket.Room(room)) {
			a.b.stats.ignored.Add(1)
			return
		}
	}
	flags := &socket.BroadcastFlags{}
	flags.Volatile = msg.Volatile
	flags.Compress = msg.Compress
	a.Local.Broadcast(
		&parser.Packet{Type: parser.EVENT, Nsp: a.name, Data: msg.Data},
		&socket.BroadcastOptions{Rooms: roomSet(msg.Rooms), Except: roomSet(msg.Except), Flags: flags},
	)
}

func isLocal(opts *socket.BroadcastOptions) bool {
	return opts != nil && opts.Flags != nil && opts.Flags.Local
}

// roomStrings lists opts.Rooms (rooms) or opts.Except (!rooms).
func roomStrings(opts *socket.BroadcastOptions, rooms bool) []string {
	if opts == nil {
		return []string{}
	}
	set := opts.Except
	if rooms {
		set = opts.Rooms
	}
	if set == nil {
		return []string{}
	}
	keys := set.Keys()
	out := make([]string, len(keys))
	for i, r := range keys {
		out[i] = string(r)
	}
	return out
}

func roomSet(rooms []string) *types.Set[socket.Room] {
	s := types.NewSet[socket.Room]()
	for _, r := range rooms {
		s.Add(socket.Room(r))
	}
	return s
}

// flagsOf copies the flags that cross nodes; timeout, when given, is the
// ack timeout of a BROADCAST request in milliseconds.
func flagsOf(opts *socket.BroadcastOptions, timeout *int64) wireFlags {
	f := wireFlags{Timeout: timeout}
	if opts != nil && opts.Flags != nil {
		f.Volatile = opts.Flags.Volatile
		f.Compress = opts.Flags.Compress
	}
	return f
}
