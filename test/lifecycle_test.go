package test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/state"
)

// heldStore holds the first presence heartbeat in the store until the test
// lets it go, to put a socket's close in the middle of handling an event.
type heldStore struct {
	state.Store
	p *heldPresence
}

func (s heldStore) Presence() state.Presence { return s.p }

type heldPresence struct {
	state.Presence
	once    sync.Once
	held    chan struct{}
	release chan struct{}
}

func (p *heldPresence) Heartbeat(ctx context.Context, c state.Conn, ttl time.Duration, now time.Time) (state.ConnResult, error) {
	first := false
	p.once.Do(func() { first = true })
	if first {
		close(p.held)
		<-p.release
	}
	return p.Presence.Heartbeat(ctx, c, ttl, now)
}

// A heartbeat still being handled when its socket goes away must not
// register the connection again after the disconnect cleanup removed it:
// the cleanup waits for the socket's active events. (Before, the cleanup ran
// at once and the late heartbeat left a live-looking connection in presence
// until its TTL, with no socket behind it.)
func TestHeartbeatRacingDisconnectLeavesNoPresence(t *testing.T) {
	p := &heldPresence{held: make(chan struct{}), release: make(chan struct{})}
	var store state.Store
	e := newEnv(t, func(o *node.Options) {
		p.Presence = o.Store.Presence()
		store = heldStore{Store: o.Store, p: p}
		o.Store = store
	})
	bob := e.member("bob", "phone")
	go func() { _, _ = bob.EmitTimeout("presence:heartbeat", nil, 5*time.Second) }()
	select {
	case <-p.held:
	case <-time.After(5 * time.Second):
		t.Fatal("the heartbeat never reached the store")
	}
	bob.Close()
	deadline := time.Now().Add(5 * time.Second)
	for e.Node.Gateway.Conns() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the node never saw the socket close")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(p.release)

	// The heartbeat completes, then the cleanup runs: no connection of bob
	// is left on this node.
	ctx := context.Background()
	deadline = time.Now().Add(5 * time.Second)
	for {
		conns, err := store.Presence().NodeConns(ctx, "e2e-node")
		if err != nil {
			t.Fatal(err)
		}
		if len(conns) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connections left in presence after the socket closed: %+v", conns)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// And it stays that way.
	time.Sleep(100 * time.Millisecond)
	if conns, _ := store.Presence().NodeConns(ctx, "e2e-node"); len(conns) != 0 {
		t.Fatalf("connections came back: %+v", conns)
	}
}

// A client that emits the moment it is connected (socket.io-client sends
// its buffered emits as soon as the CONNECT ack arrives; here the event
// even follows the CONNECT packet without waiting) has the event handled
// and acked: the node does not read it before the socket is attached. (The
// library otherwise takes it for a packet of a namespace the client never
// joined and closes the connection.)
func TestEventRightAfterConnect(t *testing.T) {
	e := newEnv(t)
	for i := range 20 {
		r := dialRaw(t, e.URL)
		tok, _ := json.Marshal(map[string]string{"token": token(t, "eager", fmt.Sprint("d", i), "")})
		r.send("40" + string(tok))
		r.send(`421["presence:heartbeat"]`)
		if f := r.next(3 * time.Second); !strings.HasPrefix(f, `40{"sid":`) {
			t.Fatalf("connection %d: CONNECT answered with %q", i, f)
		}
		if f := r.next(3 * time.Second); !strings.HasPrefix(f, `431[{`) || !strings.Contains(f, `"success":true`) {
			t.Fatalf("connection %d: heartbeat answered with %q", i, f)
		}
		_ = r.conn.Close()
	}
}
