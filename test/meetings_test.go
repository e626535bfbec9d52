package test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/testclient"
	"github.com/switchboard/switchboard/state"
)

func meetingPayload(participants ...string) map[string]any {
	return map[string]any{
		"title": "ciphertext-title", "description": "ciphertext-desc",
		"startTime": "2026-11-25T11:00:00+01:00", "endTime": "2026-11-25T12:00:00Z",
		"participants": participants, "allowExternal": true,
	}
}

// liveMeetingPayload is meetingPayload for tests on the real clock: it
// starts in an hour and ends in two.
func liveMeetingPayload(participants ...string) map[string]any {
	p := meetingPayload(participants...)
	now := time.Now().UTC()
	p["startTime"] = now.Add(time.Hour).Format(time.RFC3339)
	p["endTime"] = now.Add(2 * time.Hour).Format(time.RFC3339)
	return p
}

func meetingID(t *testing.T, a testclient.Ack) string {
	t.Helper()
	m := a.Map("meeting")
	id, _ := m["meeting_id"].(string)
	if !strings.HasPrefix(id, "mtg_") || len(id) != 36 {
		t.Fatalf("bad meeting id %q", id)
	}
	return id
}

// snapshot returns the stored meeting, to prove a refusal changed nothing.
func (e *env) snapshot(id string) *state.Meeting {
	e.t.Helper()
	m, err := e.Node.Service.Store().Meetings().Get(context.Background(), id)
	if err != nil {
		e.t.Fatalf("get %s: %v", id, err)
	}
	return m
}

func TestMeetingLifecycle(t *testing.T) {
	e := newEnv(t)
	alicePhone, aliceDesk := e.member("alice", "phone"), e.member("alice", "desktop")
	bobPhone, bobDesk := e.member("bob", "phone"), e.member("bob", "desktop")
	carol := e.member("carol", "phone")

	// create: ack to the creator's socket, meeting:created to every other
	// socket of every participant, nobody else.
	a := mustOK(t, emit(t, alicePhone, "meeting:create", meetingPayload("bob", "bob", "alice")))
	id := meetingID(t, a)
	m := a.Map("meeting")
	if m["start_time"] != "2026-11-25T10:00:00.000Z" || m["status"] != "scheduled" || m["created_by"] != "alice" {
		t.Fatalf("meeting fields: %v", m)
	}
	if ps, _ := m["participants"].([]any); len(ps) != 2 {
		t.Fatalf("participants not deduplicated: %v", m["participants"])
	}
	for _, c := range []*testclient.Client{aliceDesk, bobPhone, bobDesk} {
		d := exactlyOnce(t, c, "meeting:created", nil)
		if d["meeting"].(map[string]any)["meeting_id"] != id {
			t.Fatalf("meeting:created for the wrong meeting: %v", d)
		}
		if ed, _ := d["encrypted_data"].(map[string]any); ed["title"] != "ciphertext-title" {
			t.Fatalf("encrypted_data not relayed: %v", d)
		}
	}
	never(t, alicePhone, "meeting:created", nil)
	never(t, carol, "meeting:created", nil)

	// update by owner.
	a = mustOK(t, emit(t, alicePhone, "meeting:update", map[string]any{"meeting_id": id, "title": "new-title"}))
	if a.Map("meeting")["title"] != "new-title" {
		t.Fatalf("update ack: %v", a)
	}
	exactlyOnce(t, bobPhone, "meeting:updated", nil)
	exactlyOnce(t, aliceDesk, "meeting:updated", nil)
	never(t, carol, "meeting:updated", nil)

	// register: first participant → first_participant_joined + started.
	mustOK(t, emit(t, bobPhone, "meeting:register-participant", map[string]any{"meeting_id": id}))
	for _, c := range []*testclient.Client{alicePhone, aliceDesk, bobDesk} {
		exactlyOnce(t, c, "meeting:first_participant_joined", testclient.Field("meeting_id", id))
		exactlyOnce(t, c, "meeting:started", testclient.Field("meeting_id", id))
	}
	never(t, bobPhone, "meeting:first_participant_joined", nil)
	if got := e.snapshot(id); got.Status != state.StatusLive || got.ActiveCount != 1 {
		t.Fatalf("after register: status %s active %d", got.Status, got.ActiveCount)
	}
	// idempotent per device.
	mustOK(t, emit(t, bobPhone, "meeting:register-participant", map[string]any{"meeting_id": id}))
	// alice joins: participant_joined to joined participants (bob's phone only).
	mustOK(t, emit(t, alicePhone, "meeting:register-participant", map[string]any{"meeting_id": id}))
	exactlyOnce(t, bobPhone, "meeting:participant_joined", testclient.Field("user_id", "alice"))
	never(t, bobDesk, "meeting:participant_joined", nil)
	// starting a live meeting is a conflict.
	mustCode(t, emit(t, alicePhone, "meeting:start", map[string]any{"meeting_id": id}), "conflict")

	// generate link: owner, allow_external → link_generated to joined participants.
	a = mustOK(t, emit(t, alicePhone, "meeting:generate_link", map[string]any{"meeting_id": id}))
	tok, _ := a["token"].(string)
	if len(tok) != 36 {
		t.Fatalf("token %q", tok)
	}
	exactlyOnce(t, bobPhone, "meeting:link_generated", testclient.Field("token", tok))
	never(t, aliceDesk, "meeting:link_generated", nil)

	// invite-live: carol gets live_invite_sent.
	mustOK(t, emit(t, bobPhone, "meeting:invite-live", map[string]any{"meeting_id": id, "user_ids": []string{"carol"}}))
	d := exactlyOnce(t, carol, "meeting:live_invite_sent", nil)
	if d["invited_by"] != "bob" || d["meeting"].(map[string]any)["meeting_id"] != id {
		t.Fatalf("live_invite_sent: %v", d)
	}

	// leave: participant_left to the joined.
	mustOK(t, emit(t, bobPhone, "meeting:leave", map[string]any{"meeting_id": id}))
	exactlyOnce(t, alicePhone, "meeting:participant_left", testclient.Field("user_id", "bob"))
	if got := e.snapshot(id); got.ActiveCount != 1 {
		t.Fatalf("active_count %d", got.ActiveCount)
	}
}

func TestMeetingAuthorizationRefusals(t *testing.T) {
	e := newEnv(t)
	alice, bob, mallory := e.member("alice", "phone"), e.member("bob", "phone"), e.member("mallory", "phone")
	id := meetingID(t, mustOK(t, emit(t, alice, "meeting:create", meetingPayload("bob"))))
	before := e.snapshot(id)

	cases := []struct {
		name  string
		c     *testclient.Client
		event string
		body  map[string]any
		code  string
	}{
		{"non-participant update", mallory, "meeting:update", map[string]any{"meeting_id": id, "title": "x"}, "not_found"},
		{"member update", bob, "meeting:update", map[string]any{"meeting_id": id, "title": "x"}, "forbidden"},
		{"member start", bob, "meeting:start", map[string]any{"meeting_id": id}, "forbidden"},
		{"non-participant start", mallory, "meeting:start", map[string]any{"meeting_id": id}, "not_found"},
		{"non-participant register", mallory, "meeting:register-participant", map[string]any{"meeting_id": id}, "not_found"},
		{"member link", bob, "meeting:generate_link", map[string]any{"meeting_id": id}, "forbidden"},
		{"non-participant link", mallory, "meeting:generate_link", map[string]any{"meeting_id": id}, "not_found"},
		{"invite while scheduled", alice, "meeting:invite-live", map[string]any{"meeting_id": id, "user_ids": []string{"x"}}, "conflict"},
		{"leave when not joined", bob, "meeting:leave", map[string]any{"meeting_id": id}, "conflict"},
		{"unknown meeting", alice, "meeting:start", map[string]any{"meeting_id": "mtg_00000000000000000000000000000000"}, "not_found"},
		{"bad times", alice, "meeting:update", map[string]any{"meeting_id": id, "endTime": "2026-11-25T09:00:00Z"}, "invalid_payload"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mustCode(t, emit(t, tc.c, tc.event, tc.body), tc.code)
			if after := e.snapshot(id); after.Version != before.Version || after.Title != before.Title {
				t.Fatalf("refusal changed state: version %d → %d", before.Version, after.Version)
			}
		})
	}
	never(t, bob, "meeting:updated", nil)
}

func TestMeetingMalformedPayloads(t *testing.T) {
	e := newEnv(t)
	alice := e.member("alice", "phone")
	long := strings.Repeat("x", 5000)
	huge := strings.Repeat("y", 70<<10)
	cases := []struct {
		name  string
		event string
		body  any
		code  string
	}{
		{"no payload", "meeting:create", nil, "invalid_payload"},
		{"not an object", "meeting:create", "hello", "invalid_payload"},
		{"array", "meeting:create", []int{1, 2}, "invalid_payload"},
		{"title wrong type", "meeting:create", map[string]any{"title": 5, "startTime": "2026-11-25T11:00:00Z", "endTime": "2026-11-25T12:00:00Z"}, "invalid_payload"},
		{"missing times", "meeting:create", map[string]any{"title": "t"}, "invalid_payload"},
		{"bad time", "meeting:create", map[string]any{"title": "t", "startTime": "tomorrow", "endTime": "2026-11-25T12:00:00Z"}, "invalid_payload"},
		{"end before start", "meeting:create", map[string]any{"title": "t", "startTime": "2026-11-25T12:00:00Z", "endTime": "2026-11-25T11:00:00Z"}, "invalid_payload"},
		{"participants wrong type", "meeting:create", map[string]any{"title": "t", "startTime": "2026-11-25T11:00:00Z", "endTime": "2026-11-25T12:00:00Z", "participants": "bob"}, "invalid_payload"},
		{"oversized title", "meeting:create", map[string]any{"title": long, "startTime": "2026-11-25T11:00:00Z", "endTime": "2026-11-25T12:00:00Z"}, "too_large"},
		{"oversized payload", "meeting:create", map[string]any{"title": "t", "description": huge}, "too_large"},
		{"too many participants", "meeting:create", func() map[string]any {
			p := meetingPayload()
			var ids []string
			for i := 0; i < 300; i++ {
				ids = append(ids, "user"+strings.Repeat("z", i%5)+string(rune('a'+i%26))+time.Duration(i).String())
			}
			p["participants"] = ids
			return p
		}(), "too_large"},
		{"meeting_id wrong type", "meeting:start", map[string]any{"meeting_id": 12}, "invalid_payload"},
		{"meeting_id missing", "meeting:register-participant", map[string]any{}, "invalid_payload"},
		{"meeting_id control chars", "meeting:leave", map[string]any{"meeting_id": "mtg_\x00"}, "invalid_payload"},
		{"user_ids wrong type", "meeting:invite-live", map[string]any{"meeting_id": "mtg_x", "user_ids": "carol"}, "invalid_payload"},
		{"unknown event", "meeting:explode", map[string]any{}, "invalid_payload"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mustCode(t, emit(t, alice, tc.event, tc.body), tc.code)
		})
	}
	// Nothing was created by any refusal.
	ms, err := e.Node.Service.Store().Meetings().ListForUser(context.Background(), "alice", true, e.Clock.Now(), 0, 10)
	if err != nil || len(ms) != 0 {
		t.Fatalf("refusals created meetings: %v %v", len(ms), err)
	}
	// The socket still works.
	mustOK(t, emit(t, alice, "meeting:create", meetingPayload()))
}

func TestMeetingEnvelopesReachOnlyTheirRecipient(t *testing.T) {
	e := newEnv(t)
	alice := e.member("alice", "phone")
	bob1, bob2 := e.member("bob", "phone"), e.member("bob", "desktop")
	carol := e.member("carol", "phone")
	p := meetingPayload("bob", "carol")
	p["envelopes"] = map[string]any{
		"bob":   map[string]any{"title": "for-bob", "description": "d-bob", "avatar": "a-bob"},
		"carol": map[string]any{"title": "for-carol", "description": "d-carol"},
	}
	mustOK(t, emit(t, alice, "meeting:create", p))
	for _, c := range []*testclient.Client{bob1, bob2} {
		d := exactlyOnce(t, c, "meeting:created", nil)
		if ed := d["encrypted_data"].(map[string]any); ed["title"] != "for-bob" || ed["avatar"] != "a-bob" {
			t.Fatalf("bob got %v", ed)
		}
	}
	d := exactlyOnce(t, carol, "meeting:created", nil)
	if ed := d["encrypted_data"].(map[string]any); ed["title"] != "for-carol" {
		t.Fatalf("carol got %v", ed)
	}
}

func TestMeetingRemindersAndEnd(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.member("alice", "phone"), e.member("bob", "phone")
	// Starts at 11:00, now is 10:00.
	id := meetingID(t, mustOK(t, emit(t, alice, "meeting:create", map[string]any{
		"title": "t", "startTime": "2026-11-25T11:00:00Z", "endTime": "2026-11-25T12:00:00Z", "participants": []string{"bob"}})))
	e.runJobs(44 * time.Minute)
	never(t, bob, "meeting:reminder", nil)
	e.runJobs(time.Minute) // 10:45
	d := exactlyOnce(t, bob, "meeting:reminder", testclient.Field("minutes_before", 15))
	if d["meeting_id"] != id || d["starts_at"] != "2026-11-25T11:00:00.000Z" {
		t.Fatalf("reminder: %v", d)
	}
	exactlyOnce(t, alice, "meeting:reminder", testclient.Field("minutes_before", 15))
	e.runJobs(15 * time.Minute) // 11:00
	exactlyOnce(t, bob, "meeting:reminder", testclient.Field("minutes_before", 0))
	// Nobody joined: at end_time the meeting ends and participants hear it.
	e.runJobs(time.Hour)
	d = got(t, bob, "meeting:updated", nil)
	if d["meeting"].(map[string]any)["status"] != "ended" {
		t.Fatalf("meeting not ended: %v", d)
	}
	mustCode(t, emit(t, bob, "meeting:register-participant", map[string]any{"meeting_id": id}), "gone")
	mustCode(t, emit(t, alice, "meeting:update", map[string]any{"meeting_id": id, "title": "x"}), "conflict")
}
