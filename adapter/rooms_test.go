package adapter

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// Local's room index behaves as the library adapter's rooms: each script
// runs on both, and the room events of each step (in any order: the
// library leaves a socket's rooms in map order), the rooms of each socket
// and the sockets of each room must match after every step.
func TestRoomIndexMatchesTheLibrary(t *testing.T) {
	type op struct {
		do    string // join, leave, leaveAll
		id    socket.SocketId
		rooms []socket.Room
	}
	join := func(id socket.SocketId, rooms ...socket.Room) op { return op{"join", id, rooms} }
	leave := func(id socket.SocketId, room socket.Room) op { return op{"leave", id, []socket.Room{room}} }
	leaveAll := func(id socket.SocketId) op { return op{do: "leaveAll", id: id} }
	scripts := map[string][]op{
		"a socket in its own, its device's and its user's room": {
			join("s1", "s1"), join("s1", "dev:a", "user:u"),
			join("s2", "s2"), join("s2", "dev:b", "user:u"),
			leaveAll("s1"), leaveAll("s2"),
		},
		"joining twice changes nothing": {
			join("s1", "s1", "m"), join("s1", "m", "m"), leave("s1", "m"), leave("s1", "m"),
		},
		"a room shrinks back to one socket and grows again": {
			join("a", "r"), join("b", "r"), join("c", "r"), leave("b", "r"), leave("a", "r"),
			join("a", "r"), leave("c", "r"), leave("a", "r"),
		},
		"leaving what was never joined": {
			leave("x", "r"), leaveAll("x"), join("y", "y"), leave("y", "r"), leaveAll("y"), leaveAll("y"),
		},
		"leave one of several rooms": {
			join("s", "s", "a", "b", "c"), join("t", "b"), leave("s", "b"), leaveAll("s"), leaveAll("t"),
		},
	}
	run := func(a socket.Adapter, script []op) []string {
		var log, events []string
		for _, evt := range []types.EventName{"create-room", "join-room", "leave-room", "delete-room"} {
			_ = a.On(evt, func(args ...any) { events = append(events, fmt.Sprint(evt, args)) })
		}
		ids := map[socket.SocketId]bool{}
		for i, o := range script {
			ids[o.id] = true
			switch o.do {
			case "join":
				a.AddAll(o.id, types.NewSet(o.rooms...))
			case "leave":
				a.Del(o.id, o.rooms[0])
			default:
				a.DelAll(o.id)
			}
			var state []string
			for id := range ids {
				if rooms := a.SocketRooms(id); rooms != nil {
					keys := rooms.Keys()
					slices.Sort(keys)
					state = append(state, fmt.Sprint(id, keys))
				}
			}
			a.Rooms().Range(func(room socket.Room, members *types.Set[socket.SocketId]) bool {
				keys := members.Keys()
				slices.Sort(keys)
				state = append(state, fmt.Sprint(room, "=", keys))
				return true
			})
			slices.Sort(state)
			slices.Sort(events)
			log = append(log, fmt.Sprintf("step %d: %s; after: %s", i, strings.Join(events, " "), strings.Join(state, " ")))
			events = nil
		}
		return log
	}
	for name, script := range scripts {
		t.Run(name, func(t *testing.T) {
			want := run(socket.MakeAdapter(), script)
			got := run(newLocal(), script)
			if !slices.Equal(got, want) {
				t.Fatalf("Local:\n%s\nlibrary:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// A room of one socket keeps no set, and a socket's rooms are one slice:
// the index holds a socket in three rooms without a map per room.
func TestRoomIndexKeepsSingleRoomsInline(t *testing.T) {
	x := newRoomIndex()
	none := func(socket.SocketId) *socket.Socket { return nil }
	x.add("s1", []socket.Room{"s1", "dev:a", "user:u"}, none)
	x.add("s2", []socket.Room{"s2", "dev:b", "user:u"}, none)
	for room, want := range map[socket.Room]int{"s1": 1, "dev:a": 1, "user:u": 2, "nope": 0} {
		if n := x.size(room); n != want {
			t.Errorf("room %s has %d sockets, want %d", room, n, want)
		}
		if m, ok := x.members[room]; ok && want == 1 && m.more != nil {
			t.Errorf("room %s of one socket keeps a set", room)
		}
	}
	x.remove("s2", "", true)
	if m := x.members["user:u"]; m.more != nil || m.one != "s1" {
		t.Fatalf("user room after one of two left: %+v", m)
	}
	if x.hasSocket("s2") || !x.hasSocket("s1") || x.hasRoom("dev:b") {
		t.Fatal("s2 still indexed after leaving all its rooms")
	}
}

// A connected socket's index entry holds the socket itself, so a fan-out
// does not look each recipient up in the namespace; rooms joined during
// the handshake, before the socket is in its namespace, get it too.
func TestRoomIndexHoldsConnectedSockets(t *testing.T) {
	s := startLocal(t)
	s.io.Of("/", nil).Use(func(sock *socket.Socket, next func(*socket.ExtendedError)) {
		sock.Join("room:early") // as the gateway does, before the socket is in its namespace
		next(nil)
	})
	joinWS(t, s, "a", "room:x")
	sock := s.socket(t, "a")
	l, ok := s.io.Of("/", nil).Adapter().(*Local)
	if !ok {
		t.Fatalf("adapter %T", s.io.Of("/", nil).Adapter())
	}
	l.index.mu.RLock()
	e := l.index.sockets[sock.Id()]
	l.index.mu.RUnlock()
	if e == nil || e.sock != sock {
		t.Fatalf("index entry %+v, want the connected socket", e)
	}
	for _, room := range []socket.Room{"room:early", "room:x"} {
		var got []socket.SocketId
		l.each(&socket.BroadcastOptions{Rooms: types.NewSet(room)}, func(s *socket.Socket) { got = append(got, s.Id()) })
		if len(got) != 1 || got[0] != sock.Id() {
			t.Fatalf("%s fan-out reached %v", room, got)
		}
	}
}
