package service_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/service"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/memory"
)

// recorder is an Emitter that keeps every delivery.
type recorder struct {
	mu sync.Mutex
	ds []service.Delivery
}

func (r *recorder) Emit(d service.Delivery) { r.mu.Lock(); r.ds = append(r.ds, d); r.mu.Unlock() }

func (r *recorder) take() []service.Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.ds
	r.ds = nil
	return out
}

func (r *recorder) find(event string) []service.Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []service.Delivery
	for _, d := range r.ds {
		if d.Event == event {
			out = append(out, d)
		}
	}
	return out
}

type fixture struct {
	svc *service.Service
	rec *recorder
	now time.Time
	mu  sync.Mutex
}

func (f *fixture) clock() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{rec: &recorder{}, now: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	f.svc = service.New(service.DefaultConfig(), memory.New(f.clock), f.rec, f.clock, zerolog.Nop())
	return f
}

func actor(user, conn string) service.Actor {
	return service.Actor{UserID: user, DeviceID: "d-" + conn, ConnID: conn, Name: user}
}

func (f *fixture) connect(t *testing.T, a service.Actor) {
	t.Helper()
	if err := f.svc.Connect(context.Background(), a); err != nil {
		t.Fatal(err)
	}
}

func code(err error) string {
	var e *service.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func TestCreateMeetingValidation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := func(v string) *string { return &v }
	ok := service.CreateMeetingRequest{Title: s("t"), StartTime: s("2026-11-25T11:00:00Z"), EndTime: s("2026-11-25T12:00:00Z")}
	cases := []struct {
		name string
		mod  func(r *service.CreateMeetingRequest)
		code string
	}{
		{"ok", func(*service.CreateMeetingRequest) {}, ""},
		{"snake_case aliases", func(r *service.CreateMeetingRequest) {
			r.StartTime, r.EndTime = nil, nil
			r.StartTimeAlt, r.EndTimeAlt = s("2026-11-25T11:00:00Z"), s("2026-11-25T12:00:00Z")
		}, ""},
		{"missing title", func(r *service.CreateMeetingRequest) { r.Title = nil }, service.CodeInvalidPayload},
		{"missing end", func(r *service.CreateMeetingRequest) { r.EndTime = nil }, service.CodeInvalidPayload},
		{"end equals start", func(r *service.CreateMeetingRequest) { r.EndTime = s("2026-11-25T11:00:00Z") }, service.CodeInvalidPayload},
		{"not RFC 3339", func(r *service.CreateMeetingRequest) { r.StartTime = s("11:00") }, service.CodeInvalidPayload},
		{"empty participant id", func(r *service.CreateMeetingRequest) { r.Participants = []string{""} }, service.CodeInvalidPayload},
		{"long title", func(r *service.CreateMeetingRequest) { r.Title = s(string(make([]byte, 4097))) }, service.CodeTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ok
			tc.mod(&r)
			_, err := f.svc.CreateMeeting(ctx, actor("alice", "c1"), r)
			if got := code(err); got != tc.code {
				t.Fatalf("code %q, want %q (%v)", got, tc.code, err)
			}
		})
	}
}

func TestCreateMeetingAudienceAndEnvelopes(t *testing.T) {
	f := newFixture(t)
	s := func(v string) *string { return &v }
	m, err := f.svc.CreateMeeting(context.Background(), actor("alice", "c1"), service.CreateMeetingRequest{
		Title: s("t"), StartTime: s("2026-11-25T11:00:00Z"), EndTime: s("2026-11-25T12:00:00Z"),
		Participants: []string{"bob", "alice", "bob", "carol"},
		Envelopes:    map[string]service.EncryptedData{"bob": {Title: "b"}, "carol": {Title: "c"}, "mallory": {Title: "m"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Participants) != 3 || m.Participants[0].Role != state.RoleOwner {
		t.Fatalf("participants %+v", m.Participants)
	}
	ds := f.rec.find("meeting:created")
	byRoom := map[string]any{}
	for _, d := range ds {
		if len(d.Rooms) != 1 || len(d.Except) != 1 || d.Except[0] != "c1" {
			t.Fatalf("delivery %+v", d)
		}
		byRoom[d.Rooms[0]] = d.Data.(map[string]any)["encrypted_data"]
	}
	if len(byRoom) != 3 {
		t.Fatalf("want one delivery per participant, got %v", byRoom)
	}
	if byRoom["user:bob"].(service.EncryptedData).Title != "b" || byRoom["user:carol"].(service.EncryptedData).Title != "c" {
		t.Fatalf("envelopes crossed: %v", byRoom)
	}
	if _, ok := byRoom["user:mallory"]; ok {
		t.Fatal("a non-participant's envelope was delivered")
	}
}

func TestNotifyCountsOnlineUsersAndTimeoutTellsOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	alice := actor("alice", "a1")
	f.connect(t, alice)
	f.connect(t, actor("bob", "b1"))
	f.connect(t, actor("bob", "b2"))
	call, err := f.svc.CreateCall(ctx, alice, service.CreateCallRequest{Participants: []string{"bob", "dave"}})
	if err != nil {
		t.Fatal(err)
	}
	n, err := f.svc.Notify(ctx, alice, service.NotifyRequest{CallID: call.ID, Recipients: []string{"bob", "dave"}})
	if err != nil || n != 1 {
		t.Fatalf("notified %d, %v", n, err)
	}
	inc := f.rec.find("call:incoming")
	if len(inc) != 1 || inc[0].Rooms[0] != "user:bob" {
		t.Fatalf("incoming %+v", inc)
	}
	f.rec.take()
	f.advance(61 * time.Second)
	if _, err := f.svc.RunDue(ctx, 100); err != nil {
		t.Fatal(err)
	}
	ended := f.rec.find("call:ended")
	// bob is told of his timeout; dave is still invited (offline), so the
	// call goes on and nobody else hears call:ended.
	if len(ended) != 1 || ended[0].Rooms[0] != "user:bob" {
		t.Fatalf("ended %+v", ended)
	}
	if d := f.rec.find("call:declined"); len(d) != 1 || d[0].Data.(map[string]any)["reason"] != "timeout" {
		t.Fatalf("declined %+v", d)
	}
}

func TestDecideFirstDecisionWins(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	alice, bob := actor("alice", "a1"), actor("bob", "b1")
	s := func(v string) *string { return &v }
	yes := true
	m, err := f.svc.CreateMeeting(ctx, alice, service.CreateMeetingRequest{Title: s("t"), StartTime: s("2026-11-25T10:00:00Z"),
		EndTime: s("2026-11-25T12:00:00Z"), Participants: []string{"bob"}, AllowExternal: &yes})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []service.Actor{alice, bob} {
		if _, err := f.svc.RegisterParticipant(ctx, a, service.MeetingRef{MeetingID: m.ID}); err != nil {
			t.Fatal(err)
		}
	}
	l, err := f.svc.GenerateLink(ctx, alice, service.MeetingRef{MeetingID: m.ID})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := f.svc.Register(ctx, service.RegisterRequest{Token: l.Token, DisplayName: s("g")})
	if err != nil {
		t.Fatal(err)
	}
	g := service.Guest{SessionID: reg.SessionID, MeetingID: m.ID, ConnID: "g1"}
	if _, err := f.svc.AuthenticateGuest(ctx, reg.SessionID, reg.SessionToken); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.AuthenticateGuest(ctx, reg.SessionID, "nope"); code(err) != service.CodeUnauthorized {
		t.Fatalf("wrong token: %v", err)
	}
	if err := f.svc.GuestJoin(ctx, g, service.GuestJoinRequest{MeetingID: m.ID, SessionID: reg.SessionID}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make(chan error, 2)
	for i, a := range []service.Actor{alice, bob} {
		wg.Add(1)
		go func(admit bool, a service.Actor) {
			defer wg.Done()
			results <- f.svc.Decide(ctx, a, service.DecisionRequest{MeetingID: m.ID, SessionID: reg.SessionID}, admit)
		}(i == 0, a)
	}
	wg.Wait()
	close(results)
	wins, conflicts := 0, 0
	for err := range results {
		switch code(err) {
		case "":
			wins++
		case service.CodeConflict:
			conflicts++
		default:
			t.Fatal(err)
		}
	}
	if wins != 1 || conflicts != 1 {
		t.Fatalf("wins %d conflicts %d", wins, conflicts)
	}
	// The guest hears the decision once, on its session room only.
	var toGuest int
	for _, d := range f.rec.find("meeting:admission_status") {
		if d.Namespace == service.GuestsNamespace {
			toGuest++
			if d.Rooms[0] != service.SessionRoom(reg.SessionID) {
				t.Fatalf("admission status to %v", d.Rooms)
			}
		}
	}
	if toGuest != 1 {
		t.Fatalf("guest told %d times", toGuest)
	}
}

func TestPresenceTransitionsAnnounced(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	b1, b2 := actor("bob", "b1"), actor("bob", "b2")
	f.connect(t, b1)
	f.connect(t, b2)
	if n := len(f.rec.find("presence:user_connected")); n != 1 {
		t.Fatalf("connected announced %d times", n)
	}
	for _, a := range []service.Actor{b1, b2} {
		if err := f.svc.Disconnect(ctx, a, nil, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if len(f.rec.find("presence:user_disconnected")) != 0 {
		t.Fatal("offline announced before the grace")
	}
	f.advance(5 * time.Second)
	if _, err := f.svc.RunDue(ctx, 10); err != nil {
		t.Fatal(err)
	}
	d := f.rec.find("presence:user_disconnected")
	if len(d) != 1 || d[0].Data.(map[string]any)["last_seen"] != "2026-11-25T10:00:05.000Z" {
		t.Fatalf("disconnected %+v", d)
	}
	// Heartbeat on an expired connection comes back online.
	if err := f.svc.Heartbeat(ctx, b1); err != nil {
		t.Fatal(err)
	}
	if n := len(f.rec.find("presence:user_connected")); n != 2 {
		t.Fatalf("connected announced %d times", n)
	}
}
