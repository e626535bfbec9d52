package adapter

import (
	"sync"

	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// roomIndex is Local's record of the rooms its local sockets are in, in
// place of the library adapter's two concurrent maps of sets. Every socket
// is in a few rooms (its own, its device's and its user's for Switchboard),
// most rooms hold one socket, and the library's maps spend an entry, a
// boxed value, a set and its map on each: ~1.3 KiB per connection. Here a
// socket costs one map slot and a short slice, and a room of one socket a
// map slot with no set.
type roomIndex struct {
	mu      sync.RWMutex
	members map[socket.Room]members
	sockets map[socket.SocketId]*indexed
}

// indexed is one socket of the index.
type indexed struct {
	// sock is the socket, from its namespace's sockets as of its first
	// join once it is there (the library adds a socket to its namespace
	// before it joins the socket's own room; the gateway's joins during
	// the handshake come earlier), so a fan-out need not look every
	// recipient up there; nil until then.
	sock  *socket.Socket
	rooms []socket.Room // in the order joined
}

// target is a recipient of a fan-out: its id, and its socket when known.
type target struct {
	id   socket.SocketId
	sock *socket.Socket
}

// members are the sockets in one room: one inline, more in a set.
type members struct {
	one  socket.SocketId // when more is nil
	more map[socket.SocketId]struct{}
}

func (m members) len() int {
	if m.more != nil {
		return len(m.more)
	}
	return 1
}

func (m members) has(id socket.SocketId) bool {
	if m.more != nil {
		_, ok := m.more[id]
		return ok
	}
	return m.one == id
}

// appendTo appends the ids of m to ids.
func (m members) appendTo(ids []socket.SocketId) []socket.SocketId {
	if m.more == nil {
		return append(ids, m.one)
	}
	for id := range m.more {
		ids = append(ids, id)
	}
	return ids
}

func newRoomIndex() *roomIndex {
	return &roomIndex{
		members: make(map[socket.Room]members),
		sockets: make(map[socket.SocketId]*indexed),
	}
}

// roomChange is a change add or remove made, for the adapter's events.
type roomChange struct {
	room socket.Room
	// edge: the room was created (add) or deleted (remove) by it.
	edge bool
}

// add puts socket id in rooms and returns the rooms it joined, in order.
// lookup finds the socket in its namespace (nil when it is not there yet).
func (x *roomIndex) add(id socket.SocketId, rooms []socket.Room, lookup func(socket.SocketId) *socket.Socket) []roomChange {
	x.mu.Lock()
	defer x.mu.Unlock()
	var changes []roomChange
	e := x.sockets[id]
	if e == nil {
		e = &indexed{rooms: make([]socket.Room, 0, len(rooms))}
		x.sockets[id] = e
	}
	if e.sock == nil {
		e.sock = lookup(id)
	}
	own := e.rooms
	for _, room := range rooms {
		m, exists := x.members[room]
		switch {
		case !exists:
			x.members[room] = members{one: id}
		case m.has(id):
			continue
		case m.more == nil:
			x.members[room] = members{more: map[socket.SocketId]struct{}{m.one: {}, id: {}}}
		default:
			m.more[id] = struct{}{}
		}
		own = append(own, room)
		changes = append(changes, roomChange{room: room, edge: !exists})
	}
	e.rooms = own
	return changes
}

// remove takes socket id out of room, or out of all its rooms when all,
// and returns the rooms it left.
func (x *roomIndex) remove(id socket.SocketId, room socket.Room, all bool) []roomChange {
	x.mu.Lock()
	defer x.mu.Unlock()
	e, ok := x.sockets[id]
	if !ok {
		return nil
	}
	own := e.rooms
	var left []socket.Room
	if all {
		left = own
		delete(x.sockets, id)
	} else {
		kept := own[:0]
		for _, r := range own {
			if r == room {
				left = append(left, r)
			} else {
				kept = append(kept, r)
			}
		}
		clear(own[len(kept):])
		e.rooms = kept
	}
	changes := make([]roomChange, 0, len(left))
	for _, r := range left {
		m, ok := x.members[r]
		if !ok || !m.has(id) {
			continue
		}
		deleted := false
		switch {
		case m.more == nil:
			delete(x.members, r)
			deleted = true
		case len(m.more) == 2:
			delete(m.more, id)
			for rest := range m.more {
				x.members[r] = members{one: rest}
			}
		default:
			delete(m.more, id)
		}
		changes = append(changes, roomChange{room: r, edge: deleted})
	}
	return changes
}

// hasRoom reports whether room has a local socket.
func (x *roomIndex) hasRoom(room socket.Room) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	_, ok := x.members[room]
	return ok
}

// hasSocket reports whether socket id is in a room (every connected local
// socket is: in its own).
func (x *roomIndex) hasSocket(id socket.SocketId) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	_, ok := x.sockets[id]
	return ok
}

// size is the number of sockets in room.
func (x *roomIndex) size(room socket.Room) int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if m, ok := x.members[room]; ok {
		return m.len()
	}
	return 0
}

// count is the number of sockets in any room.
func (x *roomIndex) count() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.sockets)
}

// appendIn appends to ts the sockets in room.
func (x *roomIndex) appendIn(ts []target, room socket.Room) []target {
	x.mu.RLock()
	defer x.mu.RUnlock()
	m, ok := x.members[room]
	if !ok {
		return ts
	}
	if m.more == nil {
		return append(ts, target{m.one, x.sockets[m.one].sock})
	}
	for id := range m.more {
		ts = append(ts, target{id, x.sockets[id].sock})
	}
	return ts
}

// appendAll appends to ts every socket in a room.
func (x *roomIndex) appendAll(ts []target) []target {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for id, e := range x.sockets {
		ts = append(ts, target{id, e.sock})
	}
	return ts
}

// roomsOf returns the rooms of socket id as a new set, nil when it is in
// none.
func (x *roomIndex) roomsOf(id socket.SocketId) *types.Set[socket.Room] {
	x.mu.RLock()
	defer x.mu.RUnlock()
	e, ok := x.sockets[id]
	if !ok {
		return nil
	}
	return types.NewSet(e.rooms...)
}

// roomNames lists the rooms that have a local socket.
func (x *roomIndex) roomNames() []socket.Room {
	x.mu.RLock()
	defer x.mu.RUnlock()
	names := make([]socket.Room, 0, len(x.members))
	for room := range x.members {
		names = append(names, room)
	}
	return names
}

// roomsCopy copies the rooms and their sockets into the library's shape
// (Adapter.Rooms).
func (x *roomIndex) roomsCopy() *types.Map[socket.Room, *types.Set[socket.SocketId]] {
	x.mu.RLock()
	defer x.mu.RUnlock()
	rooms := &types.Map[socket.Room, *types.Set[socket.SocketId]]{}
	for room, m := range x.members {
		rooms.Store(room, types.NewSet(m.appendTo(nil)...))
	}
	return rooms
}

// socketsCopy copies the sockets and their rooms into the library's shape
// (Adapter.Sids).
func (x *roomIndex) socketsCopy() *types.Map[socket.SocketId, *types.Set[socket.Room]] {
	x.mu.RLock()
	defer x.mu.RUnlock()
	sids := &types.Map[socket.SocketId, *types.Set[socket.Room]]{}
	for id, e := range x.sockets {
		sids.Store(id, types.NewSet(e.rooms...))
	}
	return sids
}
