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

// TestDuplicateConnectClosesConnection: a client that sends CONNECT twice
// for "/" on one connection gets its first CONNECT answered and then its
// connection closed, as the Node server does with a CONNECT for a namespace
// the connection already joined (the node reads the second one only once
// the first socket is attached; see Gateway.awaitAttach). The node lets go
// of everything: one socket held and released, the user announced online
// and then offline once, the node unharmed.
func TestDuplicateConnectClosesConnection(t *testing.T) {
	e := newEnv(t)
	bob := e.member("bob", "phone")
	auth, _ := json.Marshal(map[string]any{"token": token(t, "alice", "phone", "Alice")})
	for i := range 5 {
		r := dialRaw(t, e.URL)
		r.send("40" + string(auth))
		r.send("40" + string(auth))
		frames := r.collect(2 * time.Second)
		connects := 0
		for _, f := range frames {
			if strings.HasPrefix(f, `40{"sid"`) {
				connects++
			}
		}
		if connects != 1 || len(frames) == 0 || frames[len(frames)-1] != "closed" {
			t.Fatalf("attempt %d: frames %q; want one CONNECT ack, then the connection closed", i, frames)
		}
		eventually(t, 3*time.Second, "alice's socket released", func() bool { return e.Node.Gateway.Conns() == 1 })
	}
	e.runJobs(6 * time.Second)
	exactlyOnce(t, bob, "presence:user_disconnected", testclient.Field("user_id", "alice"))

	// The node still serves.
	carol := e.member("carol", "phone")
	mustOK(t, emit(t, carol, "presence:heartbeat", nil))
}
