package test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/testclient"
)

func TestPresenceAcrossDisconnectAndReconnect(t *testing.T) {
	e := newEnv(t)
	watcher := e.member("watcher", "desk")
	bob1 := e.member("bob", "phone")
	exactlyOnce(t, watcher, "presence:user_connected", func(m map[string]any) bool { return m["user_id"] == "bob" && m["status"] == "online" })
	bob2 := e.member("bob", "desktop")
	never(t, watcher, "presence:user_connected", func(m map[string]any) bool { return m["user_id"] == "bob" && m["status"] == "online" && false })
	if n := watcher.Count("presence:user_connected", testclient.Field("user_id", "bob")); n != 1 {
		t.Fatalf("second device announced again: %d", n)
	}
	// Heartbeat that changes nothing: no broadcast.
	mustOK(t, emit(t, bob1, "presence:heartbeat", nil))
	never(t, watcher, "presence:user_connected", func(m map[string]any) bool { return false })

	// One device leaves: still online. Both leave: offline after the grace.
	bob1.Close()
	bob2.Close()
	time.Sleep(200 * time.Millisecond)
	never(t, watcher, "presence:user_disconnected", nil)
	e.runJobs(6 * time.Second)
	d := exactlyOnce(t, watcher, "presence:user_disconnected", testclient.Field("user_id", "bob"))
	if d["last_seen"] == "" {
		t.Fatalf("%v", d)
	}
	code, body := httpJSONList(t, e.URL+"/api/presence/query", map[string]any{"user_ids": []string{"bob", "watcher", "nobody"}}, token(t, "watcher", "", ""))
	if code != 200 || body[0]["status"] != "offline" || body[0]["last_seen"] == nil || body[1]["status"] != "online" || body[2]["status"] != "offline" {
		t.Fatalf("query %d %v", code, body)
	}

	// A reload within the grace causes no flap.
	watcher.Reset()
	bob3 := e.member("bob", "phone")
	got(t, watcher, "presence:user_connected", func(m map[string]any) bool { return m["user_id"] == "bob" })
	time.Sleep(quiet)
	watcher.Reset()
	bob3.Close()
	time.Sleep(100 * time.Millisecond)
	e.member("bob", "phone")
	e.runJobs(6 * time.Second)
	never(t, watcher, "presence:user_disconnected", nil)
	never(t, watcher, "presence:user_connected", nil)
}

func TestPresenceBusyAndTTL(t *testing.T) {
	e := newEnv(t)
	watcher := e.member("watcher", "desk")
	alice, bob := e.member("alice", "phone"), e.member("bob", "phone")
	got(t, watcher, "presence:user_connected", testclient.Field("user_id", "bob"))
	time.Sleep(quiet)
	watcher.Reset()
	id := createCall(t, alice, "bob")
	exactlyOnce(t, watcher, "presence:user_connected", func(m map[string]any) bool { return m["user_id"] == "alice" && m["status"] == "busy" })
	mustOK(t, emit(t, alice, "meeting:leave", map[string]any{"meeting_id": id}))
	exactlyOnce(t, watcher, "presence:user_connected", func(m map[string]any) bool { return m["user_id"] == "alice" && m["status"] == "online" })

	// No heartbeat for the presence TTL: bob goes offline (after the grace);
	// a heartbeat brings him back online.
	mustOK(t, emit(t, alice, "presence:heartbeat", nil))
	e.Clock.Advance(121 * time.Second)
	mustOK(t, emit(t, alice, "presence:heartbeat", nil))
	e.Node.Gateway.SweepOnce(t.Context())
	e.runJobs(6 * time.Second)
	exactlyOnce(t, watcher, "presence:user_disconnected", testclient.Field("user_id", "bob"))
	never(t, watcher, "presence:user_disconnected", testclient.Field("user_id", "alice"))
	mustOK(t, emit(t, bob, "presence:heartbeat", nil))
	got(t, watcher, "presence:user_connected", func(m map[string]any) bool { return m["user_id"] == "bob" && m["status"] == "online" })
}

func TestHandshakeRefusalsAndLimits(t *testing.T) {
	e := newEnv(t, func(o *nodeOptions) { o.Service.MaxConnsPerUser = 2 })
	for _, a := range []map[string]any{nil, {"token": "garbage"}, {"token": token(t, "x", "", "") + "x"}} {
		_, err := testclient.Dial(e.URL, testclient.Options{Auth: a})
		if ce, ok := err.(*testclient.ConnectError); !ok || ce.Code() != "unauthorized" {
			t.Fatalf("%v: %v", a, err)
		}
	}
	e.member("alice", "a")
	e.member("alice", "b")
	_, err := testclient.Dial(e.URL, testclient.Options{Auth: map[string]any{"token": token(t, "alice", "c", "")}})
	if ce, ok := err.(*testclient.ConnectError); !ok || ce.Code() != "rate_limited" {
		t.Fatalf("third connection: %v", err)
	}
	// Rate limit: a burst past 40 events is refused with rate_limited.
	c := e.member("bob", "x")
	limited := 0
	for i := 0; i < 60; i++ {
		a, err := c.Emit("presence:heartbeat", nil)
		if err != nil {
			t.Fatal(err)
		}
		if a.Code() == "rate_limited" {
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("no event was rate limited")
	}
}

// Presence broadcasts reach websocket clients through the adapter's direct
// path (adapter.Local into internal/wstransport); one to 8 sockets or more
// is written by the transport's outbox; the transport's counters are on
// /metrics.
func TestBroadcastsTakeTheDirectPath(t *testing.T) {
	e := newEnv(t)
	watchers := make([]*testclient.Client, 8)
	for i := range watchers {
		watchers[i] = e.member(fmt.Sprint("watcher", i), "desk")
	}
	before := metricValue(t, e.URL, "switchboard_ws_direct_frames_total")
	writes := metricValue(t, e.URL, "switchboard_ws_broadcast_writes_total")
	e.member("bob", "phone")
	for _, w := range watchers {
		exactlyOnce(t, w, "presence:user_connected", testclient.Field("user_id", "bob"))
	}
	after := metricValue(t, e.URL, "switchboard_ws_direct_frames_total")
	if after < before+float64(len(watchers)) {
		t.Fatalf("direct frames %v -> %v: the broadcast went through the engine", before, after)
	}
	// Every watcher has the frame, so the outbox wrote it to each.
	if w := metricValue(t, e.URL, "switchboard_ws_broadcast_writes_total"); w < writes+float64(len(watchers)) || w-writes > after-before {
		t.Fatalf("broadcast writes %v -> %v for %v direct frames to %d watchers", writes, w, after-before, len(watchers))
	}
	if v := metricValue(t, e.URL, "switchboard_ws_slow_clients_total"); v != 0 {
		t.Fatalf("slow clients %v", v)
	}
}

// /metrics exports the live heap at the last GC and the heap goal, from
// which an SRE sizes GOMEMLIMIT, and GOGC, which the node lowers while quiet
// (docs/operating.md).
func TestMetricsExportLiveHeap(t *testing.T) {
	e := newEnv(t)
	e.member("alice", "desk")
	runtime.GC() // the node runs in this process
	for _, series := range []string{"go_gc_heap_live_bytes", "go_gc_heap_goal_bytes", "go_gc_gogc_percent"} {
		if v := metricValue(t, e.URL, series); v <= 0 {
			t.Errorf("%s = %v", series, v)
		}
	}
}

// With SWITCHBOARD_WS_BROADCAST_DELAY, a presence broadcast to many sockets
// waits in the node for the delay (an hour here, so nothing but the rule
// under test can deliver it), unless something is written to the socket at
// once: an ack then carries the waiting broadcast with it, in order.
func TestBroadcastDelayHoldsFanOutsNotAcks(t *testing.T) {
	e := newEnv(t, func(o *node.Options) { o.WSBroadcastDelay = time.Hour })
	watchers := make([]*testclient.Client, 8)
	for i := range watchers {
		watchers[i] = e.member(fmt.Sprintf("watcher%d", i), "desk")
	}
	e.member("bob", "phone")
	bob := testclient.Field("user_id", "bob")
	never(t, watchers[1], "presence:user_connected", bob)

	mustOK(t, emit(t, watchers[0], "presence:heartbeat", nil))
	got(t, watchers[0], "presence:user_connected", bob)
	never(t, watchers[1], "presence:user_connected", bob)
}
