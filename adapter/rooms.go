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
	rooms   map[socket.SocketId][]socket.Room // in the order joined
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
		rooms:   make(map[socket.SocketId][]socket.Room),
	}
}

// roomChange is a change add or remove made, for the adapter's events.
type roomChange struct {
	room socket.Room
	// edge: the room was created (add) or deleted (remove) by it.
	edge bool
}

// add puts socket id in rooms and returns the rooms it joined, in order.
func (x *roomIndex) add(id socket.SocketId, rooms []socket.Room) []roomChange {
	x.mu.Lock()
	defer x.mu.Unlock()
	var changes []roomChange
	own, known := x.rooms[id]
	if !known {
		own = make([]socket.Room, 0, len(rooms))
	}
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
	x.rooms[id] = own
	return changes
}

// remove takes socket id out of room, or out of all its rooms when all,
// and returns the rooms it left.
func (x *roomIndex) remove(id socket.SocketId, room socket.Room, all bool) []roomChange {
	x.mu.Lock()
	defer x.mu.Unlock()
	own, ok := x.rooms[id]
	if !ok {
		return nil
	}
	var left []socket.Room
	if all {
		left = own
		delete(x.rooms, id)
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
		x.rooms[id] = kept
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
	_, ok := x.rooms[id]
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

// sockets is the number of sockets in any room.
func (x *roomIndex) sockets() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.rooms)
}

// appendIn appends to ids the sockets in room.
func (x *roomIndex) appendIn(ids []socket.SocketId, room socket.Room) []socket.SocketId {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if m, ok := x.members[room]; ok {
		ids = m.appendTo(ids)
	}
	return ids
}

// appendAll appends to ids every socket in a room.
func (x *roomIndex) appendAll(ids []socket.SocketId) []socket.SocketId {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for id := range x.rooms {
		ids = append(ids, id)
	}
	return ids
}

// roomsOf returns the rooms of socket id as a new set, nil when it is in
// none.
func (x *roomIndex) roomsOf(id socket.SocketId) *types.Set[socket.Room] {
	x.mu.RLock()
	defer x.mu.RUnlock()
	own, ok := x.rooms[id]
	if !ok {
		return nil
	}
	return types.NewSet(own...)
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

// snapshot copies the index into the library's shapes (Adapter.Rooms and
// Adapter.Sids).
func (x *roomIndex) snapshot() (*types.Map[socket.Room, *types.Set[socket.SocketId]], *types.Map[socket.SocketId, *types.Set[socket.Room]]) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	rooms := &types.Map[socket.Room, *types.Set[socket.SocketId]]{}
	for room, m := range x.members {
		rooms.Store(room, types.NewSet(m.appendTo(nil)...))
	}
	sids := &types.Map[socket.SocketId, *types.Set[socket.Room]]{}
	for id, own := range x.rooms {
		sids.Store(id, types.NewSet(own...))
	}
	return rooms, sids
}
