package test

import (
	"context"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/internal/testclient"
	stateredis "github.com/switchboard/switchboard/state/redis"
)

// devices puts each user's devices on different nodes.
type people struct {
	alicePhone, aliceDesk *testclient.Client // n1, n2
	bobPhone, bobDesk     *testclient.Client // n2, n3
	carol                 *testclient.Client // n3
	watcher               *testclient.Client // n1
}

func connectPeople(t *testing.T, c *cluster) people {
	t.Helper()
	u := func(i int) string { return c.Nodes[i%len(c.Nodes)].URL() }
	defer c.dumpOnFailure(t) // after the dials, so it runs before their cleanups
	return people{
		watcher:    dialMember(t, u(0), "watcher", "desk", testclient.WebSocket),
		alicePhone: dialMember(t, u(0), "alice", "phone", testclient.WebSocket),
		aliceDesk:  dialMember(t, u(1), "alice", "desktop", testclient.Polling),
		bobPhone:   dialMember(t, u(1), "bob", "phone", testclient.WebSocket),
		bobDesk:    dialMember(t, u(2), "bob", "desktop", testclient.WebSocket),
		carol:      dialMember(t, u(2), "carol", "phone", testclient.WebSocket),
	}
}

func TestClusterFlowsSingleRedis(t *testing.T) {
	r := redistest.Start(t)
	c := startCluster(t, 3, "SWITCHBOARD_REDIS_URL="+r.URL())
	clusterFlows(t, c)
}

func TestClusterFlowsRedisCluster(t *testing.T) {
	rc := redistest.StartCluster(t)
	c := startCluster(t, 3, "SWITCHBOARD_REDIS_CLUSTER_ADDRS="+strings.Join(rc.Addrs(), ","))
	clusterFlows(t, c)
}

func TestClusterFlowsShardedPubSub(t *testing.T) {
	rc := redistest.StartCluster(t)
	c := startCluster(t, 3, "SWITCHBOARD_REDIS_CLUSTER_ADDRS="+strings.Join(rc.Addrs(), ","), "SWITCHBOARD_REDIS_SHARDED_PUBSUB=true")
	clusterFlows(t, c)
}

// clusterFlows drives every flow of the reference with each user's devices
// on different nodes and asserts exactly-once delivery per socket.
func clusterFlows(t *testing.T, c *cluster) {
	p := connectPeople(t, c)

	t.Run("presence", func(t *testing.T) {
		// bob's two devices (n2, n3) announced him once to the watcher (n1).
		eventually(t, waitFor, "bob online", func() bool {
			return p.watcher.Count("presence:user_connected", testclient.Field("user_id", "bob")) >= 1
		})
		time.Sleep(quiet)
		if n := p.watcher.Count("presence:user_connected", testclient.Field("user_id", "bob")); n != 1 {
			t.Fatalf("bob announced %d times", n)
		}
	})

	var meeting string
	t.Run("meeting lifecycle", func(t *testing.T) {
		a := mustOK(t, emit(t, p.alicePhone, "meeting:create", liveMeetingPayload("bob")))
		meeting = meetingID(t, a)
		for _, cl := range []*testclient.Client{p.aliceDesk, p.bobPhone, p.bobDesk} {
			exactlyOnce(t, cl, "meeting:created", nil)
		}
		never(t, p.carol, "meeting:created", nil)
		never(t, p.alicePhone, "meeting:created", nil)
		mustOK(t, emit(t, p.bobDesk, "meeting:register-participant", map[string]any{"meeting_id": meeting}))
		for _, cl := range []*testclient.Client{p.alicePhone, p.aliceDesk, p.bobPhone} {
			exactlyOnce(t, cl, "meeting:first_participant_joined", testclient.Field("meeting_id", meeting))
		}
		mustOK(t, emit(t, p.alicePhone, "meeting:register-participant", map[string]any{"meeting_id": meeting}))
		exactlyOnce(t, p.bobDesk, "meeting:participant_joined", testclient.Field("user_id", "alice"))
		never(t, p.bobPhone, "meeting:participant_joined", nil)
		mustOK(t, emit(t, p.aliceDesk, "meeting:update", map[string]any{"meeting_id": meeting, "title": "x"}))
		for _, cl := range []*testclient.Client{p.alicePhone, p.bobPhone, p.bobDesk} {
			exactlyOnce(t, cl, "meeting:updated", nil)
		}
	})

	t.Run("guest admission", func(t *testing.T) {
		tok := mustOK(t, emit(t, p.alicePhone, "meeting:generate_link", map[string]any{"meeting_id": meeting}))["token"].(string)
		exactlyOnce(t, p.bobDesk, "meeting:link_generated", testclient.Field("token", tok))
		code, reg := httpJSON(t, "POST", c.Nodes[2].URL()+"/api/meetings/external/register", map[string]any{"token": tok, "display_name": "g"}, "")
		if code != 201 {
			t.Fatalf("register %d %v", code, reg)
		}
		sid := reg["session_id"].(string)
		g, err := testclient.Dial(c.Nodes[2].URL(), testclient.Options{Namespace: "/external", Auth: map[string]any{"session_id": sid, "session_token": reg["session_token"]}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(g.Close)
		mustOK(t, emit(t, g, "meeting:guest_join", map[string]any{"meeting_id": meeting, "session_id": sid}))
		exactlyOnce(t, p.alicePhone, "meeting:guest_join", testclient.Field("session_id", sid))
		exactlyOnce(t, p.bobDesk, "meeting:guest_join", testclient.Field("session_id", sid))
		mustOK(t, emit(t, p.bobDesk, "meeting:admit_guest", map[string]any{"meeting_id": meeting, "session_id": sid}))
		exactlyOnce(t, g, "meeting:admission_status", testclient.Field("status", "admitted"))
		exactlyOnce(t, p.alicePhone, "meeting:admission_status", testclient.Field("status", "admitted"))
		mustOK(t, emit(t, g, "meeting:signal", map[string]any{"meeting_id": meeting, "to": map[string]any{"user_id": "alice", "device_id": "phone"}, "envelope": "e"}))
		exactlyOnce(t, p.alicePhone, "meeting:signal", nil)
		never(t, p.aliceDesk, "meeting:signal", nil)
	})

	t.Run("instant call", func(t *testing.T) {
		a := mustOK(t, emit(t, p.carol, "call:create", map[string]any{"participants": []string{"bob", "alice"}}))
		id := a.Map("call")["meeting_id"].(string)
		a = mustOK(t, emit(t, p.carol, "call:notify", map[string]any{"call_id": id, "recipients": []string{"bob", "alice"}}))
		if a["notified_count"] != float64(2) {
			t.Fatalf("notified %v", a)
		}
		for _, cl := range []*testclient.Client{p.bobPhone, p.bobDesk, p.alicePhone, p.aliceDesk} {
			exactlyOnce(t, cl, "call:incoming", nil)
		}
		mustOK(t, emit(t, p.bobPhone, "call:accept", map[string]any{"call_id": id}))
		for _, cl := range []*testclient.Client{p.carol, p.bobDesk, p.alicePhone, p.aliceDesk} {
			exactlyOnce(t, cl, "call:accepted", testclient.Field("user_id", "bob"))
		}
		mustOK(t, emit(t, p.aliceDesk, "call:decline", map[string]any{"call_id": id}))
		exactlyOnce(t, p.carol, "call:declined", testclient.Field("user_id", "alice"))
		exactlyOnce(t, p.alicePhone, "call:declined", testclient.Field("user_id", "alice"))
		mustOK(t, emit(t, p.carol, "meeting:leave", map[string]any{"meeting_id": id}))
		mustOK(t, emit(t, p.bobPhone, "meeting:leave", map[string]any{"meeting_id": id}))
		for _, cl := range []*testclient.Client{p.carol, p.bobPhone, p.bobDesk, p.alicePhone, p.aliceDesk} {
			exactlyOnce(t, cl, "call:ended", testclient.Field("call_id", id))
		}
	})

	t.Run("presence offline once", func(t *testing.T) {
		p.carol.Close()
		eventually(t, 5*time.Second, "carol offline", func() bool {
			return p.watcher.Count("presence:user_disconnected", testclient.Field("user_id", "carol")) >= 1
		})
		time.Sleep(quiet)
		if n := p.watcher.Count("presence:user_disconnected", testclient.Field("user_id", "carol")); n != 1 {
			t.Fatalf("carol offline announced %d times", n)
		}
	})

	t.Run("pub/sub metrics", func(t *testing.T) {
		// Every node published and received broadcasts, lost none, and its
		// pub/sub is healthy: what an SRE alerts on (docs/operating.md).
		for _, n := range c.Nodes {
			for series, ok := range map[string]func(float64) bool{
				"switchboard_pubsub_published_total": func(v float64) bool { return v > 0 },
				"switchboard_pubsub_received_total":  func(v float64) bool { return v > 0 },
				"switchboard_pubsub_ignored_total":   func(v float64) bool { return v > 0 },
				"switchboard_pubsub_channels":        func(v float64) bool { return v >= 1 },
				"switchboard_pubsub_healthy":         func(v float64) bool { return v == 1 },
				"switchboard_pubsub_dropped_total":   func(v float64) bool { return v == 0 },
				"switchboard_pubsub_malformed_total": func(v float64) bool { return v == 0 },
			} {
				if v := metricValue(t, n.URL(), series); !ok(v) {
					t.Errorf("node %s: %s = %v", n.ID, series, v)
				}
			}
		}
	})
}

// TestClusterNodeCrash kills a node with SIGKILL mid-call and mid-admission:
// a survivor reaps it within the lease plus a sweep, each affected user goes
// offline once, and no meeting, call, session or queue is lost.
func TestClusterNodeCrash(t *testing.T) {
	r := redistest.Start(t)
	c := startCluster(t, 3, "SWITCHBOARD_REDIS_URL="+r.URL())
	p := connectPeople(t, c)
	store := stateredis.New(goredis.NewClient(&goredis.Options{Addr: r.Addr()}), stateredis.Options{CloseClient: true})
	t.Cleanup(func() { _ = store.Close() })
	ctx := context.Background()

	// A call between alice (n1, n2) and carol (n3), carol's only device.
	a := mustOK(t, emit(t, p.alicePhone, "call:create", map[string]any{"participants": []string{"carol", "bob"}}))
	call := a.Map("call")["meeting_id"].(string)
	mustOK(t, emit(t, p.alicePhone, "call:notify", map[string]any{"call_id": call, "recipients": []string{"carol"}}))
	got(t, p.carol, "call:incoming", nil)
	mustOK(t, emit(t, p.carol, "call:accept", map[string]any{"call_id": call}))
	// A meeting with a guest waiting in the queue, its host on n1.
	m := meetingID(t, mustOK(t, emit(t, p.alicePhone, "meeting:create", liveMeetingPayload("bob"))))
	mustOK(t, emit(t, p.alicePhone, "meeting:register-participant", map[string]any{"meeting_id": m}))
	tok := mustOK(t, emit(t, p.alicePhone, "meeting:generate_link", map[string]any{"meeting_id": m}))["token"].(string)
	_, reg := httpJSON(t, "POST", c.Nodes[0].URL()+"/api/meetings/external/register", map[string]any{"token": tok, "display_name": "g"}, "")
	sid := reg["session_id"].(string)
	g, err := testclient.Dial(c.Nodes[0].URL(), testclient.Options{Namespace: "/external", Auth: map[string]any{"session_id": sid, "session_token": reg["session_token"]}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	mustOK(t, emit(t, g, "meeting:guest_join", map[string]any{"meeting_id": m, "session_id": sid}))
	got(t, p.alicePhone, "meeting:guest_join", nil)
	// A second guest waits from the node that will die and does not come
	// back: once reaped, its session is left and its queue entry removed.
	_, reg2 := httpJSON(t, "POST", c.Nodes[2].URL()+"/api/meetings/external/register", map[string]any{"token": tok, "display_name": "g2"}, "")
	sid2 := reg2["session_id"].(string)
	g2, err := testclient.Dial(c.Nodes[2].URL(), testclient.Options{Namespace: "/external", Auth: map[string]any{"session_id": sid2, "session_token": reg2["session_token"]}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g2.Close)
	mustOK(t, emit(t, g2, "meeting:guest_join", map[string]any{"meeting_id": m, "session_id": sid2}))
	got(t, p.alicePhone, "meeting:guest_join", testclient.Field("session_id", sid2))

	killed := time.Now()
	c.Nodes[2].kill9() // bob's desktop and carol go with it
	eventually(t, 3*time.Second+5*time.Second, "carol reaped offline", func() bool {
		return p.watcher.Count("presence:user_disconnected", testclient.Field("user_id", "carol")) >= 1
	})
	t.Logf("carol offline %v after kill -9 (lease 3s)", time.Since(killed).Round(100*time.Millisecond))
	time.Sleep(time.Second)
	if n := p.watcher.Count("presence:user_disconnected", testclient.Field("user_id", "carol")); n != 1 {
		t.Fatalf("carol offline announced %d times", n)
	}
	// bob still has his phone on n2: not offline.
	if n := p.watcher.Count("presence:user_disconnected", testclient.Field("user_id", "bob")); n != 0 {
		t.Fatalf("bob announced offline although his phone is connected")
	}
	// Carol left the call; alice is still in it, so it lives on.
	exactlyOnce(t, p.alicePhone, "meeting:participant_left", func(m map[string]any) bool { return m["user_id"] == "carol" && m["meeting_id"] == call })
	cm, err := store.Meetings().Get(ctx, call)
	if err != nil || !cm.Joined("alice") || cm.Joined("carol") {
		t.Fatalf("call after reaping: %+v %v", cm, err)
	}
	exactlyOnce(t, p.alicePhone, "meeting:guest_left", testclient.Field("session_id", sid2))
	q, err := store.Guests().Queue(ctx, m)
	if err != nil || len(q) != 1 || q[0].ID != sid {
		t.Fatalf("admission queue after the crash: %v %v", q, err)
	}
	if _, err := store.Meetings().Get(ctx, m); err != nil {
		t.Fatal(err)
	}
	// The survivors still serve the meeting: admit from n2 reaches the guest.
	mustOK(t, emit(t, p.aliceDesk, "meeting:register-participant", map[string]any{"meeting_id": m}))
	mustOK(t, emit(t, p.aliceDesk, "meeting:admit_guest", map[string]any{"meeting_id": m, "session_id": sid}))
	exactlyOnce(t, g, "meeting:admission_status", testclient.Field("status", "admitted"))
}

// TestClusterRedisRestart restarts Redis (AOF on) mid-test: nodes report
// not ready, answer unavailable, come back by themselves, and lose nothing.
func TestClusterRedisRestart(t *testing.T) {
	r := redistest.Start(t, redistest.WithAOF())
	c := startCluster(t, 3, "SWITCHBOARD_REDIS_URL="+r.URL())
	p := connectPeople(t, c)
	m := meetingID(t, mustOK(t, emit(t, p.alicePhone, "meeting:create", liveMeetingPayload("bob"))))
	for _, cl := range []*testclient.Client{p.bobPhone, p.bobDesk} {
		got(t, cl, "meeting:created", nil)
	}
	time.Sleep(1100 * time.Millisecond) // let AOF fsync (everysec)

	r.Stop()
	eventually(t, 10*time.Second, "nodes not ready", func() bool { return !ready(c.Nodes[0].URL()) && !ready(c.Nodes[1].URL()) })
	a, err := p.alicePhone.EmitTimeout("meeting:update", map[string]any{"meeting_id": m, "title": "y"}, 6*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	mustCode(t, a, "unavailable")

	r.Restart()
	for _, n := range c.Nodes {
		n.waitReady(20 * time.Second)
	}
	// State survived and broadcasts cross nodes again.
	p.bobDesk.Reset()
	eventually(t, 10*time.Second, "update after restart", func() bool {
		a, err := p.alicePhone.Emit("meeting:update", map[string]any{"meeting_id": m, "title": "z"})
		return err == nil && a.OK()
	})
	got(t, p.bobDesk, "meeting:updated", nil)
	got(t, p.bobPhone, "meeting:updated", nil)
}

// TestClusterRemindersOnce: three nodes poll the same scheduler; each
// reminder reaches each device exactly once, and still fires after the node
// that scheduled it is gone.
func TestClusterRemindersOnce(t *testing.T) {
	r := redistest.Start(t)
	c := startCluster(t, 3, "SWITCHBOARD_REDIS_URL="+r.URL(), "SWITCHBOARD_REMINDER_LEAD=2s")
	alice := dialMember(t, c.Nodes[1].URL(), "alice", "desktop", testclient.WebSocket)
	bob1 := dialMember(t, c.Nodes[1].URL(), "bob", "phone", testclient.WebSocket)
	bob2 := dialMember(t, c.Nodes[2].URL(), "bob", "desktop", testclient.WebSocket)
	// The meeting is created through n1, which then dies before anything is due.
	creator := dialMember(t, c.Nodes[0].URL(), "alice", "phone", testclient.WebSocket)
	start := time.Now().Add(4 * time.Second).UTC()
	p := liveMeetingPayload("bob")
	p["startTime"], p["endTime"] = start.Format(time.RFC3339Nano), start.Add(time.Hour).Format(time.RFC3339Nano)
	mustOK(t, emit(t, creator, "meeting:create", p))
	c.Nodes[0].kill9()
	for _, cl := range []*testclient.Client{alice, bob1, bob2} {
		eventually(t, 10*time.Second, "two reminders", func() bool { return cl.Count("meeting:reminder", nil) >= 2 })
	}
	time.Sleep(time.Second)
	for _, cl := range []*testclient.Client{alice, bob1, bob2} {
		if n := cl.Count("meeting:reminder", nil); n != 2 {
			t.Fatalf("%d reminders, want the lead one and the start one", n)
		}
	}
}
