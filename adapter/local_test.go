package adapter

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/switchboard/switchboard/internal/wstransport"
)

// localServer is a socket.io server on 127.0.0.1 with the Local adapter and
// our websocket transport, as a node without Redis runs. A client names
// itself and its rooms in its CONNECT auth: {"name": ..., "rooms": [...]}.
type localServer struct {
	io      *socket.Server
	ws      *wstransport.Builder
	host    string
	sockets sync.Map // name -> *socket.Socket
}

func startLocal(t *testing.T) *localServer {
	t.Helper()
	s := &localServer{ws: wstransport.NewBuilder()}
	s.ws.MaxQueue = 64 << 20 // tests fill the queues on purpose
	opts := socket.DefaultServerOptions()
	opts.SetAdapter(LocalBuilder{})
	opts.SetTransports(types.NewSet[socket.TransportCtor](socket.Polling, s.ws))
	opts.SetPingInterval(time.Hour)
	opts.SetPingTimeout(time.Hour)
	s.io = socket.NewServer(nil, opts)
	_ = s.io.On("connection", func(args ...any) {
		sock := args[0].(*socket.Socket)
		auth := sock.Handshake().Auth
		rooms, _ := auth["rooms"].([]any)
		for _, r := range rooms {
			sock.Join(socket.Room(r.(string)))
		}
		name, _ := auth["name"].(string)
		s.sockets.Store(name, sock)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.host = ln.Addr().String()
	srv := &http.Server{Handler: s.io.ServeHandler(nil), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		s.io.Close(nil)
		_ = srv.Close()
	})
	return s
}

// socket waits for the server socket of the client called name.
func (s *localServer) socket(t *testing.T, name string) *socket.Socket {
	t.Helper()
	waitFor(t, 5*time.Second, "server socket "+name, func() bool { _, ok := s.sockets.Load(name); return ok })
	v, _ := s.sockets.Load(name)
	return v.(*socket.Socket)
}

// connectAuth is the Socket.IO CONNECT packet of a client named name in rooms.
func connectAuth(name string, rooms ...string) string {
	auth, _ := json.Marshal(map[string]any{"name": name, "rooms": rooms})
	return "40" + string(auth)
}

// wsClient is a raw Engine.IO/Socket.IO client over a websocket.
type wsClient struct {
	t *testing.T
	c *ws.Conn
}

// dialWS opens a websocket to s (query is appended to the Engine.IO query)
// and reads the open packet; sid returns its session id.
func dialWS(t *testing.T, s *localServer, query string) (*wsClient, string) {
	t.Helper()
	c, _, err := ws.DefaultDialer.Dial("ws://"+s.host+"/socket.io/?EIO=4&transport=websocket"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	w := &wsClient{t: t, c: c}
	if query != "" {
		return w, "" // an upgrade: no open packet
	}
	open := w.next()
	var hs struct{ Sid string }
	if !strings.HasPrefix(open, "0") || json.Unmarshal([]byte(open[1:]), &hs) != nil {
		t.Fatalf("open packet %q", open)
	}
	return w, hs.Sid
}

// joinWS connects a websocket client named name to rooms.
func joinWS(t *testing.T, s *localServer, name string, rooms ...string) *wsClient {
	w, _ := dialWS(t, s, "")
	w.send(connectAuth(name, rooms...))
	if ack := w.next(); !strings.HasPrefix(ack, "40") {
		t.Fatalf("%s: connect answered %q", name, ack)
	}
	s.socket(t, name)
	return w
}

func (w *wsClient) send(msg string) {
	w.t.Helper()
	if err := w.c.WriteMessage(ws.TextMessage, []byte(msg)); err != nil {
		w.t.Fatal(err)
	}
}

// next returns the next text message.
func (w *wsClient) next() string {
	w.t.Helper()
	_ = w.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := w.c.ReadMessage()
	if err != nil {
		w.t.Fatal(err)
	}
	return string(data)
}

// tagsUntil reads `42["m",tag]` events up to the tag stop and returns the
// tags before it.
func (w *wsClient) tagsUntil(stop string) []string {
	w.t.Helper()
	var tags []string
	for {
		tag := eventTag(w.t, w.next())
		if tag == stop {
			return tags
		}
		tags = append(tags, tag)
	}
}

// eventTag returns tag of the message 42["m",tag].
func eventTag(t *testing.T, msg string) string {
	t.Helper()
	var ev []string
	if !strings.HasPrefix(msg, "42") || json.Unmarshal([]byte(msg[2:]), &ev) != nil || len(ev) < 2 || ev[0] != "m" {
		t.Fatalf("unexpected message %.80q", msg)
	}
	return ev[1]
}

// Local sends a broadcast to exactly the sockets the library's adapter
// would: the members of the rooms, each once, or everyone, minus the
// members of the excepted rooms.
func TestLocalSelectsRecipients(t *testing.T) {
	s := startLocal(t)
	clients := map[string]*wsClient{
		"a": joinWS(t, s, "a", "r1"),
		"b": joinWS(t, s, "b", "r1", "r2"),
		"c": joinWS(t, s, "c", "r2"),
		"d": joinWS(t, s, "d"),
	}
	cases := []struct {
		name   string
		op     func() *socket.BroadcastOperator
		expect []string
	}{
		{"one room", func() *socket.BroadcastOperator { return s.io.To("r1") }, []string{"a", "b"}},
		{"two rooms, each socket once", func() *socket.BroadcastOperator { return s.io.To("r1", "r2") }, []string{"a", "b", "c"}},
		{"everyone", func() *socket.BroadcastOperator { return s.io.Local() }, []string{"a", "b", "c", "d"}},
		{"room except room", func() *socket.BroadcastOperator { return s.io.To("r1").Except("r2") }, []string{"a"}},
		{"everyone except room", func() *socket.BroadcastOperator { return s.io.Except("r1") }, []string{"c", "d"}},
		{"a socket's own room", func() *socket.BroadcastOperator {
			return s.io.To(socket.Room(s.socket(t, "c").Id()))
		}, []string{"c"}},
		{"room nobody is in", func() *socket.BroadcastOperator { return s.io.To("nobody") }, nil},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tag, stop := fmt.Sprint("t", i), fmt.Sprint("stop", i)
			_ = tc.op().Emit("m", tag)
			_ = s.io.Emit("m", stop)
			var got []string
			for name, c := range clients {
				tags := c.tagsUntil(stop)
				switch {
				case len(tags) == 1 && tags[0] == tag:
					got = append(got, name)
				case len(tags) > 0:
					t.Errorf("%s got %v", name, tags)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.expect) {
				t.Fatalf("delivered to %v, want %v", got, tc.expect)
			}
		})
	}
	if s.ws.Stats().Direct == 0 {
		t.Fatal("no broadcast went through the transport's direct path")
	}
}

// Events the gateway emits to one socket and broadcasts to its rooms,
// interleaved by one goroutine, reach the client in the order emitted,
// also while the client reads too slowly and frames queue in the
// transport; the broadcasts took the direct path.
func TestLocalBroadcastKeepsOrderWithSocketEmits(t *testing.T) {
	s := startLocal(t)
	c := joinWS(t, s, "a", "r")
	sock := s.socket(t, "a")
	pad := strings.Repeat("p", 32<<10)
	const n = 400 // 25 MiB: more than the loopback buffers hold
	direct := s.ws.Stats().Direct
	go func() {
		for i := range n {
			_ = sock.Emit("m", fmt.Sprint(2*i), pad)
			_ = s.io.To("r").Emit("m", fmt.Sprint(2*i+1), pad)
		}
		_ = sock.Emit("m", "end")
	}()
	time.Sleep(200 * time.Millisecond) // let the socket buffer fill
	tags := c.tagsUntil("end")
	if len(tags) != 2*n {
		t.Fatalf("got %d events, want %d", len(tags), 2*n)
	}
	for i, tag := range tags {
		if tag != fmt.Sprint(i) {
			t.Fatalf("event %d is %s: out of order", i, tag)
		}
	}
	if d := s.ws.Stats().Direct - direct; d != n {
		t.Fatalf("%d broadcasts took the direct path, want %d", d, n)
	}
	if s.ws.Stats().Flushers == 0 {
		t.Fatal("the socket buffer never filled: the queued path was not exercised")
	}
}

// pollClient is a raw Engine.IO long-polling client.
type pollClient struct {
	t   *testing.T
	url string
}

// openPolling opens a long-polling session and returns it with its sid.
func openPolling(t *testing.T, s *localServer) (*pollClient, string) {
	t.Helper()
	p := &pollClient{t: t, url: "http://" + s.host + "/socket.io/?EIO=4&transport=polling"}
	open := p.get()
	var hs struct{ Sid string }
	if len(open) != 1 || !strings.HasPrefix(open[0], "0") || json.Unmarshal([]byte(open[0][1:]), &hs) != nil {
		t.Fatalf("open packet %q", open)
	}
	p.url += "&sid=" + hs.Sid
	return p, hs.Sid
}

// get long-polls once and returns the packets.
func (p *pollClient) get() []string {
	p.t.Helper()
	res, err := (&http.Client{Timeout: 10 * time.Second}).Get(p.url)
	if err != nil {
		p.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		p.t.Fatalf("poll: %s %s", res.Status, body)
	}
	return strings.Split(string(body), "\x1e")
}

func (p *pollClient) post(msg string) {
	p.t.Helper()
	res, err := http.Post(p.url, "text/plain", strings.NewReader(msg))
	if err != nil {
		p.t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		p.t.Fatalf("post: %s", res.Status)
	}
}

// A client on long polling gets broadcasts through the engine, and keeps
// getting them, in order with the events emitted to its socket, when it
// upgrades to a websocket: packets the engine held during the upgrade go
// out before any broadcast the transport writes directly.
func TestLocalBroadcastAcrossUpgrade(t *testing.T) {
	s := startLocal(t)
	p, sid := openPolling(t, s)
	p.post(connectAuth("a", "r"))
	if ack := p.get(); len(ack) != 1 || !strings.HasPrefix(ack[0], "40") {
		t.Fatalf("connect answered %q", ack)
	}
	sock := s.socket(t, "a")

	_ = s.io.To("r").Emit("m", "polled")
	if got := p.get(); len(got) != 1 || eventTag(t, got[0]) != "polled" {
		t.Fatalf("polling got %q", got)
	}

	// Probe a websocket; until the upgrade completes the engine keeps
	// what is sent to the session.
	w, _ := dialWS(t, s, "&sid="+sid)
	w.send("2probe")
	if pong := w.next(); pong != "3probe" {
		t.Fatalf("probe answered %q", pong)
	}
	direct := s.ws.Stats().Direct
	emitPair := func(i int) {
		_ = sock.Emit("m", fmt.Sprint(2*i))
		_ = s.io.To("r").Emit("m", fmt.Sprint(2*i+1))
	}
	emitPair(0)
	// The engine may have answered a pending long poll with a noop meanwhile;
	// nothing else may go to polling once the probe succeeded.
	w.send("5")
	for i := 1; i < 25; i++ { // racing the upgrade
		emitPair(i)
	}
	waitFor(t, 5*time.Second, "upgrade", func() bool { return sock.Conn().Transport().Name() == "websocket" })
	for i := 25; i < 50; i++ {
		emitPair(i)
	}
	_ = sock.Emit("m", "end")
	tags := w.tagsUntil("end")
	for i, tag := range tags {
		if tag != fmt.Sprint(i) {
			t.Fatalf("websocket event %d is %s (all: %v)", i, tag, tags)
		}
	}
	if len(tags) != 100 {
		t.Fatalf("websocket got %d events, want 100: %v", len(tags), tags)
	}
	if s.ws.Stats().Direct == direct {
		t.Fatal("no broadcast took the direct path after the upgrade")
	}
}

// A broadcast to fewer than laterFrom sockets is written by the
// broadcasting goroutine; a larger one by the transport's outbox, and both
// reach every recipient.
func TestLocalDefersOnlyLargeFanOuts(t *testing.T) {
	s := startLocal(t)
	small := joinWS(t, s, "small", "few")
	var big []*wsClient
	for i := range laterFrom {
		big = append(big, joinWS(t, s, fmt.Sprint("big", i), "many"))
	}
	before := s.ws.Stats()
	_ = s.io.To("few").Emit("m", "done")
	if tags := small.tagsUntil("done"); len(tags) != 0 {
		t.Fatalf("small room got %v before its broadcast", tags)
	}
	mid := s.ws.Stats()
	if mid.Direct != before.Direct+1 || mid.OutboxWrites != before.OutboxWrites {
		t.Fatalf("fan-out to 1: direct %d -> %d, outbox writes %d -> %d; want one direct frame written at once",
			before.Direct, mid.Direct, before.OutboxWrites, mid.OutboxWrites)
	}
	_ = s.io.To("many").Emit("m", "done")
	for _, c := range big {
		if tags := c.tagsUntil("done"); len(tags) != 0 {
			t.Fatalf("big room got %v before its broadcast", tags)
		}
	}
	after := s.ws.Stats()
	if after.Direct != mid.Direct+laterFrom || after.OutboxWrites != mid.OutboxWrites+laterFrom {
		t.Fatalf("fan-out to %d: direct %d -> %d, outbox writes %d -> %d; want every frame direct, one outbox write each",
			laterFrom, mid.Direct, after.Direct, mid.OutboxWrites, after.OutboxWrites)
	}
}
