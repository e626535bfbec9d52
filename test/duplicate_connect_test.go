package test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/internal/testclient"
)

// rawSocket is one Engine.IO v4 websocket driven frame by frame, so a test
// can send what a well-behaved client library would not.
type rawSocket struct {
	t    *testing.T
	conn *websocket.Conn
	// frames is every text frame received, in order, pings answered.
	frames chan string
}

func dialRaw(t *testing.T, url string) *rawSocket {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(url, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &rawSocket{t: t, conn: ws, frames: make(chan string, 1024)}
	t.Cleanup(func() { _ = ws.Close() })
	go func() {
		defer close(r.frames)
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if string(b) == "2" { // Engine.IO ping
				_ = ws.WriteMessage(websocket.TextMessage, []byte("3"))
				continue
			}
			r.frames <- string(b)
		}
	}()
	if f := r.next(2 * time.Second); !strings.HasPrefix(f, "0{") {
		t.Fatalf("no Engine.IO open packet: %q", f)
	}
	return r
}

func (r *rawSocket) send(frame string) {
	r.t.Helper()
	if err := r.conn.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		r.t.Fatal(err)
	}
}

// next returns the next frame, "" after timeout, "closed" when the
// connection is gone.
func (r *rawSocket) next(timeout time.Duration) string {
	select {
	case f, ok := <-r.frames:
		if !ok {
			return "closed"
		}
		return f
	case <-time.After(timeout):
		return ""
	}
}

// collect returns the frames received within d.
func (r *rawSocket) collect(d time.Duration) []string {
	var out []string
	deadline := time.Now().Add(d)
	for {
		f := r.next(time.Until(deadline))
		if f == "" {
			return out
		}
		out = append(out, f)
		if f == "closed" {
			return out
		}
	}
}

// TestDuplicateConnectKeepsConnection: a client that sends CONNECT twice
// for "/" on one connection (the socket.io Go client does, now and then)
// keeps a working connection that receives each broadcast once, gets its
// acks, and leaves cleanly when it disconnects the namespace.
func TestDuplicateConnectKeepsConnection(t *testing.T) {
	e := newEnv(t)
	bob := e.member("bob", "phone")
	auth, _ := json.Marshal(map[string]any{"token": token(t, "alice", "phone", "Alice")})
	// The library closes a connection whose second CONNECT arrives after
	// the first completed (as the Node server does); the case to test is
	// the one where both are accepted, so try until that happens.
	var raw *rawSocket
	for attempt := 0; raw == nil; attempt++ {
		if attempt == 20 {
			t.Fatal("the server never accepted both CONNECTs in 20 attempts")
		}
		r := dialRaw(t, e.URL)
		r.send("40" + string(auth))
		r.send("40" + string(auth))
		connects, closed := 0, false
		for _, f := range r.collect(time.Second) {
			if strings.HasPrefix(f, `40{"sid"`) {
				connects++
			}
			closed = closed || f == "closed"
		}
		if connects == 2 && !closed {
			raw = r
			break
		}
		_ = r.conn.Close()
		eventually(t, 3*time.Second, "failed attempt cleaned up", func() bool { return e.Node.Gateway.Conns() == 1 })
	}
	if n := e.Node.Gateway.Conns(); n != 2 { // bob and alice's kept socket
		t.Fatalf("node holds %d sockets, want 2", n)
	}

	// Events are handled and acked.
	raw.send(`421["presence:heartbeat"]`)
	// A broadcast reaches the connection once.
	carol := e.member("carol", "phone")
	var acks, announced int
	for _, f := range raw.collect(time.Second) {
		switch {
		case f == "closed":
			t.Fatal("connection closed")
		case strings.HasPrefix(f, `431[{"success":true`):
			acks++
		case strings.HasPrefix(f, `42["presence:user_connected"`) && strings.Contains(f, `"carol"`):
			announced++
		}
	}
	if acks != 1 || announced != 1 {
		t.Fatalf("heartbeat acks %d, carol announced %d times; want 1 and 1", acks, announced)
	}

	// The client leaves the namespace: the node lets go of alice entirely.
	raw.send("41")
	eventually(t, 3*time.Second, "alice's sockets released", func() bool { return e.Node.Gateway.Conns() == 2 }) // bob, carol
	e.runJobs(6 * time.Second)
	exactlyOnce(t, bob, "presence:user_disconnected", testclient.Field("user_id", "alice"))
	_ = carol
}
