package wstransport

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// testServer is a Socket.IO server of the library on 127.0.0.1 whose
// "websocket" transport is the given builder (ours or the library's).
type testServer struct {
	tb      testing.TB
	io      *socket.Server
	url     string // http://127.0.0.1:port
	srv     *http.Server
	builder *Builder // nil when the library's transport is used

	connected atomic.Int64
	sockets   sync.Map // engine sid -> *socket.Socket
	reasons   chan string
}

// startServer starts a server; tweak may change the options (ping interval
// one hour by default, so that no heartbeat interleaves with test frames).
func startServer(tb testing.TB, ctor transports.TransportCtor, tweak func(*socket.ServerOptions)) *testServer {
	tb.Helper()
	opts := socket.DefaultServerOptions()
	opts.SetPingInterval(time.Hour)
	opts.SetPingTimeout(time.Hour)
	opts.SetServeClient(false)
	opts.SetTransports(types.NewSet[socket.TransportCtor](socket.Polling, ctor))
	if tweak != nil {
		tweak(opts)
	}
	io := socket.NewServer(nil, opts)
	s := &testServer{tb: tb, io: io, reasons: make(chan string, 4096)}
	s.builder, _ = ctor.(*Builder)
	_ = io.On("connection", func(args ...any) {
		sock := args[0].(*socket.Socket)
		// Listen before publishing the socket: a test may disconnect it as
		// soon as it is counted.
		_ = sock.On("disconnect", func(args ...any) {
			s.sockets.Delete(sock.Conn().Id())
			s.connected.Add(-1)
			reason, _ := args[0].(string)
			select {
			case s.reasons <- reason:
			default:
			}
		})
		s.sockets.Store(sock.Conn().Id(), sock)
		s.connected.Add(1)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.url = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: io.ServeHandler(nil), ReadHeaderTimeout: 5 * time.Second}
	if s.builder != nil {
		s.builder.TakeHeartbeats(io.Engine())
	}
	go func() { _ = s.srv.Serve(ln) }()
	tb.Cleanup(func() {
		io.Close(nil)
		_ = s.srv.Close()
	})
	return s
}

// socketOf returns the server socket of the engine session sid.
func (s *testServer) socketOf(sid string) *socket.Socket {
	s.tb.Helper()
	v, ok := s.sockets.Load(sid)
	if !ok {
		s.tb.Fatalf("no server socket for session %s", sid)
	}
	return v.(*socket.Socket)
}

// waitSocket waits for the server socket of the engine session sid: the
// server publishes it a moment after the client saw its connect ack.
func (s *testServer) waitSocket(sid string) *socket.Socket {
	s.tb.Helper()
	waitFor(s.tb, 5*time.Second, "server socket "+sid, func() bool { _, ok := s.sockets.Load(sid); return ok })
	return s.socketOf(sid)
}

// engineClients is the number of Engine.IO sessions the server holds.
func (s *testServer) engineClients() uint64 { return s.io.Engine().ClientsCount() }

// builds is the number of broadcast frames our transport built so far.
func (s *testServer) builds() uint64 {
	if s.builder == nil {
		return 0
	}
	return s.builder.cache.builds()
}

// flushers is the number of flusher goroutines our transport started.
func (s *testServer) flushers() uint64 {
	if s.builder == nil {
		return 0
	}
	return s.builder.Stats().Flushers
}

// reason waits for the next disconnect reason on the server.
func (s *testServer) reason(timeout time.Duration) string {
	s.tb.Helper()
	select {
	case r := <-s.reasons:
		return r
	case <-time.After(timeout):
		s.tb.Fatal("no disconnect on the server")
		return ""
	}
}

// waitFor polls cond every 5ms until it holds or timeout passes.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rawClient is a WebSocket speaking Engine.IO / Socket.IO frames by hand.
type rawClient struct {
	tb  testing.TB
	c   *ws.Conn
	sid string
}

// dialRaw opens a WebSocket session (query: "EIO=4", "EIO=4&b64=1",
// "EIO=3") and connects the main namespace; it returns once the server
// acknowledged the namespace connection.
func dialRaw(tb testing.TB, base, query string) *rawClient {
	tb.Helper()
	c, err := dialRawErr(base, query)
	if err != nil {
		tb.Fatal(err)
	}
	c.tb = tb
	return c
}

func dialRawErr(base, query string) (*rawClient, error) {
	u := "ws" + strings.TrimPrefix(base, "http") + "/socket.io/?" + query + "&transport=websocket"
	d := ws.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, resp, err := d.Dial(u, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	c := &rawClient{c: conn}
	fail := func(err error) (*rawClient, error) { _ = conn.Close(); return nil, err }
	_, open, err := c.readErr()
	if err != nil {
		return fail(err)
	}
	if !strings.HasPrefix(string(open), "0{") {
		return fail(fmt.Errorf("open packet %q", open))
	}
	var hs struct{ Sid string }
	if err := json.Unmarshal(open[1:], &hs); err != nil {
		return fail(err)
	}
	c.sid = hs.Sid
	if !strings.Contains(query, "EIO=3") {
		// EIO 3 (Socket.IO v2) connects the main namespace by itself.
		if err := conn.WriteMessage(ws.TextMessage, []byte("40")); err != nil {
			return fail(err)
		}
	}
	_, ack, err := c.readErr()
	for err == nil && string(ack) == "2" { // a ping before the ack: answer it
		if err = conn.WriteMessage(ws.TextMessage, []byte("3")); err == nil {
			_, ack, err = c.readErr()
		}
	}
	if err != nil {
		return fail(err)
	}
	if !strings.HasPrefix(string(ack), "40") {
		return fail(fmt.Errorf("connect ack %q", ack))
	}
	return c, nil
}

func (c *rawClient) readErr() (int, []byte, error) {
	_ = c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	return c.c.ReadMessage()
}

// read returns the next message or fails the test.
func (c *rawClient) read() (int, []byte) {
	c.tb.Helper()
	mt, data, err := c.readErr()
	if err != nil {
		c.tb.Fatalf("client %s: %v", c.sid, err)
	}
	return mt, data
}

// expect reads the next message and checks its type and bytes.
func (c *rawClient) expect(mt int, want string) {
	c.tb.Helper()
	got, data := c.read()
	if got != mt || string(data) != want {
		c.tb.Fatalf("client %s got (%d) %q, want (%d) %q", c.sid, got, data, mt, want)
	}
}

// write sends a text frame.
func (c *rawClient) write(s string) {
	c.tb.Helper()
	if err := c.c.WriteMessage(ws.TextMessage, []byte(s)); err != nil {
		c.tb.Fatal(err)
	}
}

// closed waits until the server closed the connection: reads fail with
// anything but a timeout. Frames still in flight are skipped.
func (c *rawClient) closed() error {
	c.tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_ = c.c.SetReadDeadline(deadline)
		_, _, err := c.c.ReadMessage()
		if err == nil {
			continue
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			c.tb.Fatalf("client %s: the server did not close the connection", c.sid)
		}
		return err
	}
}

// dialMany connects n raw clients, 20 at a time.
func dialMany(tb testing.TB, s *testServer, n int, query string) []*rawClient {
	tb.Helper()
	out := make([]*rawClient, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 20)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dialRawErr(s.url, query)
			if err != nil {
				errs <- err
				return
			}
			c.tb = tb
			out[i] = c
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		for _, c := range out {
			_ = c.c.Close()
		}
	})
	waitFor(tb, 10*time.Second, fmt.Sprintf("%d server sockets", n), func() bool { return s.connected.Load() >= int64(n) })
	return out
}

// pollURL is the polling endpoint of s for session sid ("" for a handshake).
func pollURL(s *testServer, sid string) string {
	q := url.Values{"EIO": {"4"}, "transport": {"polling"}}
	if sid != "" {
		q.Set("sid", sid)
	}
	return s.url + "/socket.io/?" + q.Encode()
}

// upgradeFromPolling opens a polling session on s (raw protocol), connects
// the main namespace and upgrades the session to a websocket, whose client
// it returns once the server's engine socket runs on the websocket.
func upgradeFromPolling(tb testing.TB, s *testServer) *rawClient {
	tb.Helper()
	hc := &http.Client{Timeout: 5 * time.Second}
	get := func(u string) string {
		tb.Helper()
		resp, err := hc.Get(u)
		if err != nil {
			tb.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			tb.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
		}
		return string(b)
	}
	open := get(pollURL(s, ""))
	i := strings.Index(open, `"sid":"`)
	if !strings.HasPrefix(open, "0{") || i < 0 {
		tb.Fatalf("open %q", open)
	}
	sid := open[i+7:]
	sid = sid[:strings.IndexByte(sid, '"')]
	if !strings.Contains(open, `"upgrades":["websocket"]`) {
		tb.Fatalf("open %q does not offer the websocket upgrade", open)
	}
	resp, err := hc.Post(pollURL(s, sid), "text/plain;charset=UTF-8", strings.NewReader("40"))
	if err != nil {
		tb.Fatal(err)
	}
	_ = resp.Body.Close()
	if ack := get(pollURL(s, sid)); !strings.HasPrefix(ack, "40{") {
		tb.Fatalf("connect ack %q", ack)
	}
	s.waitSocket(sid)

	u := "ws" + strings.TrimPrefix(s.url, "http") + "/socket.io/?EIO=4&transport=websocket&sid=" + sid
	conn, wresp, err := ws.DefaultDialer.Dial(u, nil)
	if wresp != nil && wresp.Body != nil {
		_ = wresp.Body.Close()
	}
	if err != nil {
		tb.Fatal(err)
	}
	c := &rawClient{tb: tb, c: conn, sid: sid}
	tb.Cleanup(func() { _ = conn.Close() })
	c.write("2probe")
	c.expect(ws.TextMessage, "3probe")
	c.write("5")
	eng := s.socketOf(sid).Conn()
	waitFor(tb, 5*time.Second, "upgrade", func() bool { return eng.Upgraded() && eng.Transport().Name() == "websocket" })
	return c
}
