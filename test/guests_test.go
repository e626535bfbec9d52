package test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/testclient"
)

func httpJSON(t *testing.T, method, url string, body any, bearer string) (int, map[string]any) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// guestSetup creates a meeting that allows guests, a link, and a registered
// session; it returns the meeting id, session id and token.
func guestSetup(t *testing.T, e *env, owner *testclient.Client) (string, string, string) {
	t.Helper()
	id := meetingID(t, mustOK(t, emit(t, owner, "meeting:create", meetingPayload("bob"))))
	tok := mustOK(t, emit(t, owner, "meeting:generate_link", map[string]any{"meeting_id": id}))["token"].(string)
	code, info := httpJSON(t, "GET", e.URL+"/api/meetings/external/join/"+tok, nil, "")
	if code != 200 || info["meeting"].(map[string]any)["meeting_id"] != id || info["meeting"].(map[string]any)["has_active_participants"] != false {
		t.Fatalf("join info %d %v", code, info)
	}
	code, reg := httpJSON(t, "POST", e.URL+"/api/meetings/external/register", map[string]any{"token": tok, "display_name": "enc-guest", "keys": map[string]any{"k": 1}}, "")
	if code != 201 {
		t.Fatalf("register %d %v", code, reg)
	}
	return id, reg["session_id"].(string), reg["session_token"].(string)
}

func TestGuestAdmissionFlow(t *testing.T) {
	e := newEnv(t)
	alice, bob, bobDesk := e.member("alice", "phone"), e.member("bob", "phone"), e.member("bob", "desktop")
	id, sid, stok := guestSetup(t, e, alice)
	g := e.guest(sid, stok)

	// Before any participant joined: conflict.
	mustCode(t, emit(t, g, "meeting:guest_join", map[string]any{"meeting_id": id, "session_id": sid}), "conflict")
	mustOK(t, emit(t, alice, "meeting:register-participant", map[string]any{"meeting_id": id}))
	exactlyOnce(t, g, "meeting:first_participant_joined", testclient.Field("meeting_id", id))
	mustOK(t, emit(t, bob, "meeting:register-participant", map[string]any{"meeting_id": id}))

	mustOK(t, emit(t, g, "meeting:guest_join", map[string]any{"meeting_id": id, "session_id": sid, "display_name": "enc-new"}))
	for _, c := range []*testclient.Client{alice, bob} {
		d := exactlyOnce(t, c, "meeting:guest_join", testclient.Field("session_id", sid))
		if d["display_name"] != "enc-new" || d["meeting_id"] != id {
			t.Fatalf("guest_join: %v", d)
		}
	}
	never(t, bobDesk, "meeting:guest_join", nil) // not joined
	mustCode(t, emit(t, g, "meeting:guest_join", map[string]any{"meeting_id": id, "session_id": sid}), "conflict")

	// Guests may not emit member events.
	mustCode(t, emit(t, g, "meeting:admit_guest", map[string]any{"meeting_id": id, "session_id": sid}), "forbidden")
	// A participant that has not joined may not decide.
	mustCode(t, emit(t, bobDesk, "meeting:admit_guest", map[string]any{"meeting_id": id, "session_id": sid}), "forbidden")

	mustOK(t, emit(t, bob, "meeting:admit_guest", map[string]any{"meeting_id": id, "session_id": sid}))
	d := exactlyOnce(t, g, "meeting:admission_status", nil)
	if d["status"] != "admitted" || d["admitted_by"] != "bob" {
		t.Fatalf("admission: %v", d)
	}
	exactlyOnce(t, alice, "meeting:admission_status", testclient.Field("status", "admitted"))
	never(t, bob, "meeting:admission_status", nil)
	// First decision wins.
	mustCode(t, emit(t, alice, "meeting:decline_guest", map[string]any{"meeting_id": id, "session_id": sid}), "conflict")

	// Relay between the admitted guest and a joined member.
	mustOK(t, emit(t, g, "meeting:signal", map[string]any{"meeting_id": id, "to": map[string]any{"user_id": "bob", "device_id": "phone"}, "envelope": "opaque-1"}))
	d = exactlyOnce(t, bob, "meeting:signal", nil)
	if d["envelope"] != "opaque-1" || d["from"].(map[string]any)["session_id"] != sid {
		t.Fatalf("signal: %v", d)
	}
	never(t, bobDesk, "meeting:signal", nil)
	mustOK(t, emit(t, bob, "meeting:signal", map[string]any{"meeting_id": id, "to": map[string]any{"session_id": sid}, "envelope": map[string]any{"c": "x"}}))
	exactlyOnce(t, g, "meeting:signal", func(m map[string]any) bool { return m["from"].(map[string]any)["user_id"] == "bob" })
	mustCode(t, emit(t, bobDesk, "meeting:signal", map[string]any{"meeting_id": id, "to": map[string]any{"session_id": sid}, "envelope": "x"}), "forbidden")

	// The guest leaves: guest_left to joined participants.
	mustOK(t, emit(t, g, "meeting:leave", map[string]any{"meeting_id": id}))
	exactlyOnce(t, alice, "meeting:guest_left", testclient.Field("session_id", sid))
}

func TestGuestDeclineCooldownAndDisconnect(t *testing.T) {
	e := newEnv(t)
	alice := e.member("alice", "phone")
	id, sid, stok := guestSetup(t, e, alice)
	mustOK(t, emit(t, alice, "meeting:register-participant", map[string]any{"meeting_id": id}))
	g := e.guest(sid, stok)
	mustOK(t, emit(t, g, "meeting:guest_join", map[string]any{"meeting_id": id, "session_id": sid}))
	mustOK(t, emit(t, alice, "meeting:decline_guest", map[string]any{"meeting_id": id, "session_id": sid}))
	if d := exactlyOnce(t, g, "meeting:admission_status", nil); d["status"] != "declined" {
		t.Fatalf("%v", d)
	}
	mustCode(t, emit(t, g, "meeting:guest_join", map[string]any{"meeting_id": id, "session_id": sid}), "rate_limited")
	e.Clock.Advance(6 * time.Second)
	mustOK(t, emit(t, g, "meeting:guest_join", map[string]any{"meeting_id": id, "session_id": sid}))

	// Disconnect and reconnect within the grace: nothing broadcast.
	g.Close()
	time.Sleep(200 * time.Millisecond)
	g2 := e.guest(sid, stok)
	e.runJobs(6 * time.Second)
	never(t, alice, "meeting:guest_left", nil)
	// Disconnect for longer than the grace: guest_left.
	g2.Close()
	time.Sleep(200 * time.Millisecond)
	e.runJobs(6 * time.Second)
	exactlyOnce(t, alice, "meeting:guest_left", testclient.Field("session_id", sid))
}

func TestGuestHandshakeAndREST(t *testing.T) {
	e := newEnv(t)
	alice := e.member("alice", "phone")
	_, sid, _ := guestSetup(t, e, alice)
	for _, a := range []map[string]any{nil, {"session_id": sid}, {"session_id": sid, "session_token": "wrong"}, {"session_id": "nope", "session_token": "x"}} {
		_, err := testclient.Dial(e.URL, testclient.Options{Namespace: "/external", Auth: a})
		ce, ok := err.(*testclient.ConnectError)
		if !ok || ce.Code() != "unauthorized" {
			t.Fatalf("auth %v: want unauthorized connect_error, got %v", a, err)
		}
	}
	code, body := httpJSON(t, "GET", e.URL+"/api/meetings/external/join/00000000-0000-4000-8000-000000000000", nil, "")
	if code != 404 || body["code"] != "not_found" {
		t.Fatalf("%d %v", code, body)
	}
	code, body = httpJSON(t, "POST", e.URL+"/api/meetings/external/register", map[string]any{"token": 5}, "")
	if code != 400 || body["code"] != "invalid_payload" {
		t.Fatalf("%d %v", code, body)
	}
	code, _ = httpJSON(t, "GET", e.URL+"/api/meetings", nil, "")
	if code != 401 {
		t.Fatalf("unauthenticated list: %d", code)
	}
	code, body = httpJSON(t, "GET", e.URL+"/api/meetings?when=upcoming", nil, token(t, "alice", "", ""))
	if code != 200 || len(body["meetings"].([]any)) != 1 {
		t.Fatalf("list %d %v", code, body)
	}
}

func httpJSONList(t *testing.T, url string, body any, bearer string) (int, []map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}
