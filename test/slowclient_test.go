package test

import (
	"context"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/testclient"
)

// dialStalled connects a member over a raw websocket whose receive buffer
// is tiny, and returns it once its CONNECT is acked; the caller then stops
// reading, as a frozen tab or a dead network would.
func dialStalled(t *testing.T, url, tok string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		nd := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
			if err != nil {
				return err
			}
			return serr
		}}
		return nd.DialContext(ctx, network, addr)
	}}
	ws, _, err := d.Dial("ws"+strings.TrimPrefix(url, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	read := func() string {
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if open := read(); !strings.HasPrefix(open, "0{") {
		t.Fatalf("open packet %q", open)
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`40{"token":"`+tok+`"}`)); err != nil {
		t.Fatal(err)
	}
	if ack := read(); !strings.HasPrefix(ack, "40{") {
		t.Fatalf("connect answered %q", ack)
	}
	return ws
}

// A member whose client stops reading is cut off once the frames waiting
// for it pass the node's bound (SWITCHBOARD_WS_MAX_QUEUE_BYTES), and
// counted on /metrics; the others get every event and the node goes on.
func TestStalledClientIsCutOff(t *testing.T) {
	e := newEnv(t, func(o *node.Options) { o.WSMaxQueue = 64 << 10 })
	stalled := dialStalled(t, e.URL, token(t, "slow", "d1", "Slow"))
	alice := e.member("alice", "phone")
	bob := e.member("bob", "desk")
	p := meetingPayload("slow", "bob")
	p["description"] = strings.Repeat("d", 15<<10)

	created := 0
	deadline := time.Now().Add(30 * time.Second)
	for metricValue(t, e.URL, "switchboard_ws_slow_clients_total") < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("after %d meetings of 15 KiB the stalled client is still connected", created)
		}
		if createPaced(t, alice, p) {
			created++
		}
	}
	t.Logf("cut off after %d meetings of 15 KiB", created)

	// The stalled connection was closed: what it had received is there to
	// read, then the end.
	_ = stalled.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := stalled.ReadMessage(); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the stalled connection is still open")
			}
			break
		}
	}
	// Everyone else got everything, and the node still serves.
	for tries := 1; !createPaced(t, alice, meetingPayload("bob")); tries++ {
		if tries == 50 {
			t.Fatal("meeting:create still rate limited after 5 s")
		}
	}
	waitCount(t, bob, "meeting:created", created+1)
}

// createPaced sends meeting:create as fast as the node's event rate limit
// allows: it reports whether the meeting was created, and after a
// rate_limited answer waits a little and reports false.
func createPaced(t *testing.T, c *testclient.Client, p map[string]any) bool {
	t.Helper()
	a := emit(t, c, "meeting:create", p)
	if a.OK() {
		return true
	}
	if a.Code() != "rate_limited" {
		t.Fatalf("meeting:create: %v", a)
	}
	time.Sleep(100 * time.Millisecond)
	return false
}

// waitCount waits until c has received n events called name.
func waitCount(t *testing.T, c *testclient.Client, name string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.Count(name, nil) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d %s received, want %d", c.Count(name, nil), name, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
