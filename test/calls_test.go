package test

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/internal/testclient"
)

func createCall(t *testing.T, c *testclient.Client, participants ...string) string {
	t.Helper()
	a := mustOK(t, emit(t, c, "call:create", map[string]any{"title": "Call", "participants": participants}))
	call := a.Map("call")
	id, _ := call["meeting_id"].(string)
	if !strings.HasPrefix(id, "call_") || call["is_instant_call"] != true || call["status"] != "live" {
		t.Fatalf("call: %v", call)
	}
	return id
}

func TestInstantCallFlow(t *testing.T) {
	e := newEnv(t)
	alicePhone, aliceDesk := e.member("alice", "phone"), e.member("alice", "desktop")
	bobPhone, bobDesk := e.member("bob", "phone"), e.member("bob", "desktop")
	carol := e.member("carol", "phone")

	id := createCall(t, alicePhone, "bob")
	never(t, bobPhone, "call:incoming", nil) // no broadcast on create

	a := mustOK(t, emit(t, alicePhone, "call:notify", map[string]any{"call_id": id, "recipients": []string{"bob"},
		"caller": map[string]any{"display_name": "enc-name", "avatar": "enc-avatar"}}))
	if a["notified_count"] != float64(1) {
		t.Fatalf("notified_count: %v", a)
	}
	for _, c := range []*testclient.Client{bobPhone, bobDesk} {
		d := exactlyOnce(t, c, "call:incoming", nil)
		caller := d["caller"].(map[string]any)
		if caller["user_id"] != "alice" || caller["display_name"] != "enc-name" || caller["avatar"] != "enc-avatar" {
			t.Fatalf("caller: %v", caller)
		}
		if d["call"].(map[string]any)["meeting_id"] != id {
			t.Fatalf("call: %v", d)
		}
	}
	never(t, carol, "call:incoming", nil)
	never(t, aliceDesk, "call:incoming", nil)

	mustOK(t, emit(t, bobPhone, "call:accept", map[string]any{"call_id": id}))
	for _, c := range []*testclient.Client{alicePhone, aliceDesk, bobDesk} {
		d := exactlyOnce(t, c, "call:accepted", testclient.Field("user_id", "bob"))
		if d["call_id"] != id || d["timestamp"] != "2026-11-25T10:00:00.000Z" {
			t.Fatalf("accepted: %v", d)
		}
	}
	never(t, bobPhone, "call:accepted", nil)
	never(t, carol, "call:accepted", nil)
	// Accepting twice is a conflict.
	mustCode(t, emit(t, bobDesk, "call:accept", map[string]any{"call_id": id}), "conflict")

	// Both leave: the call ends completed and is deleted.
	mustOK(t, emit(t, alicePhone, "meeting:leave", map[string]any{"meeting_id": id}))
	exactlyOnce(t, bobPhone, "meeting:participant_left", testclient.Field("user_id", "alice"))
	mustOK(t, emit(t, bobPhone, "meeting:leave", map[string]any{"meeting_id": id}))
	for _, c := range []*testclient.Client{alicePhone, aliceDesk, bobPhone, bobDesk} {
		exactlyOnce(t, c, "call:ended", func(m map[string]any) bool { return m["call_id"] == id && m["reason"] == "completed" })
	}
	never(t, carol, "call:ended", nil)
	mustCode(t, emit(t, bobPhone, "call:accept", map[string]any{"call_id": id}), "not_found")
}

func TestCallDeclineEndsCall(t *testing.T) {
	e := newEnv(t)
	alice := e.member("alice", "phone")
	bob1, bob2 := e.member("bob", "phone"), e.member("bob", "desktop")
	id := createCall(t, alice, "bob")
	mustOK(t, emit(t, alice, "call:notify", map[string]any{"call_id": id, "recipients": []string{"bob"}}))
	d := got(t, bob1, "call:incoming", nil)
	if d["caller"].(map[string]any)["display_name"] != "Name of alice" {
		t.Fatalf("default caller name is the JWT name claim: %v", d)
	}
	mustOK(t, emit(t, bob1, "call:decline", map[string]any{"call_id": id}))
	exactlyOnce(t, alice, "call:declined", testclient.Field("user_id", "bob"))
	exactlyOnce(t, bob2, "call:declined", testclient.Field("user_id", "bob"))
	never(t, bob1, "call:declined", nil)
	for _, c := range []*testclient.Client{alice, bob1, bob2} {
		exactlyOnce(t, c, "call:ended", testclient.Field("reason", "declined"))
	}
}

func TestCallRingTimeout(t *testing.T) { testCallRingTimeout(t, newEnv(t)) }

// TestCallRingTimeoutRedis: the same on the Redis store, whose Ring writes
// the ring-timeout job in the ring's pipeline.
func TestCallRingTimeoutRedis(t *testing.T) {
	_, opt := withRedis(t, redistest.Start(t), "ring-node", nil)
	testCallRingTimeout(t, newEnv(t, opt))
}

func testCallRingTimeout(t *testing.T, e *env) {
	alice, bob, carol := e.member("alice", "phone"), e.member("bob", "phone"), e.member("carol", "phone")
	id := createCall(t, alice, "bob", "carol")
	mustOK(t, emit(t, alice, "call:notify", map[string]any{"call_id": id, "recipients": []string{"bob", "carol"}}))
	got(t, bob, "call:incoming", nil)
	mustOK(t, emit(t, carol, "call:decline", map[string]any{"call_id": id}))
	e.runJobs(59 * time.Second)
	never(t, bob, "call:ended", nil)
	e.runJobs(2 * time.Second)
	// The caller hears the timeout as a decline; bob's ring stops with
	// call:ended timeout, once, although the timeout also ends the call.
	exactlyOnce(t, alice, "call:declined", func(m map[string]any) bool { return m["user_id"] == "bob" && m["reason"] == "timeout" })
	exactlyOnce(t, bob, "call:ended", testclient.Field("reason", "timeout"))
	exactlyOnce(t, alice, "call:ended", testclient.Field("reason", "timeout"))
	exactlyOnce(t, carol, "call:ended", testclient.Field("reason", "timeout"))
}

func TestCallNotifyOfflineAndRefusals(t *testing.T) {
	e := newEnv(t)
	alice, bob, mallory := e.member("alice", "phone"), e.member("bob", "phone"), e.member("mallory", "phone")
	id := createCall(t, alice, "bob", "dave") // dave is offline
	a := mustOK(t, emit(t, alice, "call:notify", map[string]any{"call_id": id, "recipients": []string{"bob", "dave"}}))
	if a["notified_count"] != float64(1) {
		t.Fatalf("offline recipients are not counted: %v", a)
	}
	a = emit(t, alice, "call:notify", map[string]any{"call_id": id, "recipients": []string{"bob", "zed"}})
	mustCode(t, a, "invalid_payload")
	if !strings.Contains(a["error"].(string), "zed") {
		t.Fatalf("refusal does not name the non-participant: %v", a)
	}
	mustCode(t, emit(t, mallory, "call:notify", map[string]any{"call_id": id, "recipients": []string{"bob"}}), "not_found")
	mustCode(t, emit(t, mallory, "call:accept", map[string]any{"call_id": id}), "not_found")
	mustCode(t, emit(t, alice, "call:create", map[string]any{"participants": []string{}}), "invalid_payload")
	mustCode(t, emit(t, alice, "call:create", map[string]any{"participants": "bob"}), "invalid_payload")
	mustCode(t, emit(t, alice, "call:notify", map[string]any{"call_id": id}), "invalid_payload")
	mustCode(t, emit(t, alice, "call:notify", map[string]any{"call_id": id, "recipients": []int{1}}), "invalid_payload")
	var many []string
	for i := 0; i < 65; i++ {
		many = append(many, "u"+time.Duration(i).String())
	}
	mustCode(t, emit(t, alice, "call:create", map[string]any{"participants": many}), "too_large")
	mustCode(t, emit(t, alice, "call:accept", map[string]any{"call_id": "mtg_abc"}), "not_found")
	_ = bob
}

func TestCallEnvelopesPerRecipient(t *testing.T) {
	e := newEnv(t)
	alice, bob, carol := e.member("alice", "phone"), e.member("bob", "phone"), e.member("carol", "phone")
	id := createCall(t, alice, "bob", "carol")
	mustOK(t, emit(t, alice, "call:notify", map[string]any{"call_id": id, "recipients": []string{"bob", "carol"},
		"envelopes": map[string]any{"bob": map[string]any{"display_name": "x-bob"}, "carol": map[string]any{"display_name": "x-carol"}}}))
	if d := got(t, bob, "call:incoming", nil); d["caller"].(map[string]any)["display_name"] != "x-bob" {
		t.Fatalf("bob: %v", d)
	}
	if d := got(t, carol, "call:incoming", nil); d["caller"].(map[string]any)["display_name"] != "x-carol" {
		t.Fatalf("carol: %v", d)
	}
}

func TestCallCallerDisconnectCancels(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.member("alice", "phone"), e.member("bob", "phone")
	id := createCall(t, alice, "bob")
	mustOK(t, emit(t, alice, "call:notify", map[string]any{"call_id": id, "recipients": []string{"bob"}}))
	got(t, bob, "call:incoming", nil)
	alice.Close()
	exactlyOnce(t, bob, "call:ended", func(m map[string]any) bool { return m["call_id"] == id && m["reason"] == "cancelled" })
}
