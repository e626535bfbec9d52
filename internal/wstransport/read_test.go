package wstransport

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"
)

// readers are the two ways a transport reads: through the Builder's poller
// and with a goroutine per connection (what a connection that is not TCP,
// or any connection off Linux, gets). The read tests run with both.
func readers() map[string]func() *Builder {
	return map[string]func() *Builder{
		"poller":    NewBuilder,
		"goroutine": func() *Builder { b := NewBuilder(); b.poll = nil; return b },
	}
}

// writeRaw writes bytes to the client's TCP connection under its WebSocket,
// bypassing gorilla's framing.
func (c *rawClient) writeRaw(b []byte) {
	c.tb.Helper()
	if _, err := c.c.UnderlyingConn().Write(b); err != nil {
		c.tb.Fatal(err)
	}
}

// closeCode reads until the server's close frame and returns its code.
func (c *rawClient) closeCode() int {
	c.tb.Helper()
	err := c.closed()
	var ce *ws.CloseError
	if !errors.As(err, &ce) {
		c.tb.Fatalf("connection ended with %v, not a close frame", err)
	}
	return ce.Code
}

// Frames cut anywhere by the network, fragmented messages and control
// frames between fragments all reach the engine as whole messages, in
// order, and pings between them are answered.
func TestMessagesInPieces(t *testing.T) {
	for name, builder := range readers() {
		t.Run(name, func(t *testing.T) { testMessagesInPieces(t, builder()) })
	}
}

func testMessagesInPieces(t *testing.T, b *Builder) {
	s := startServer(t, b, nil)
	c := dialRaw(t, s.url, "EIO=4")
	sock := s.waitSocket(c.sid)
	_ = sock.On("echo", func(args ...any) { sock.Emit("echoed", args...) })
	pongs := make(chan string, 4)
	c.c.SetPongHandler(func(data string) error { pongs <- data; return nil })

	long := strings.Repeat("x", 70_000) // a 64-bit length, several reads
	stream := concat(
		frame(opText, `42["echo",1]`),
		fragment(false, opText, `42["ec`),
		frame(opPing, "between"),
		fragment(false, opContinuation, `ho",`),
		fragment(true, opContinuation, `2]`),
		frame(opText, `42["echo","`+long+`"]`),
	)
	// Byte by byte for the first frames, then in uneven pieces, each write
	// a separate TCP segment read on its own.
	for i := 0; i < len(stream); {
		n := 1
		if i > 60 {
			n = 997
		}
		n = min(n, len(stream)-i)
		c.writeRaw(stream[i : i+n])
		i += n
		if i < 80 {
			time.Sleep(time.Millisecond)
		}
	}
	c.expect(ws.TextMessage, `42["echoed",1]`)
	c.expect(ws.TextMessage, `42["echoed",2]`)
	c.expect(ws.TextMessage, `42["echoed","`+long+`"]`)
	select {
	case p := <-pongs:
		if p != "between" {
			t.Fatalf("pong %q", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the ping between fragments was not answered")
	}
}

// A client that breaks the protocol or sends a message over MaxMessage gets
// a close frame with the matching code and is disconnected with a
// transport error; the other clients are not affected.
func TestBadFramesCloseTheConnection(t *testing.T) {
	for name, builder := range readers() {
		t.Run(name, func(t *testing.T) { testBadFramesCloseTheConnection(t, builder) })
	}
}

func testBadFramesCloseTheConnection(t *testing.T, builder func() *Builder) {
	unmasked := frame(opText, `42["echo",1]`)
	unmasked[1] &^= 0x80
	for _, tc := range []struct {
		name  string
		bytes []byte
		code  int
	}{
		{"unmasked frame", unmasked, ws.CloseProtocolError},
		{"compressed frame", append([]byte{0xC1}, frame(opText, "x")[1:]...), ws.CloseProtocolError},
		{"unknown opcode", frame(0x5, "x"), ws.CloseProtocolError},
		{"message over the limit", frame(opText, `42["echo","`+strings.Repeat("y", 2000)+`"]`), ws.CloseMessageTooBig},
		{"fragments over the limit", concat(fragment(false, opText, strings.Repeat("y", 900)), fragment(true, opContinuation, strings.Repeat("y", 200))), ws.CloseMessageTooBig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := builder()
			b.MaxMessage = 1000
			s := startServer(t, b, nil)
			clients := dialMany(t, s, 2, "EIO=4")
			bad, good := clients[0], clients[1]
			bad.writeRaw(tc.bytes)
			if code := bad.closeCode(); code != tc.code {
				t.Fatalf("close code %d, want %d", code, tc.code)
			}
			if r := s.reason(5 * time.Second); r != "transport error" {
				t.Fatalf("disconnect reason %q, want transport error", r)
			}
			sock := s.waitSocket(good.sid)
			_ = sock.On("echo", func(args ...any) { sock.Emit("echoed", args...) })
			good.write(`42["echo","` + strings.Repeat("z", 900) + `"]`)
			good.expect(ws.TextMessage, `42["echoed","`+strings.Repeat("z", 900)+`"]`)
		})
	}
}

// Idle connections are read without a goroutine each: connecting clients
// adds only the library's own goroutine per connection (its heartbeat
// timer), where a reader goroutine per connection would add two. And the
// upgrade's gorilla connection, unused, is let go.
func TestIdleConnectionsHaveNoReader(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the poller is epoll: on other systems each connection has a reader goroutine")
	}
	s := startServer(t, ours(), nil)
	dialMany(t, s, 1, "EIO=4") // start what starts once
	time.Sleep(50 * time.Millisecond)
	before := runtime.NumGoroutine()
	const n = 200
	clients := dialMany(t, s, n, "EIO=4")
	var added int
	waitFor(t, 5*time.Second, "dial goroutines gone", func() bool {
		added = runtime.NumGoroutine() - before
		return added < n*3/2
	})
	t.Logf("%d connections added %d goroutines", n, added)
	// They are all read: each one's message reaches the server.
	got := make(chan string, n)
	for _, c := range clients {
		sock := s.waitSocket(c.sid)
		_ = sock.On("hello", func(args ...any) { got <- fmt.Sprint(args...) })
		// Nor do they keep the gorilla connection of the upgrade.
		tr, ok := sock.Conn().Transport().(*Transport)
		if !ok {
			t.Fatalf("transport %T", sock.Conn().Transport())
		}
		if tr.conn.Conn != nil {
			t.Fatal("the transport keeps the library's gorilla connection")
		}
	}
	for i, c := range clients {
		c.write(fmt.Sprintf(`42["hello",%d]`, i))
	}
	seen := map[string]bool{}
	for range n {
		select {
		case v := <-got:
			seen[v] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of %d messages arrived", len(seen), n)
		}
	}
	if len(seen) != n {
		t.Fatalf("%d distinct messages, want %d", len(seen), n)
	}
}

// The client's connection is reset by the peer while registered: the
// transport closes and the poller forgets it.
func TestPollerForgetsClosedConnections(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("epoll only")
	}
	b := NewBuilder()
	s := startServer(t, b, nil)
	clients := dialMany(t, s, 20, "EIO=4")
	for _, c := range clients {
		if tcp, ok := c.c.UnderlyingConn().(*net.TCPConn); ok {
			_ = tcp.SetLinger(0) // close with a reset
		}
		_ = c.c.UnderlyingConn().Close()
	}
	waitFor(t, 5*time.Second, "no engine sessions", func() bool { return s.engineClients() == 0 })
	waitFor(t, 5*time.Second, "poller empty and stopped", func() bool {
		conns, running := b.poll.state()
		return conns == 0 && !running
	})
}

// A client that sends a message and closes at once (its last data and its
// FIN arrive together) is closed by the server then, not at the idle
// timeout: the end of the stream is read even though it came with data.
func TestDataThenCloseIsSeen(t *testing.T) {
	for name, builder := range readers() {
		t.Run(name, func(t *testing.T) { testDataThenCloseIsSeen(t, builder()) })
	}
}

func testDataThenCloseIsSeen(t *testing.T, b *Builder) {
	s := startServer(t, b, nil)
	clients := dialMany(t, s, 20, "EIO=4")
	for _, c := range clients {
		tcp := c.c.UnderlyingConn().(*net.TCPConn)
		_, _ = tcp.Write(frame(opText, `42["bye"]`))
		_ = tcp.Close()
	}
	waitFor(t, 5*time.Second, "every session closed", func() bool { return s.engineClients() == 0 })
}
