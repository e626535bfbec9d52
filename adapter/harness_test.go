package adapter

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	csio "github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/switchboard/switchboard/internal/wstransport"
)

// node is one socket.io server on 127.0.0.1 with our adapter.
type node struct {
	t   testing.TB
	io  *socket.Server
	b   *Builder
	url string
	srv *http.Server
}

// testConfig returns a Config with short timings for tests.
func testConfig(c goredis.UniversalClient) Config {
	return Config{
		Client:         c,
		RequestTimeout: 2 * time.Second,
		ProbeInterval:  500 * time.Millisecond,
		ProbeTimeout:   250 * time.Millisecond,
		Logger:         zerolog.New(zerolog.NewTestWriter(nil)).Level(zerolog.Disabled),
	}
}

// startNode starts a socket.io server whose sockets understand:
// "join" (rooms []string, ack): join the rooms, wait until the
// subscriptions are in Redis, then ack; "leave" likewise.
func startNode(t testing.TB, cfg Config) *node {
	t.Helper()
	b := New(cfg)
	opts := socket.DefaultServerOptions()
	opts.SetAdapter(b)
	// The websocket transport production nodes use (internal/node).
	opts.SetTransports(types.NewSet[socket.TransportCtor](socket.Polling, wstransport.NewBuilder()))
	io := socket.NewServer(nil, opts)
	n := &node{t: t, io: io, b: b}
	_ = io.On("connection", func(args ...any) {
		s := args[0].(*socket.Socket)
		// v3.0.6 sends CONNECT before it can route the socket's packets:
		// a packet sent on "connect" may be refused. Clients wait for this.
		defer func() { _ = s.Emit("ready") }()
		for _, ev := range []string{"join", "leave"} {
			_ = s.On(ev, func(args ...any) {
				ack, _ := args[len(args)-1].(socket.Ack)
				rooms, _ := args[0].([]any)
				for _, r := range rooms {
					if ev == "join" {
						s.Join(socket.Room(r.(string)))
					} else {
						s.Leave(socket.Room(r.(string)))
					}
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				err := b.Flush(ctx)
				// A client that sent CONNECT twice may own two sockets on
				// one connection: it would get every broadcast twice.
				same := 0
				io.Sockets().Sockets().Range(func(_ socket.SocketId, o *socket.Socket) bool {
					if o.Conn().Id() == s.Conn().Id() {
						same++
					}
					return true
				})
				if err == nil && same > 1 {
					err = fmt.Errorf("%d sockets on one connection", same)
				}
				if ack != nil {
					ack([]any{s.Id(), errString(err)}, nil)
				}
			})
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.url = "http://" + ln.Addr().String()
	n.srv = &http.Server{Handler: io.ServeHandler(nil), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = n.srv.Serve(ln) }()
	t.Cleanup(n.stop)
	waitFor(t, 5*time.Second, "adapter healthy", b.Healthy)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

// stop closes the server and its adapter (idempotent).
func (n *node) stop() {
	n.io.Close(nil)
	_ = n.srv.Close()
	_ = n.b.Close()
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// client is a socket.io client that records the tags of "msg" events.
type client struct {
	name string
	s    *csio.Socket
	id   string

	mu   sync.Mutex
	got  map[string]int
	disc chan struct{}
}

// connect connects a websocket client to n and joins rooms. The v3.0.6
// client has start-up races (an "open" listener registered after the
// transport opened, CONNECT sent twice, a stale connect timer): an attempt that does not open, does not get the
// server's "ready" within 2 s, or whose join fails is abandoned and
// retried, at most 4 times.
func connect(t testing.TB, n *node, name string, rooms ...string) *client {
	t.Helper()
	for attempt := 1; ; attempt++ {
		c, err := tryConnect(t, n, name)
		if err == nil {
			if c.id, err = c.tryEmitAck("join", rooms); err == nil {
				return c
			}
			c.s.Disconnect()
		}
		if attempt == 4 {
			t.Fatalf("client %s: %v", name, err)
		}
		t.Logf("client %s: attempt %d: %v", name, attempt, err)
	}
}

func tryConnect(t testing.TB, n *node, name string) (*client, error) {
	opts := csio.DefaultOptions()
	opts.SetTransports(types.NewSet(csio.WebSocket))
	opts.SetReconnection(false)
	opts.SetForceNew(true)
	// The library's connect timer is armed before its cancellation is
	// registered; if the transport opens in between, the timer later closes
	// a connected client without a disconnect event. Set it beyond any
	// test: the waits below time the connect.
	opts.SetTimeout(time.Hour)
	opts.SetAutoConnect(false)
	c := &client{name: name, got: map[string]int{}, disc: make(chan struct{})}
	// Open the transport first, then connect the socket on it: connecting
	// a socket while its manager opens may send CONNECT twice.
	m := csio.NewManager(n.url, opts)
	opened := make(chan error, 1)
	m.Open(func(err error) { opened <- err })
	select {
	case err := <-opened:
		if err != nil {
			return nil, err
		}
	case <-time.After(2 * time.Second):
		m.Engine().Close()
		return nil, fmt.Errorf("transport to %s did not open", n.url)
	}
	s := m.Socket("/", opts)
	c.s = s
	ready := make(chan struct{}, 1)
	_ = s.On("ready", func(...any) {
		select {
		case ready <- struct{}{}:
		default:
		}
	})
	var once sync.Once
	_ = s.On("disconnect", func(args ...any) { once.Do(func() { close(c.disc) }) })
	_ = s.On("msg", func(args ...any) {
		if len(args) == 0 {
			return
		}
		tag, _ := args[0].(string)
		c.mu.Lock()
		c.got[tag]++
		c.mu.Unlock()
	})
	s.Connect()
	select {
	case <-ready:
		t.Cleanup(func() { s.Disconnect() })
		return c, nil
	case <-c.disc:
	case <-time.After(2 * time.Second):
	}
	s.Disconnect()
	return nil, fmt.Errorf("no ready event from %s", n.url)
}

// emitAck emits ev(rooms) and waits for the server's ack; it returns the
// socket id the server reports.
func (c *client) emitAck(t testing.TB, ev string, rooms []string) string {
	t.Helper()
	id, err := c.tryEmitAck(ev, rooms)
	if err != nil {
		t.Fatalf("client %s: %v", c.name, err)
	}
	return id
}

func (c *client) tryEmitAck(ev string, rooms []string) (string, error) {
	type reply struct {
		args []any
		err  error
	}
	done := make(chan reply, 1)
	list := make([]any, len(rooms))
	for i, r := range rooms {
		list[i] = r
	}
	if err := c.s.Emit(ev, list, func(args []any, err error) { done <- reply{args, err} }); err != nil {
		return "", err
	}
	select {
	case r := <-done:
		args := r.args
		if len(args) != 2 {
			return "", fmt.Errorf("%s ack: %v, %v", ev, args, r.err)
		}
		if e, _ := args[1].(string); e != "" {
			return "", fmt.Errorf("%s: flush: %s", ev, e)
		}
		id, _ := args[0].(string)
		return id, nil
	case <-time.After(5 * time.Second):
		return "", fmt.Errorf("no ack for %s", ev)
	}
}

func (c *client) count(tag string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got[tag]
}

// expectation says which clients must get tag exactly once; every other
// client must not get it.
type expectation struct {
	tag string
	to  []*client
}

// checkDelivery waits (bounded) until every expected delivery arrived,
// then a little longer for strays and duplicates, and reports both.
func checkDelivery(t testing.TB, all []*client, exps ...expectation) {
	t.Helper()
	complete := func() bool {
		for _, e := range exps {
			for _, c := range e.to {
				if c.count(e.tag) < 1 {
					return false
				}
			}
		}
		return true
	}
	deadline := time.Now().Add(5 * time.Second)
	for !complete() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(250 * time.Millisecond) // strays and duplicates
	for _, e := range exps {
		for _, c := range all {
			want := 0
			if slices.Contains(e.to, c) {
				want = 1
			}
			if got := c.count(e.tag); got != want {
				t.Errorf("%s: client %s got %d, want %d", e.tag, c.name, got, want)
			}
		}
	}
}

// waitFor polls cond every 10 ms for at most d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// proxy is a TCP proxy on 127.0.0.1 that can freeze the connections it
// carries: a frozen connection stays open but forwards nothing, like a
// pub/sub connection after a silent failover.
type proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	frozen bool
	conns  []*proxyConn
}

type proxyConn struct {
	mu     sync.Mutex
	frozen bool
	a, b   net.Conn
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			_ = c.a.Close()
			_ = c.b.Close()
		}
	})
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		a, err := p.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			_ = a.Close()
			continue
		}
		pc := &proxyConn{a: a, b: b}
		p.mu.Lock()
		p.conns = append(p.conns, pc)
		p.mu.Unlock()
		go pc.pipe(a, b)
		go pc.pipe(b, a)
	}
}

// pipe copies src to dst, discarding while frozen.
func (pc *proxyConn) pipe(src, dst net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			pc.mu.Lock()
			frozen := pc.frozen
			pc.mu.Unlock()
			if !frozen {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			_ = dst.Close()
			return
		}
	}
}

// freezeAll freezes every connection open now; new ones work.
func (p *proxy) freezeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.mu.Lock()
		c.frozen = true
		c.mu.Unlock()
	}
}

// numsub returns PUBSUB NUMSUB of one channel.
func numsub(t testing.TB, c goredis.UniversalClient, ch string) int64 {
	t.Helper()
	m, err := c.PubSubNumSub(context.Background(), ch).Result()
	if err != nil {
		t.Fatal(err)
	}
	return m[ch]
}

func fetchSockets(t testing.TB, n *node, rooms ...socket.Room) ([]*socket.RemoteSocket, error, time.Duration) {
	t.Helper()
	type res struct {
		s   []*socket.RemoteSocket
		err error
	}
	out := make(chan res, 1)
	start := time.Now()
	go n.io.In(rooms...).FetchSockets()(func(s []*socket.RemoteSocket, err error) { out <- res{s, err} })
	select {
	case r := <-out:
		return r.s, r.err, time.Since(start)
	case <-time.After(10 * time.Second):
		t.Fatal("FetchSockets did not return")
		return nil, fmt.Errorf("unreachable"), 0
	}
}
