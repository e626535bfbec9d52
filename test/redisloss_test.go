package test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/switchboard/switchboard/adapter"
	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/internal/testclient"
	"github.com/switchboard/switchboard/service"
	"github.com/switchboard/switchboard/state"
)

// Durations of the Redis-loss test: short, so that the outage, the lease
// and the probes all happen within seconds.
const (
	lossRequestTimeout = time.Second
	lossLease          = 3 * time.Second
	lossRefresh        = 500 * time.Millisecond
	lossProbe          = time.Second
	lossOutage         = 6 * time.Second // longer than the lease
	lossSampling       = 5 * time.Second // at least, after readiness turned false
	// lossAckMargin is how much later than the request timeout an ack may
	// come: scheduling on a loaded 2-core machine plus the transport.
	lossAckMargin = 1500 * time.Millisecond
	// lossGoroutineSlack bounds the goroutines above the pre-outage count
	// while Redis is down and after it is back: reconnect loops, dialers
	// and the handlers of in-flight events, not one per attempt.
	lossGoroutineSlack = 40
)

// lossNode is one in-process node on Redis with the background loops on the
// real clock.
type lossNode struct {
	*env
	redis *redisNode
	id    string
}

func startLossNode(t *testing.T, srv *redistest.Server, id string) *lossNode {
	t.Helper()
	rn, opt := withRedis(t, srv, id, func(c *adapter.Config) {
		c.RequestTimeout = lossRequestTimeout
		c.ProbeInterval = lossProbe
	})
	e := newEnv(t, opt, func(o *nodeOptions) {
		o.Clock = time.Now
		o.Loops = true
		o.NodeLease = lossLease
		o.NodeRefresh = lossRefresh
		o.JobPoll = 100 * time.Millisecond
		o.Gateway.RequestTimeout = lossRequestTimeout
		o.Gateway.SweepInterval = 500 * time.Millisecond
		o.Service.PresenceGrace = time.Second
		o.Gateway.PresenceGrace = time.Second
	})
	return &lossNode{env: e, redis: rn, id: id}
}

// TestRedisLossAndEmptyReturn is issue 3 item 6 on in-process nodes with the
// Redis store and our adapter: while Redis is down, acks answer unavailable
// within the request timeout, /readyz is 503 and goroutines stay bounded;
// when Redis comes back EMPTY (its data lost), each node finds its lease
// lost and re-registers what it holds: its sockets' presence, so that a
// call rings them again, and their rooms across nodes.
func TestRedisLossAndEmptyReturn(t *testing.T) {
	srv := redistest.Start(t, redistest.WithAOF())
	n1 := startLossNode(t, srv, "loss-n1")
	n2 := startLossNode(t, srv, "loss-n2")
	for _, n := range []*lossNode{n1, n2} {
		eventually(t, 10*time.Second, n.id+" ready", func() bool { return ready(n.URL) })
	}
	alice := dialMember(t, n1.URL, "alice", "phone", testclient.WebSocket)
	carol := dialMember(t, n1.URL, "carol", "phone", testclient.WebSocket)
	bob := dialMember(t, n2.URL, "bob", "phone", testclient.WebSocket)
	users := []string{"alice", "bob", "carol"}
	ctx := context.Background()

	// Before: a meeting (to prove later that Redis came back empty) and a
	// call that rings across nodes.
	for _, n := range []*lossNode{n1, n2} { // the rooms just joined hear the cluster
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := n.redis.Builder.Flush(fctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	m := meetingID(t, mustOK(t, emit(t, alice, "meeting:create", liveMeetingPayload("bob"))))
	got(t, bob, "meeting:created", nil)
	ring := func(what string) {
		t.Helper()
		bob.Reset()
		carol.Reset()
		call := mustOK(t, emit(t, alice, "call:create", map[string]any{"participants": []string{"bob", "carol"}})).Map("call")["meeting_id"].(string)
		a := mustOK(t, emit(t, alice, "call:notify", map[string]any{"call_id": call, "recipients": []string{"bob", "carol"}}))
		if fmt.Sprint(a["notified_count"]) != "2" {
			t.Fatalf("%s: notified_count %v, want 2 (bob and carol online)", what, a["notified_count"])
		}
		isCall := func(d map[string]any) bool { c, _ := d["call"].(map[string]any); return c["meeting_id"] == call }
		got(t, bob, "call:incoming", isCall)   // n2: user room over pub/sub
		got(t, carol, "call:incoming", isCall) // n1: local
		mustOK(t, emit(t, alice, "meeting:leave", map[string]any{"meeting_id": call}))
	}
	ring("before the outage")
	time.Sleep(300 * time.Millisecond)
	runtime.GC()
	before := runtime.NumGoroutine()

	// Redis goes away (SIGKILL).
	srv.Stop()
	down := time.Now()
	for _, ev := range []struct {
		name    string
		payload any
	}{
		{"presence:heartbeat", nil},
		{"call:create", map[string]any{"participants": []string{"bob"}}},
		{"meeting:register-participant", map[string]any{"meeting_id": m}},
	} {
		start := time.Now()
		a, err := alice.EmitTimeout(ev.name, ev.payload, lossRequestTimeout+5*time.Second)
		took := time.Since(start)
		if err != nil {
			t.Fatalf("%s while Redis is down: %v", ev.name, err)
		}
		mustCode(t, a, service.CodeUnavailable)
		t.Logf("Redis down: %s answered %q in %v (request timeout %v)", ev.name, a.Code(), took.Round(time.Millisecond), lossRequestTimeout)
		if took > lossRequestTimeout+lossAckMargin {
			t.Errorf("%s answered after %v, want within the request timeout %v (+%v)", ev.name, took, lossRequestTimeout, lossAckMargin)
		}
	}
	for _, n := range []*lossNode{n1, n2} {
		eventually(t, 5*time.Second, n.id+" not ready", func() bool { return readyz(n.URL) == 503 })
	}
	t.Logf("Redis down: both nodes not ready %v after the kill", time.Since(down).Round(time.Millisecond))

	// Stay down past the lease, sampling goroutines (an event every
	// sample, so handlers come and go too).
	var samples []int
	sampleUntil := time.Now().Add(lossSampling)
	for time.Since(down) < lossOutage || time.Now().Before(sampleUntil) {
		_, _ = carol.EmitTimeout("presence:heartbeat", nil, lossRequestTimeout+lossAckMargin)
		time.Sleep(250 * time.Millisecond)
		samples = append(samples, runtime.NumGoroutine())
	}
	t.Logf("Redis down for %v: goroutines %d before, samples %v", time.Since(down).Round(100*time.Millisecond), before, samples)
	peak := 0
	for _, s := range samples {
		peak = max(peak, s)
	}
	if peak > before+lossGoroutineSlack {
		t.Errorf("goroutines grew to %d while Redis was down (before: %d, +%d allowed)\n%s", peak, before, lossGoroutineSlack, goroutineSummary())
	}
	if q := len(samples) / 3; q > 0 {
		first, last := avg(samples[:q]), avg(samples[len(samples)-q:])
		if last > first+10 {
			t.Errorf("goroutines keep growing while Redis is down: first third %.1f, last third %.1f", first, last)
		}
	}
	for _, n := range []*lossNode{n1, n2} {
		if readyz(n.URL) != 503 {
			t.Errorf("%s ready while Redis is down", n.id)
		}
	}

	// Redis comes back on the same port with nothing: its files removed.
	for _, f := range []string{"appendonlydir", "appendonly.aof", "dump.rdb"} {
		_ = os.RemoveAll(filepath.Join(srv.Dir, f))
	}
	srv.Restart()
	back := time.Now()
	raw := srv.Client()
	// (The store's client may first answer with its last dial error: the
	// go-redis pool retries dialing in the background.)
	var err error
	eventually(t, 5*time.Second, "Redis answering the store's client", func() bool {
		_, err = n1.redis.Store.Meetings().Get(ctx, m)
		return !errors.Is(err, state.ErrUnavailable)
	})
	if !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("Redis did not come back empty: meeting %s: %v", m, err)
	}
	for _, n := range []*lossNode{n1, n2} {
		eventually(t, 15*time.Second, n.id+" ready again", func() bool { return ready(n.URL) })
	}
	t.Logf("Redis back (empty): both nodes ready %v later", time.Since(back).Round(time.Millisecond))

	// Each node's lease is back (the next refresh re-registers it).
	for _, n := range []*lossNode{n1, n2} {
		eventually(t, 2*lossLease, n.id+" lease back", func() bool {
			err := raw.ZScore(ctx, "sb:{nodes}:leases", n.id).Err()
			return err == nil
		})
	}
	t.Logf("leases back %v after Redis", time.Since(back).Round(time.Millisecond))

	// The lease refresh finds the lease lost and runs Gateway.Restore: the
	// sockets' presence is back without any client doing anything.
	var last []state.UserPresence
	restored := false
	deadline := time.Now().Add(3 * lossLease)
	for time.Now().Before(deadline) {
		ps, err := n1.Node.Service.QueryPresence(ctx, service.PresenceQuery{UserIDs: users})
		if err == nil {
			last = ps
			restored = true
			for _, p := range ps {
				if p.Status == state.Offline {
					restored = false
				}
			}
			if restored {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !restored {
		nodeConns := map[string]int{}
		for _, n := range []*lossNode{n1, n2} {
			cs, _ := n.redis.Store.Presence().NodeConns(ctx, n.id)
			nodeConns[n.id] = len(cs)
		}
		t.Fatalf("presence not restored %v after Redis came back empty: %+v; connections indexed per node: %v; gateway sockets n1=%d n2=%d",
			time.Since(back).Round(time.Millisecond), last, nodeConns, n1.Node.Gateway.Conns(), n2.Node.Gateway.Conns())
	}
	t.Logf("presence restored %v after Redis came back: %+v", time.Since(back).Round(time.Millisecond), last)
	for _, n := range []*lossNode{n1, n2} {
		cs, err := n.redis.Store.Presence().NodeConns(ctx, n.id)
		if err != nil || len(cs) != n.Node.Gateway.Conns() {
			t.Errorf("%s: %d connections indexed (%v), gateway holds %d", n.id, len(cs), err, n.Node.Gateway.Conns())
		}
	}

	// Rooms: a call rings bob on the other node (user room over the
	// resubscribed pub/sub) and carol on this one.
	eventually(t, 10*time.Second, "pub/sub healthy on both nodes", func() bool { return n1.redis.Builder.Healthy() && n2.redis.Builder.Healthy() })
	ring("after Redis came back empty")
	for _, n := range []*lossNode{n1, n2} {
		st := n.redis.Builder.Stats()
		t.Logf("%s adapter: resubscribes %d, probe failures %d, dropped %d", n.id, st.Resubscribes, st.ProbeFailures, st.Dropped)
		if st.Resubscribes == 0 {
			t.Errorf("%s: the adapter never resubscribed after Redis restarted", n.id)
		}
	}

	// No crash, no goroutine growth once recovered.
	time.Sleep(500 * time.Millisecond)
	runtime.GC()
	after := runtime.NumGoroutine()
	t.Logf("goroutines: %d before the outage, %d after recovery", before, after)
	if after > before+lossGoroutineSlack {
		t.Errorf("goroutines %d after recovery, %d before the outage\n%s", after, before, goroutineSummary())
	}
	if !alice.Connected() || !bob.Connected() || !carol.Connected() {
		t.Errorf("a client lost its connection during the outage")
	}
}

func avg(xs []int) float64 {
	s := 0
	for _, x := range xs {
		s += x
	}
	return float64(s) / float64(len(xs))
}

// readyz returns the status of GET /readyz (0 when it does not answer).
func readyz(url string) int {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRedisLossDataKept loses Redis for longer than the node lease and
// brings it back WITH its data (AOF), as a Redis restart or a failover to a
// replica does. No client changed anything but one, so nothing else should
// be announced: no presence flap for users whose devices never went away,
// and the calls on each node survive. The device that went away during the
// outage (its cleanup failed then) is announced offline once afterwards.
//
// It failed at 9477533 on two server defects, fixed in 07d2fc5:
//   - whichever node reached Redis first found the other node's lease
//     expired (the outage outlasted it), claimed it as dead and reaped it
//     although it was alive: its users were announced offline and left
//     their calls (a call whose participants were all there ended and was
//     deleted, and its call:ended was lost), then came back when that node
//     found its own lease lost and restored;
//   - a socket that closed while Redis was down kept its presence entry,
//     so the user stayed online until the entry expired (presence TTL) and
//     then went offline without presence:user_disconnected.
func TestRedisLossDataKept(t *testing.T) {
	srv := redistest.Start(t, redistest.WithAOF())
	n1 := startLossNode(t, srv, "kept-n1")
	n2 := startLossNode(t, srv, "kept-n2")
	for _, n := range []*lossNode{n1, n2} {
		eventually(t, 10*time.Second, n.id+" ready", func() bool { return ready(n.URL) })
	}
	w1 := dialMember(t, n1.URL, "watcher1", "desk", testclient.WebSocket)
	alice := dialMember(t, n1.URL, "alice", "phone", testclient.WebSocket)
	carol := dialMember(t, n1.URL, "carol", "phone", testclient.WebSocket)
	w2 := dialMember(t, n2.URL, "watcher2", "desk", testclient.WebSocket)
	bob := dialMember(t, n2.URL, "bob", "phone", testclient.WebSocket)
	erin := dialMember(t, n2.URL, "erin", "phone", testclient.WebSocket)
	dave := dialMember(t, n2.URL, "dave", "phone", testclient.WebSocket)
	ctx := context.Background()
	for _, n := range []*lossNode{n1, n2} { // the rooms just joined hear the cluster
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := n.redis.Builder.Flush(fctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}

	// One call on each node: whichever node is reaped, one of them is hit.
	startCall := func(caller, callee *testclient.Client, calleeID string) string {
		t.Helper()
		id := mustOK(t, emit(t, caller, "call:create", map[string]any{"participants": []string{calleeID}})).Map("call")["meeting_id"].(string)
		mustOK(t, emit(t, caller, "call:notify", map[string]any{"call_id": id, "recipients": []string{calleeID}}))
		got(t, callee, "call:incoming", nil)
		mustOK(t, emit(t, callee, "call:accept", map[string]any{"call_id": id}))
		return id
	}
	calls := map[string][2]string{
		startCall(alice, carol, "carol"): {"alice", "carol"}, // on n1
		startCall(bob, erin, "erin"):     {"bob", "erin"},    // on n2
	}
	time.Sleep(1100 * time.Millisecond) // AOF fsyncs every second
	for _, c := range []*testclient.Client{w1, w2, alice, bob, carol, erin} {
		c.Reset()
	}

	srv.Stop()
	down := time.Now()
	eventually(t, 5*time.Second, "not ready", func() bool { return readyz(n1.URL) == 503 && readyz(n2.URL) == 503 })
	dave.Close() // its cleanup fails: Redis is down
	eventually(t, 5*time.Second, "dave's socket gone", func() bool { return n2.Node.Gateway.Conns() == 3 })
	for time.Since(down) < lossOutage {
		time.Sleep(100 * time.Millisecond)
	}
	srv.Restart()
	back := time.Now()
	for _, n := range []*lossNode{n1, n2} {
		eventually(t, 15*time.Second, n.id+" ready again", func() bool { return ready(n.URL) })
	}
	t.Logf("Redis back with its data after %v down: nodes ready %v later", back.Sub(down).Round(100*time.Millisecond), time.Since(back).Round(time.Millisecond))
	time.Sleep(2 * lossLease) // refreshes, claims, reaping jobs, restores, grace

	for _, w := range []*testclient.Client{w1, w2} {
		for _, ev := range w.Events() {
			t.Logf("watcher %s got %s %v at +%v after Redis came back", w.ID(), ev.Name, ev.Data, ev.At.Sub(back).Round(time.Millisecond))
		}
	}
	for _, u := range []string{"alice", "bob", "carol", "erin"} {
		n := w1.Count("presence:user_disconnected", testclient.Field("user_id", u)) + w2.Count("presence:user_disconnected", testclient.Field("user_id", u))
		if n != 0 {
			t.Errorf("%s announced offline %d times although their device stayed connected", u, n)
		}
	}
	for _, c := range []*testclient.Client{alice, bob, carol, erin} {
		if n := c.Count("call:ended", nil); n != 0 {
			t.Errorf("%s told its call ended (%v), although both participants stayed connected", c.ID(), c.Events())
		}
	}
	for id, who := range calls {
		m, err := n1.redis.Store.Meetings().Get(ctx, id)
		if err != nil {
			t.Errorf("the call of %v did not survive the outage: %v", who, err)
		} else if !m.Joined(who[0]) || !m.Joined(who[1]) {
			t.Errorf("call of %v after the outage: joined %v, %v", who, m.Joined(who[0]), m.Joined(who[1]))
		}
	}
	ps, err := n1.Node.Service.QueryPresence(ctx, service.PresenceQuery{UserIDs: []string{"dave"}})
	if err != nil || ps[0].Status != state.Offline {
		t.Errorf("dave, who left during the outage, is %+v (%v) %v after Redis came back", ps, err, time.Since(back).Round(time.Millisecond))
	}
	if n := w1.Count("presence:user_disconnected", testclient.Field("user_id", "dave")); n != 1 {
		t.Errorf("dave, who left during the outage, announced offline %d times, want 1", n)
	}
}
