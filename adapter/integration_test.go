package adapter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// threeNodes starts three servers sharing one Redis, with clients:
//
//	node 0: alice (user:alice, room:a), bob1 (user:bob)
//	node 1: bob2 (user:bob, room:a), carol (user:carol, room:b)
//	node 2: dave (room:a, room:b), eve (no room)
type cast struct {
	nodes                               []*node
	alice, bob1, bob2, carol, dave, eve *client
	all                                 []*client
}

func startCast(t *testing.T, cfg func() Config) *cast {
	t.Helper()
	c := &cast{}
	for range 3 {
		c.nodes = append(c.nodes, startNode(t, cfg()))
	}
	c.alice = connect(t, c.nodes[0], "alice", "user:alice", "room:a")
	c.bob1 = connect(t, c.nodes[0], "bob1", "user:bob")
	c.bob2 = connect(t, c.nodes[1], "bob2", "user:bob", "room:a")
	c.carol = connect(t, c.nodes[1], "carol", "user:carol", "room:b")
	c.dave = connect(t, c.nodes[2], "dave", "room:a", "room:b")
	c.eve = connect(t, c.nodes[2], "eve")
	c.all = []*client{c.alice, c.bob1, c.bob2, c.carol, c.dave, c.eve}
	return c
}

// runAudiences emits to each audience once and checks exactly-once
// delivery to exactly the audience.
func runAudiences(t *testing.T, c *cast) {
	t.Helper()
	n0, n1, n2 := c.nodes[0].io, c.nodes[1].io, c.nodes[2].io
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(n2.To("user:bob").Emit("msg", "one-room"))
	must(n0.To("room:a", "room:b").Emit("msg", "two-rooms"))
	n1.Emit("msg", "all")
	must(n0.To("room:a").Except("user:bob").Emit("msg", "room-except-user"))
	must(n1.Except(socket.Room(c.alice.id)).Emit("msg", "all-except-socket"))
	must(n0.To(socket.Room(c.carol.id)).Emit("msg", "one-socket"))
	must(n2.To("room:b").Except(socket.Room(c.dave.id)).Emit("msg", "room-except-socket"))
	must(n2.To("nobody-here").Emit("msg", "empty-room"))
	checkDelivery(t, c.all,
		expectation{"one-room", []*client{c.bob1, c.bob2}},
		expectation{"two-rooms", []*client{c.alice, c.bob2, c.carol, c.dave}},
		expectation{"all", c.all},
		expectation{"room-except-user", []*client{c.alice, c.dave}},
		expectation{"all-except-socket", []*client{c.bob1, c.bob2, c.carol, c.dave, c.eve}},
		expectation{"one-socket", []*client{c.carol}},
		expectation{"room-except-socket", []*client{c.carol}},
		expectation{"empty-room", nil},
	)
}

func TestBroadcastReachesExactlyTheAudience(t *testing.T) {
	rs := redistest.Start(t)
	rc := rs.Client()
	c := startCast(t, func() Config { return testConfig(rc) })
	runAudiences(t, c)
	for i, n := range c.nodes {
		if s := n.b.Stats(); s.Malformed != 0 || s.Dropped != 0 || s.Published == 0 {
			t.Errorf("node %d stats: %+v", i, s)
		}
	}
}

// TestOwnBroadcastDroppedUndecoded: a node's own broadcast, which Redis
// sends back to it, is recognised by its first bytes and dropped before it
// is decoded; anyone else's is decoded (garbage counts as malformed).
func TestOwnBroadcastDroppedUndecoded(t *testing.T) {
	rs := redistest.Start(t)
	n := startNode(t, testConfig(rs.Client()))
	n.b.mu.Lock()
	a := n.b.adapters["/"]
	n.b.mu.Unlock()
	before := n.b.Stats()
	a.onBroadcast("", n.b.own+"\xc1 not msgpack")
	if s := n.b.Stats(); s.Malformed != before.Malformed || s.Ignored <= before.Ignored {
		t.Errorf("own garbage: malformed %d → %d, ignored %d → %d; want it ignored undecoded",
			before.Malformed, s.Malformed, before.Ignored, s.Ignored)
	}
	a.onBroadcast("", broadcastPrefix("another-node-uid")+"\xc1 not msgpack")
	if s := n.b.Stats(); s.Malformed != before.Malformed+1 {
		t.Errorf("another node's garbage: malformed %d → %d, want decoded and refused", before.Malformed, s.Malformed)
	}
}

// TestBarrierOnlyWhenAwaited: a join waits for its subscription (a flush,
// answered by a barrier PING); a join to a room the node already follows
// has nothing to wait for, and the unsubscriptions of clients that went
// away are waited for by nobody: neither sends a barrier.
func TestBarrierOnlyWhenAwaited(t *testing.T) {
	rs := redistest.Start(t)
	rc := rs.Client()
	n := startNode(t, testConfig(rc))
	pings := func() int64 {
		t.Helper()
		info, err := rc.Info(context.Background(), "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "cmdstat_ping:calls="); ok {
				calls, _, _ := strings.Cut(v, ",")
				got, err := strconv.ParseInt(calls, 10, 64)
				if err != nil {
					t.Fatalf("commandstats line %q: %v", line, err)
				}
				return got
			}
		}
		return 0
	}
	rooms := []string{"room:a", "room:b", "room:c"}
	c := connect(t, n, "alice")
	before := pings()
	for _, r := range rooms {
		c.emitAck(t, "join", []string{r})
	}
	joined := pings()
	if joined-before < int64(len(rooms)) {
		t.Errorf("%d joins waited for their subscriptions with %d barriers, want one each", len(rooms), joined-before)
	}
	// A second member of a followed room: its join finds nothing to
	// subscribe, and the barrier already answered covers it.
	bob := connect(t, n, "bob")
	bob.emitAck(t, "join", []string{"room:a"})
	if got := pings(); got != joined {
		t.Errorf("joining a followed room sent %d barriers, want none", got-joined)
	}
	c.s.Disconnect()
	bob.s.Disconnect()
	waitFor(t, 5*time.Second, "rooms unsubscribed", func() bool {
		for _, r := range rooms {
			if numsub(t, rc, "socket.io#/#"+r+"#") != 0 {
				return false
			}
		}
		return true
	})
	if after := pings(); after != joined {
		t.Errorf("unsubscribing after a disconnect sent %d barriers, want none", after-joined)
	}
}

// TestSubscriptionsAreExact: a node subscribes to the channel of a room
// only while it has a member of it, never to a pattern, never to a
// private room; the last member leaving unsubscribes.
func TestSubscriptionsAreExact(t *testing.T) {
	rs := redistest.Start(t)
	rc := rs.Client()
	c := startCast(t, func() Config { return testConfig(rc) })
	ctx := context.Background()

	if n, err := rc.PubSubNumPat(ctx).Result(); err != nil || n != 0 {
		t.Fatalf("PUBSUB NUMPAT = %d, %v; want 0", n, err)
	}
	want := map[string]int64{
		"socket.io#/#":                  3,
		"socket.io-request#/#":          3,
		"socket.io#/#user:bob#":         2, // nodes 0 and 1
		"socket.io#/#room:a#":           3,
		"socket.io#/#room:b#":           2, // nodes 1 and 2
		"socket.io#/#user:alice#":       1,
		"socket.io#/#user:carol#":       1,
		"socket.io#/#" + c.eve.id + "#": 0, // private rooms are not subscribed
	}
	for ch, n := range want {
		if got := numsub(t, rc, ch); got != n {
			t.Errorf("NUMSUB %s = %d, want %d", ch, got, n)
		}
	}
	chans, err := rc.PubSubChannels(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range chans {
		for _, cl := range c.all {
			if strings.Contains(ch, cl.id) {
				t.Errorf("subscribed to a private room: %s", ch)
			}
		}
	}
	// One pub/sub connection per node.
	list, err := rc.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	subs := 0
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, "cmd=subscribe") || strings.Contains(line, "cmd=unsubscribe") ||
			(strings.Contains(line, " sub=") && !strings.Contains(line, " sub=0 ")) {
			subs++
		}
	}
	if subs != 3 {
		t.Errorf("%d pub/sub connections, want 3:\n%s", subs, list)
	}

	// bob2 leaves user:bob: node 1 unsubscribes, node 0 keeps it.
	c.bob2.emitAck(t, "leave", []string{"user:bob"})
	if got := numsub(t, rc, "socket.io#/#user:bob#"); got != 1 {
		t.Errorf("after bob2 left: NUMSUB user:bob = %d, want 1", got)
	}
	// bob1 disconnects: nobody is subscribed any more.
	c.bob1.s.Disconnect()
	waitFor(t, 5*time.Second, "user:bob unsubscribed", func() bool {
		_ = c.nodes[0].b.Flush(ctx)
		return numsub(t, rc, "socket.io#/#user:bob#") == 0
	})
	chans, _ = rc.PubSubChannels(ctx, "socket.io#/#user:bob#").Result()
	if len(chans) != 0 {
		t.Errorf("user:bob still has a channel: %v", chans)
	}
}

// TestProbeResubscribesSilentConnection: the pub/sub connection stays open
// but stops carrying anything; the probe notices and resubscribes.
func TestProbeResubscribesSilentConnection(t *testing.T) {
	rs := redistest.Start(t)
	px := startProxy(t, rs.Addr())
	viaProxy := goredis.NewClient(&goredis.Options{Addr: px.Addr(), Dialer: redistest.Dialer()})
	t.Cleanup(func() { _ = viaProxy.Close() })
	rc := rs.Client()
	n0 := startNode(t, testConfig(viaProxy))
	n1 := startNode(t, testConfig(rc))
	a := connect(t, n0, "a", "room:x")
	b := connect(t, n1, "b")

	px.freezeAll()
	before := n0.b.Stats()
	waitFor(t, 5*time.Second, "a probe failure", func() bool { return n0.b.Stats().ProbeFailures > before.ProbeFailures })
	waitFor(t, 5*time.Second, "healthy again", n0.b.Healthy)
	if s := n0.b.Stats(); s.Resubscribes <= before.Resubscribes {
		t.Fatalf("no resubscription: %+v", s)
	}
	if err := n1.io.To("room:x").Emit("msg", "after-freeze"); err != nil {
		t.Fatal(err)
	}
	checkDelivery(t, []*client{a, b}, expectation{"after-freeze", []*client{a}})
}

// TestClientKillResubscribes: Redis closes the pub/sub connections.
func TestClientKillResubscribes(t *testing.T) {
	rs := redistest.Start(t)
	rc := rs.Client()
	n0 := startNode(t, testConfig(rc))
	n1 := startNode(t, testConfig(rc))
	a := connect(t, n0, "a", "room:x")
	b := connect(t, n1, "b", "room:y")
	ctx := context.Background()
	if err := rc.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "resubscribed", func() bool {
		return n0.b.Stats().Resubscribes > 0 && n1.b.Stats().Resubscribes > 0 &&
			n0.b.Healthy() && n1.b.Healthy() &&
			numsub(t, rc, "socket.io#/#room:x#") == 1 && numsub(t, rc, "socket.io#/#room:y#") == 1
	})
	_ = n1.io.To("room:x").Emit("msg", "x")
	_ = n0.io.To("room:y").Emit("msg", "y")
	checkDelivery(t, []*client{a, b},
		expectation{"x", []*client{a}},
		expectation{"y", []*client{b}})
}

// TestRedisRestartResumes: Redis goes away and comes back on the same
// port; the nodes report unhealthy, then resubscribe by themselves.
func TestRedisRestartResumes(t *testing.T) {
	rs := redistest.Start(t)
	rc := goredis.NewClient(&goredis.Options{Addr: rs.Addr(), MaxRetries: 1, DialTimeout: 200 * time.Millisecond, Dialer: redistest.Dialer()})
	t.Cleanup(func() { _ = rc.Close() })
	n0 := startNode(t, testConfig(rc))
	n1 := startNode(t, testConfig(rc))
	a := connect(t, n0, "a", "room:x")
	b := connect(t, n1, "b")

	rs.Stop()
	waitFor(t, 5*time.Second, "unhealthy while Redis is down", func() bool { return !n0.b.Healthy() })
	time.Sleep(300 * time.Millisecond)
	rs.Restart()
	waitFor(t, 10*time.Second, "healthy after restart", func() bool { return n0.b.Healthy() && n1.b.Healthy() })
	// The publisher's pooled connections died with the restart: go-redis
	// retries the publish once on a new one (MaxRetries 1).
	_ = n1.io.To("room:x").Emit("msg", "after-restart")
	checkDelivery(t, []*client{a, b}, expectation{"after-restart", []*client{a}})
}

// TestRequestsSkipDeadPeer: FetchSockets and DisconnectSockets work across
// nodes and return promptly when a peer died; a hung peer costs one
// request timeout.
func TestRequestsSkipDeadPeer(t *testing.T) {
	rs := redistest.Start(t)
	rc := rs.Client()
	c := startCast(t, func() Config { return testConfig(rc) })

	socks, err, _ := fetchSockets(t, c.nodes[0], "room:a")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sortedIDs(socks), sortedIDs2(c.alice, c.bob2, c.dave); !slices.Equal(got, want) {
		t.Fatalf("FetchSockets(room:a) = %v, want %v", got, want)
	}
	if n := c.nodes[0].io.Of("/", nil).Adapter().ServerCount(); n != 3 {
		t.Fatalf("ServerCount = %d, want 3", n)
	}

	c.nodes[2].stop() // dies: its pub/sub connection closes
	waitFor(t, 5*time.Second, "dead peer gone", func() bool { return numsub(t, rc, "socket.io-request#/#") == 2 })
	socks, err, took := fetchSockets(t, c.nodes[0], "room:a")
	if err != nil {
		t.Fatal(err)
	}
	if took > time.Second {
		t.Errorf("FetchSockets took %s with a dead peer", took)
	}
	if got, want := sortedIDs(socks), sortedIDs2(c.alice, c.bob2); !slices.Equal(got, want) {
		t.Fatalf("FetchSockets(room:a) = %v, want %v", got, want)
	}

	// DisconnectSockets reaches the other node.
	c.nodes[0].io.In("user:carol").DisconnectSockets(true)
	select {
	case <-c.carol.disc:
	case <-time.After(5 * time.Second):
		t.Fatal("carol was not disconnected")
	}

	// A hung peer: subscribed, never answers.
	hung := rc.Subscribe(context.Background(), "socket.io-request#/#")
	t.Cleanup(func() { _ = hung.Close() })
	if _, err := hung.Receive(context.Background()); err != nil {
		t.Fatal(err)
	}
	socks, err, took = fetchSockets(t, c.nodes[0], "room:a")
	if !errors.Is(err, ErrRequestTimeout) {
		t.Fatalf("err = %v, want ErrRequestTimeout", err)
	}
	if took > 3*time.Second {
		t.Errorf("FetchSockets took %s, want about the 2 s request timeout", took)
	}
	if len(socks) != 2 {
		t.Errorf("partial answer has %d sockets, want 2", len(socks))
	}
}

// TestServerSideEmit: with and without acknowledgement.
func TestServerSideEmit(t *testing.T) {
	rs := redistest.Start(t)
	rc := rs.Client()
	var nodes []*node
	got := make(chan string, 10)
	for i := range 3 {
		n := startNode(t, testConfig(rc))
		_ = n.io.On("ping", func(args ...any) {
			if ack, ok := args[len(args)-1].(socket.Ack); ok {
				ack([]any{"pong-" + string(rune('0'+i))}, nil)
				return
			}
			got <- args[0].(string)
		})
		nodes = append(nodes, n)
	}
	if err := nodes[0].io.ServerSideEmit("ping", "hello"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case s := <-got:
			if s != "hello" {
				t.Fatalf("got %q", s)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("server side emit not received")
		}
	}
	res := make(chan []any, 1)
	_ = nodes[0].io.ServerSideEmitWithAck("ping")(func(args []any, err error) {
		if err != nil {
			t.Error(err)
		}
		res <- args
	})
	select {
	case args := <-res:
		var s []string
		for _, a := range args {
			s = append(s, a.(string))
		}
		slices.Sort(s)
		if !slices.Equal(s, []string{"pong-1", "pong-2"}) {
			t.Fatalf("acks = %v", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no ack")
	}
	select {
	case s := <-got:
		t.Fatalf("stray %q", s)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestEmitWithAckAcrossNodes: BroadcastWithAck collects the acks of the
// clients of every node.
func TestEmitWithAckAcrossNodes(t *testing.T) {
	rs := redistest.Start(t)
	rc := rs.Client()
	n0 := startNode(t, testConfig(rc))
	n1 := startNode(t, testConfig(rc))
	var clients []*client
	for i, n := range []*node{n0, n1, n1} {
		c := connect(t, n, "c"+string(rune('0'+i)), "room:ack")
		_ = c.s.On("q", func(args ...any) {
			if ack, ok := args[len(args)-1].(func([]any, error)); ok {
				ack([]any{"a"}, nil)
			}
		})
		clients = append(clients, c)
	}
	res := make(chan []any, 1)
	n0.io.To("room:ack").Timeout(3*time.Second).EmitWithAck("q", 1)(func(args []any, err error) {
		if err != nil {
			t.Error(err)
		}
		res <- args
	})
	select {
	case args := <-res:
		if len(args) != 3 {
			t.Fatalf("acks = %v, want 3", args)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no acks")
	}
}

func sortedIDs(socks []*socket.RemoteSocket) []string {
	var out []string
	for _, s := range socks {
		out = append(out, string(s.Id()))
	}
	slices.Sort(out)
	return out
}

func sortedIDs2(cs ...*client) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.id)
	}
	slices.Sort(out)
	return out
}

// TestRedisCluster: three nodes on a three-master Redis Cluster, with
// classic pub/sub and with sharded pub/sub.
func TestRedisCluster(t *testing.T) {
	cl := startCluster(t)
	for _, ch := range []string{"socket.io#/#room:a#", "socket.io-request#/#", "{x}y", "a{}b"} {
		want, err := cl.Client(t).ClusterKeySlot(context.Background(), ch).Result()
		if err != nil || int64(slot(ch)) != want {
			t.Fatalf("slot(%q) = %d, CLUSTER KEYSLOT = %d, %v", ch, slot(ch), want, err)
		}
	}
	for _, sharded := range []bool{false, true} {
		name := "classic"
		if sharded {
			name = "sharded"
		}
		t.Run(name, func(t *testing.T) {
			cc := cl.Client(t)
			c := startCast(t, func() Config {
				cfg := testConfig(cc)
				cfg.Sharded = sharded
				return cfg
			})
			runAudiences(t, c)

			ctx := context.Background()
			var (
				mu         sync.Mutex // ForEachMaster runs concurrently
				numpat     int64
				shardChans = map[string]bool{}
			)
			err := cc.ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error {
				p, err := n.PubSubNumPat(ctx).Result()
				mu.Lock()
				defer mu.Unlock()
				numpat += p
				if err != nil {
					return err
				}
				chans, err := n.PubSubShardChannels(ctx, "*").Result()
				for _, ch := range chans {
					shardChans[ch] = true
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if numpat != 0 {
				t.Errorf("NUMPAT = %d, want 0", numpat)
			}
			if got := shardChans["socket.io#/#room:b#"]; got != sharded {
				t.Errorf("room:b is a shard channel: %v, want %v", got, sharded)
			}
			if sharded && shardChans["socket.io#/#room:nobody#"] {
				t.Error("subscribed to an empty room")
			}
			socks, err, _ := fetchSockets(t, c.nodes[1], "room:b")
			if err != nil || len(socks) != 2 {
				t.Errorf("FetchSockets(room:b) = %d sockets, %v; want 2", len(socks), err)
			}
		})
	}
}

// TestSocketIDRooms: by default no node subscribes to private rooms and an
// emit to a remote socket id goes through the namespace channel; an emit
// to a local socket id is not published. With SubscribeSocketRooms, the
// private rooms are subscribed and emits use their room channel.
func TestSocketIDRooms(t *testing.T) {
	rs := redistest.Start(t)
	rc := rs.Client()
	for _, subscribe := range []bool{false, true} {
		cfg := testConfig(rc)
		cfg.SubscribeSocketRooms = subscribe
		n0, n1 := startNode(t, cfg), startNode(t, cfg)
		a, b := connect(t, n0, "a"), connect(t, n1, "b")
		ch := "socket.io#/#" + b.id + "#"
		want := int64(0)
		if subscribe {
			want = 1
		}
		if got := numsub(t, rc, ch); got != want {
			t.Errorf("subscribe=%v: NUMSUB %s = %d, want %d", subscribe, ch, got, want)
		}
		before := n0.b.Stats().Published
		_ = n0.io.To(socket.Room(a.id)).Emit("msg", "local-socket")
		time.Sleep(50 * time.Millisecond)
		if p := n0.b.Stats().Published; p != before {
			t.Errorf("an emit to a local socket id was published (%d -> %d)", before, p)
		}
		tag := "remote-socket-" + map[bool]string{false: "default", true: "subscribed"}[subscribe]
		_ = n0.io.To(socket.Room(b.id)).Emit("msg", tag)
		checkDelivery(t, []*client{a, b},
			expectation{"local-socket", []*client{a}},
			expectation{tag, []*client{b}})
		n0.stop()
		n1.stop()
	}
}

// startCluster retries redistest.StartCluster (at most 3 times): it picks
// free ports in the ephemeral range, and a port above 55535 has no cluster
// bus port (port + 10000), so that node never starts.
func startCluster(t *testing.T) *redistest.Cluster {
	t.Helper()
	for attempt := 1; ; attempt++ {
		c, err := tryStartCluster(t)
		if err == nil {
			return c
		}
		if attempt == 3 {
			t.Fatal(err)
		}
		t.Logf("cluster start, attempt %d: %v", attempt, err)
	}
}

// fatalTB turns Fatal into a panic that tryStartCluster recovers.
type fatalTB struct{ testing.TB }

type fatalError string

func (fatalTB) Fatal(args ...any) { panic(fatalError(fmt.Sprint(args...))) }
func (fatalTB) Fatalf(format string, args ...any) {
	panic(fatalError(fmt.Sprintf(format, args...)))
}

func tryStartCluster(t *testing.T) (c *redistest.Cluster, err error) {
	defer func() {
		if r := recover(); r != nil {
			msg, ok := r.(fatalError)
			if !ok {
				panic(r)
			}
			err = errors.New(string(msg))
		}
	}()
	return redistest.StartCluster(fatalTB{t}), nil
}

// TestSentinel: the adapter through a Sentinel (failover) client.
func TestSentinel(t *testing.T) {
	master := redistest.Start(t)
	port := redistest.FreePort(t)
	for port > 55535 { // keep clear of the ephemeral range's top, as for the cluster
		port = redistest.FreePort(t)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	err := os.WriteFile(conf, []byte(fmt.Sprintf(
		"port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor mymaster 127.0.0.1 %d 1\nsentinel down-after-milliseconds mymaster 1000\n",
		port, dir, master.Port)), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("redis-server", conf, "--sentinel")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	probe := goredis.NewSentinelClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { _ = probe.Close() })
	waitFor(t, 10*time.Second, "sentinel knows the master", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		return probe.GetMasterAddrByName(ctx, "mymaster").Err() == nil
	})
	uc := goredis.NewUniversalClient(&goredis.UniversalOptions{MasterName: "mymaster", Addrs: []string{addr}})
	t.Cleanup(func() { _ = uc.Close() })
	n0, n1 := startNode(t, testConfig(uc)), startNode(t, testConfig(uc))
	a, b := connect(t, n0, "a", "room:s"), connect(t, n1, "b")
	_ = n1.io.To("room:s").Emit("msg", "via-sentinel")
	n0.io.Emit("msg", "all-via-sentinel")
	checkDelivery(t, []*client{a, b},
		expectation{"via-sentinel", []*client{a}},
		expectation{"all-via-sentinel", []*client{a, b}})
}
