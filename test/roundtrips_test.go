package test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/adapter"
	"github.com/switchboard/switchboard/internal/loadtest"
	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/internal/testclient"
	stateredis "github.com/switchboard/switchboard/state/redis"
)

// rtCounter is a go-redis hook that records every round trip the state
// store makes: one command, or one pipeline (however many commands it
// holds), is one round trip. It also keeps each round trip's interval, so
// that the number of sequential steps (round trips that cannot overlap,
// i.e. the latency in RTTs) can be told apart from the total.
type rtCounter struct {
	mu    sync.Mutex
	trips []trip
}

type trip struct {
	what       string
	cmds       int
	start, end time.Time
	// setup marks the commands go-redis sends on a connection it has just
	// opened (HELLO, CLIENT SETINFO): the pool's cost, not the event's.
	setup bool
}

var setupCmds = map[string]bool{"hello": true, "client": true, "auth": true, "select": true, "readonly": true}

func (r *rtCounter) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (r *rtCounter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		r.add(trip{what: describe(cmd), cmds: 1, start: start, end: time.Now(), setup: setupCmds[cmd.Name()]})
		return err
	}
}

func (r *rtCounter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		names := make([]string, 0, len(cmds))
		setup := true
		for _, c := range cmds {
			names = append(names, describe(c))
			setup = setup && setupCmds[c.Name()]
		}
		r.add(trip{what: "pipeline[" + strings.Join(names, "; ") + "]", cmds: len(cmds), start: start, end: time.Now(), setup: setup})
		return err
	}
}

func (r *rtCounter) add(t trip) {
	r.mu.Lock()
	r.trips = append(r.trips, t)
	r.mu.Unlock()
}

// describe names a command by its verb and first key, enough to tell which
// store operation sent it (EVALSHA's first key names the object a script
// works on).
func describe(c goredis.Cmder) string {
	args := c.Args()
	name := strings.ToLower(c.Name())
	key := ""
	switch {
	case (name == "evalsha" || name == "eval") && len(args) > 3:
		key = fmt.Sprint(args[3])
	case name != "evalsha" && name != "eval" && len(args) > 1:
		key = fmt.Sprint(args[1])
	}
	// Keys may hold control characters (the guest pseudo-users' NULs).
	key = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '·'
		}
		return r
	}, key)
	return strings.TrimSpace(name + " " + key)
}

func (r *rtCounter) reset() {
	r.mu.Lock()
	r.trips = nil
	r.mu.Unlock()
}

func (r *rtCounter) n() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.trips)
}

// snapshot returns the round trips, the commands they carried, the number
// of sequential steps (the largest set of pairwise non-overlapping round
// trips, which is how many RTTs the event waited for), how many round trips
// set up a new pooled connection (not counted in trips) and a description.
func (r *rtCounter) snapshot() (trips, cmds, steps, setup int, what []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ts []trip
	for _, t := range r.trips {
		if t.setup {
			setup++
			continue
		}
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].end.Before(ts[j].end) })
	var last time.Time
	for _, t := range ts {
		cmds += t.cmds
		what = append(what, t.what)
		if t.start.After(last) || t.start.Equal(last) {
			steps++
			last = t.end
		}
	}
	return len(ts), cmds, steps, setup, what
}

// settle waits until no round trip was recorded for a quiet period (work a
// disconnect handler does after the socket went away), bounded by max.
func (r *rtCounter) settle(quietFor, max time.Duration) {
	deadline := time.Now().Add(max)
	prev := r.n()
	for time.Now().Before(deadline) {
		time.Sleep(quietFor)
		cur := r.n()
		if cur == prev {
			return
		}
		prev = cur
	}
}

// redisNode is an envOption that puts a node on srv with the Redis store
// and our pub/sub adapter, as cmd/switchboard wires them, except that the
// store and the adapter get separate clients: the store's client carries
// the round-trip counter, so pub/sub traffic (publishes of broadcasts,
// probes, PUBSUB NUMSUB) is not counted.
type redisNode struct {
	Counter *rtCounter
	Builder *adapter.Builder
	Store   *stateredis.Store
	Client  *goredis.Client // the store's client
}

func withRedis(t *testing.T, srv *redistest.Server, nodeID string, adapterCfg func(*adapter.Config)) (*redisNode, envOption) {
	t.Helper()
	rn := &redisNode{Counter: &rtCounter{}}
	// As cmd/switchboard: a slow Redis answers at the request deadline, and
	// the connections make raw system calls (internal/rawio).
	rn.Client = goredis.NewClient(&goredis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true, Dialer: redistest.Dialer()})
	rn.Client.AddHook(rn.Counter)
	pubsub := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true, Dialer: redistest.Dialer()})
	rn.Store = stateredis.New(rn.Client, stateredis.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rn.Store.Preload(ctx); err != nil { // as cmd/switchboard: no NOSCRIPT fallback on a first call
		t.Fatal(err)
	}
	acfg := adapter.Config{Client: pubsub, Logger: testLogger()}
	if adapterCfg != nil {
		adapterCfg(&acfg)
	}
	rn.Builder = adapter.New(acfg)
	// Registered before newEnv's Shutdown, so they run after it.
	t.Cleanup(func() { _ = rn.Client.Close(); _ = pubsub.Close() })
	t.Cleanup(func() { _ = rn.Builder.Close() })
	return rn, func(o *nodeOptions) {
		o.Service.NodeID = nodeID
		o.Store = rn.Store
		o.Adapter = rn.Builder
		o.AdapterHealthy = rn.Builder.Healthy
	}
}

// rtRow is one measured event.
type rtRow struct {
	event       string
	trips, cmds int
	steps       int
	setup       int
	what        []string
	budget      int    // the assertion: at most this many round trips
	note        string // why the budget is not issue 5's 2
}

// TestRoundTripsPerClientEvent counts the Redis round trips of each client
// event of the hot paths (issue 5: at most 2 per event), on a real Redis
// with the Redis store and our adapter. It logs the table for every event
// and asserts the budget: 2, except where the code is known to need more
// (note says which operation costs the extra trip).
func TestRoundTripsPerClientEvent(t *testing.T) {
	srv := redistest.Start(t)
	rn, opt := withRedis(t, srv, "rt-node", nil)
	e := newEnv(t, opt)
	ctr := rn.Counter
	var rows []rtRow

	record := func(event string, budget int, note string) {
		trips, cmds, steps, setup, what := ctr.snapshot()
		rows = append(rows, rtRow{event: event, trips: trips, cmds: cmds, steps: steps, setup: setup, what: what, budget: budget, note: note})
	}
	// measure runs one emit and records its round trips under label: the
	// counter is reset before the emit and read after the ack (plus a short
	// settle, in case a handler did store work after answering).
	measure := func(c *testclient.Client, label, event string, payload any, budget int, note string) testclient.Ack {
		t.Helper()
		ctr.settle(30*time.Millisecond, time.Second)
		ctr.reset()
		a := mustOK(t, emit(t, c, event, payload))
		ctr.settle(30*time.Millisecond, time.Second)
		record(label, budget, note)
		return a
	}
	// Handshakes are measured with the load tool's minimal client: the
	// library client retries a handshake that does not complete (see
	// testclient.Dial), which would count a second Connect now and then.
	dial := func(label, user, device string) *loadtest.Client {
		t.Helper()
		ctr.settle(30*time.Millisecond, time.Second)
		ctr.reset()
		c, err := loadtest.Dial(context.Background(), loadtest.DialOptions{URL: e.URL,
			Auth: []byte(`{"token":"` + token(t, user, device, "") + `"}`)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Abort)
		ctr.settle(30*time.Millisecond, time.Second)
		record(label, 2, "")
		return c
	}
	hangUp := func(label string, c interface{ Close() }, budget int, note string) {
		t.Helper()
		before := e.Node.Gateway.Conns()
		ctr.settle(30*time.Millisecond, time.Second)
		ctr.reset()
		c.Close()
		eventually(t, 5*time.Second, label, func() bool { return e.Node.Gateway.Conns() < before })
		ctr.settle(100*time.Millisecond, 3*time.Second)
		record(label, budget, note)
	}

	dave := dial("handshake (member connect)", "dave", "phone")
	daveDesk := dial("handshake (member connect, second device)", "dave", "desktop")
	alice := e.member("alice", "phone")
	bob := e.member("bob", "phone")
	carol := e.member("carol", "phone")
	// A library handshake that was retried leaves a stale socket whose
	// close would land in a measurement: wait until only ours remain.
	eventually(t, 5*time.Second, "five sockets", func() bool { return e.Node.Gateway.Conns() == 5 })

	measure(alice, "presence:heartbeat", "presence:heartbeat", nil, 2, "")

	// Instant call: create, notify, accept, decline, leave.
	// The call, its index entries and the caller's busy mark: one pipeline.
	call := measure(alice, "call:create", "call:create", map[string]any{"participants": []string{"bob", "carol"}}, 1, "").Map("call")["meeting_id"].(string)
	measure(alice, "call:notify", "call:notify", map[string]any{"call_id": call, "recipients": []string{"bob", "carol"}}, 1, "")
	// Meetings.Ring, which reads the recipients' presence itself and
	// carries the ring-timeout job: the job's script must ride in the
	// ring's pipeline, not in a round trip of its own (nor be dropped).
	if r := rows[len(rows)-1]; r.trips != 1 || r.steps != 1 || len(r.what) != 1 ||
		!strings.HasPrefix(r.what[0], "pipeline[") || !strings.Contains(r.what[0], "evalsha sb:{"+call+"}:meeting") ||
		!strings.Contains(r.what[0], "evalsha sb:{jobs}:due") {
		t.Errorf("call:notify: want the ring, with the recipients' presence, and its ring-timeout job in one pipeline; got %d round trips in %d steps: %s",
			r.trips, r.steps, strings.Join(r.what, " | "))
	}
	got(t, bob, "call:incoming", nil)
	got(t, carol, "call:incoming", nil)
	// The transition and the busy mark of its connection go in one
	// pipeline (Meetings.Accept, Join and Leave): one round trip.
	measure(bob, "call:accept", "call:accept", map[string]any{"call_id": call}, 1, "")
	measure(carol, "call:decline", "call:decline", map[string]any{"call_id": call}, 2, "")
	measure(bob, "meeting:leave (call, caller still in it)", "meeting:leave", map[string]any{"meeting_id": call}, 1, "")

	// Scheduled meeting with a guest.
	m := meetingID(t, measure(alice, "meeting:create (not hot path)", "meeting:create", meetingPayload("bob"), 0, ""))
	measure(alice, "meeting:register-participant (first: starts it)", "meeting:register-participant", map[string]any{"meeting_id": m}, 1, "")
	measure(bob, "meeting:register-participant", "meeting:register-participant", map[string]any{"meeting_id": m}, 1, "")
	tok := measure(alice, "meeting:generate_link (not hot path)", "meeting:generate_link", map[string]any{"meeting_id": m}, 0, "")["token"].(string)
	code, reg := httpJSON(t, "POST", e.URL+"/api/meetings/external/register", map[string]any{"token": tok, "display_name": "enc-guest"}, "")
	if code != 201 {
		t.Fatalf("register %d %v", code, reg)
	}
	sid, stok := reg["session_id"].(string), reg["session_token"].(string)

	ctr.settle(30*time.Millisecond, time.Second)
	ctr.reset()
	g := e.guest(sid, stok)
	ctr.settle(30*time.Millisecond, time.Second)
	record("handshake (guest connect; not a client event)", 0, "Guests.GetSession is 2 sequential GETs (session→meeting index, then the session), then Guests.Connect and the node index of the socket")

	measure(g, "meeting:guest_join", "meeting:guest_join", map[string]any{"meeting_id": m, "session_id": sid, "display_name": "enc-new"}, 2, "")
	got(t, alice, "meeting:guest_join", nil)
	measure(alice, "meeting:admit_guest", "meeting:admit_guest", map[string]any{"meeting_id": m, "session_id": sid}, 2, "")
	got(t, g, "meeting:admission_status", nil)
	measure(bob, "meeting:signal (member → guest)", "meeting:signal", map[string]any{"meeting_id": m, "to": map[string]any{"session_id": sid}, "envelope": "opaque"}, 2, "")
	got(t, g, "meeting:signal", nil)
	measure(g, "meeting:signal (guest → member)", "meeting:signal", map[string]any{"meeting_id": m, "to": map[string]any{"user_id": "bob", "device_id": "phone"}, "envelope": "opaque"}, 2, "")
	got(t, bob, "meeting:signal", nil)
	measure(g, "meeting:leave (guest)", "meeting:leave", map[string]any{"meeting_id": m}, 2, "")
	measure(bob, "meeting:leave (meeting)", "meeting:leave", map[string]any{"meeting_id": m}, 1, "")

	// Disconnects: a device in no meeting (the user's last device), a
	// guest, and a caller who is still in a call and in a meeting room.
	hangUp("disconnect (member, not the last device)", daveDesk, 2, "")
	hangUp("disconnect (member, last device, no meeting)", dave, 2, "")
	hangUp("disconnect (last device, after a call and a meeting)", bob, 2, "")
	hangUp("disconnect (guest; not a client event)", g, 0, "")
	mustOK(t, emit(t, alice, "call:create", map[string]any{"participants": []string{"carol"}}))
	hangUp("disconnect (member in a call and a meeting; not hot path)", alice, 0,
		"Presence.Disconnect, one Meetings.Leave per joined meeting (each one a sequential step), Presence.SetJoined for a call that ended, then Jobs.Schedule (offline)")

	var b strings.Builder
	fmt.Fprintf(&b, "\n%-58s %5s %5s %5s %6s %4s  %s\n", "event", "trips", "cmds", "steps", "budget", "<=2", "round trips")
	for _, r := range rows {
		budget := fmt.Sprint(r.budget)
		if r.budget == 0 {
			budget = "-"
		}
		within := "yes"
		if r.trips > 2 {
			within = "NO"
		}
		what := strings.Join(r.what, " | ")
		if r.setup > 0 {
			what += fmt.Sprintf(" (+%d new pooled connection, not counted)", r.setup)
		}
		fmt.Fprintf(&b, "%-58s %5d %5d %5d %6s %4s  %s\n", r.event, r.trips, r.cmds, r.steps, budget, within, what)
		if r.note != "" {
			fmt.Fprintf(&b, "%-60s %s\n", "", "note: "+r.note)
		}
	}
	t.Log(b.String())
	for _, r := range rows {
		if r.budget > 0 && r.trips > r.budget {
			t.Errorf("%s: %d round trips, budget %d: %s", r.event, r.trips, r.budget, strings.Join(r.what, " | "))
		}
	}
}
