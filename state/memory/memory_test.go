package memory

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/statetest"
)

func TestConformance(t *testing.T) {
	statetest.Run(t, func(t *testing.T) state.Store { return New(time.Now) })
}

// TestConformanceOnAFarClock runs the suite on a store whose clock is years
// away from the suite's timeline: TTLs count from the now of each write, so
// the frame of the clock does not matter.
func TestConformanceOnAFarClock(t *testing.T) {
	far := time.Date(2031, 3, 1, 0, 0, 0, 0, time.UTC)
	statetest.Run(t, func(t *testing.T) state.Store { return New(func() time.Time { return far }) })
}

// ---- fixtures ----

var base = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// set moves the clock to base+d and returns that time.
func (c *fakeClock) set(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = base.Add(d)
	return c.t
}

func newTestStore() (*Store, *fakeClock) {
	c := &fakeClock{t: base}
	return New(c.Now), c
}

func meeting(id string, end time.Time, members ...string) *state.Meeting {
	m := &state.Meeting{
		ID: id, StartTime: state.At(base), EndTime: state.At(end), CreatedBy: "alice",
		Status: state.StatusScheduled, CreatedAt: state.At(base), UpdatedAt: state.At(base), Version: 1,
	}
	m.Participants = append(m.Participants, state.Participant{UserID: "alice", Role: state.RoleOwner, Status: state.PartInvited})
	for _, u := range members {
		m.Participants = append(m.Participants, state.Participant{UserID: u, Role: state.RoleMember, Status: state.PartInvited})
	}
	return m
}

// created is the error of a Meetings.Create, whose transition these tests
// do not need.
func created(_ *state.Transition, err error) error { return err }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want %v", err, want)
	}
}

// ---- TTLs ----

func TestMeetingGoneAfterRetention(t *testing.T) {
	s, clock := newTestStore()
	ctx := t.Context()
	must(t, created(s.Meetings().Create(ctx, meeting("mtg_a", base.Add(2*time.Hour), "bob"), 24*time.Hour, base)))

	now := clock.set(26*time.Hour - time.Millisecond)
	_, err := s.Meetings().Get(ctx, "mtg_a")
	must(t, err)
	ms, err := s.Meetings().ListForUser(ctx, "bob", false, now, 0, 10)
	must(t, err)
	if len(ms) != 1 {
		t.Fatalf("bob's past meetings before expiry: %d, want 1", len(ms))
	}

	now = clock.set(26 * time.Hour)
	_, err = s.Meetings().Get(ctx, "mtg_a")
	wantErr(t, err, state.ErrNotFound)
	ms, err = s.Meetings().ListForUser(ctx, "bob", false, now, 0, 10)
	must(t, err)
	if len(ms) != 0 {
		t.Fatalf("bob's past meetings after expiry: %d, want 0", len(ms))
	}
	_, err = s.Meetings().Join(ctx, "mtg_a", "bob", "b1", now)
	wantErr(t, err, state.ErrNotFound)
	must(t, created(s.Meetings().Create(ctx, meeting("mtg_a", now.Add(time.Hour)), time.Hour, now))) // the id is free
}

func TestCallGoneAtEndTime(t *testing.T) {
	s, clock := newTestStore()
	ctx := t.Context()
	c := meeting("call_a", base.Add(24*time.Hour), "bob")
	c.IsInstantCall, c.Status = true, state.StatusLive
	must(t, created(s.Meetings().Create(ctx, c, 7*24*time.Hour, base))) // retention does not apply to calls

	clock.set(24*time.Hour - time.Millisecond)
	_, err := s.Meetings().Get(ctx, "call_a")
	must(t, err)
	clock.set(24 * time.Hour)
	_, err = s.Meetings().Get(ctx, "call_a")
	wantErr(t, err, state.ErrNotFound)
}

func TestUpdateMovesRetention(t *testing.T) {
	s, clock := newTestStore()
	ctx := t.Context()
	must(t, created(s.Meetings().Create(ctx, meeting("mtg_a", base.Add(time.Hour)), time.Hour, base)))
	end := state.At(base.Add(10 * time.Hour))
	_, err := s.Meetings().Update(ctx, "mtg_a", "alice", state.MeetingPatch{EndTime: &end}, time.Hour, clock.set(30*time.Minute))
	must(t, err)

	clock.set(11*time.Hour - time.Millisecond) // past the old 2 h, before the new 11 h
	_, err = s.Meetings().Get(ctx, "mtg_a")
	must(t, err)
	clock.set(11 * time.Hour)
	_, err = s.Meetings().Get(ctx, "mtg_a")
	wantErr(t, err, state.ErrNotFound)
}

func TestSessionGoneAtExpiry(t *testing.T) {
	s, clock := newTestStore()
	ctx := t.Context()
	g := s.Guests()
	sess := &state.Session{ID: "s1", MeetingID: "mtg_a", Status: state.SessionRegistered, CreatedAt: state.At(base), ExpiresAt: state.At(base.Add(time.Hour))}
	must(t, g.CreateSession(ctx, sess, base))
	_, err := g.Request(ctx, "mtg_a", "s1", nil, clock.set(time.Minute))
	must(t, err)

	clock.set(time.Hour - time.Millisecond)
	_, err = g.GetSession(ctx, "s1")
	must(t, err)
	q, err := g.Queue(ctx, "mtg_a")
	must(t, err)
	if len(q) != 1 {
		t.Fatalf("queue before expiry: %d sessions, want 1", len(q))
	}

	clock.set(time.Hour)
	_, err = g.GetSession(ctx, "s1")
	wantErr(t, err, state.ErrNotFound)
	q, err = g.Queue(ctx, "mtg_a")
	must(t, err)
	if len(q) != 0 {
		t.Fatalf("queue after expiry: %d sessions, want 0", len(q))
	}
}

func TestLinkGoneAtExpiry(t *testing.T) {
	s, clock := newTestStore()
	ctx := t.Context()
	l := &state.Link{Token: "tok", MeetingID: "mtg_a", CreatedAt: state.At(base), ExpiresAt: state.At(base.Add(time.Hour))}
	must(t, s.Links().CreateLink(ctx, l, base))

	clock.set(time.Hour - time.Millisecond)
	_, err := s.Links().GetLink(ctx, "tok", base.Add(time.Hour)) // a caller whose now is ahead
	wantErr(t, err, state.ErrGone)
	clock.set(time.Hour)
	_, err = s.Links().GetLink(ctx, "tok", base.Add(time.Hour))
	wantErr(t, err, state.ErrNotFound)
}

func TestLastSeenKeptForItsTTL(t *testing.T) {
	s, clock := newTestStore()
	ctx := t.Context()
	p := s.Presence()
	_, err := p.Connect(ctx, state.Conn{ID: "c1", UserID: "alice", NodeID: "n1"}, 2*time.Minute, 0, base)
	must(t, err)
	_, err = p.Disconnect(ctx, "alice", "c1", clock.set(time.Second))
	must(t, err)
	_, err = p.SettleOffline(ctx, "alice", time.Hour, clock.set(5*time.Second))
	must(t, err)

	lastSeen := func(d time.Duration) *state.Time {
		t.Helper()
		ps, err := p.Query(ctx, []string{"alice"}, clock.set(d))
		must(t, err)
		if ps[0].Status != state.Offline {
			t.Fatalf("status = %s, want offline", ps[0].Status)
		}
		return ps[0].LastSeen
	}
	if ls := lastSeen(time.Hour + 5*time.Second - time.Millisecond); ls == nil || !ls.Equal(base.Add(5*time.Second)) {
		t.Fatalf("last_seen before its TTL = %v, want %s", ls, state.At(base.Add(5*time.Second)))
	}
	if ls := lastSeen(time.Hour + 5*time.Second); ls != nil {
		t.Fatalf("last_seen after its TTL = %s, want nil", ls)
	}
}

func TestPendingOfflineWithoutSettleEnds(t *testing.T) {
	s, clock := newTestStore()
	ctx := t.Context()
	p := s.Presence()
	_, err := p.Connect(ctx, state.Conn{ID: "c1", UserID: "alice", NodeID: "n1"}, 2*time.Minute, 0, base)
	must(t, err)
	r, err := p.Disconnect(ctx, "alice", "c1", base)
	must(t, err)
	if !r.LastConn {
		t.Fatal("LastConn = false")
	}
	// The settle job was lost: after hold the user is offline anyway.
	now := clock.set(hold)
	s.Sweep()
	ps, err := p.Query(ctx, []string{"alice"}, now)
	must(t, err)
	if ps[0].Status != state.Offline {
		t.Fatalf("status = %s, want offline", ps[0].Status)
	}
	if len(s.users) != 0 {
		t.Fatalf("%d presence records left, want 0", len(s.users))
	}
}

// ---- memory does not grow ----

// populate fills s with one of everything that expires, written at base.
func populate(t *testing.T, s *Store) {
	t.Helper()
	ctx := t.Context()
	must(t, created(s.Meetings().Create(ctx, meeting("mtg_a", base.Add(time.Hour), "bob"), time.Hour, base)))
	must(t, s.Guests().CreateSession(ctx, &state.Session{ID: "s1", MeetingID: "mtg_a", Status: state.SessionRegistered, ExpiresAt: state.At(base.Add(time.Hour))}, base))
	_, err := s.Guests().Request(ctx, "mtg_a", "s1", nil, base)
	must(t, err)
	must(t, s.Links().CreateLink(ctx, &state.Link{Token: "tok", MeetingID: "mtg_a", ExpiresAt: state.At(base.Add(time.Hour))}, base))
	p := s.Presence()
	for _, c := range []state.Conn{{ID: "c1", UserID: "alice", NodeID: "n1"}, {ID: "c2", UserID: "bob", NodeID: "n1"}} {
		_, err := p.Connect(ctx, c, 2*time.Minute, 0, base)
		must(t, err)
	}
	_, err = p.SetJoined(ctx, "bob", "c2", "mtg_a", true, base)
	must(t, err)
	_, err = p.Disconnect(ctx, "alice", "c1", base)
	must(t, err)
	_, err = p.SettleOffline(ctx, "alice", time.Hour, base)
	must(t, err)
	// bob's c2 is never disconnected: it expires and is freed after hold.
}

// empty fails unless every map of s that holds expiring data is empty.
func empty(t *testing.T, s *Store) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, n := range map[string]int{
		"meetings": len(s.meetings), "byUser": len(s.byUser), "users": len(s.users), "conns": len(s.conns),
		"byNode": len(s.byNode), "sessions": len(s.sessions), "queues": len(s.queues), "links": len(s.links),
	} {
		if n != 0 {
			t.Errorf("%s holds %d entries after everything expired", name, n)
		}
	}
}

func TestSweepFreesExpiredEntries(t *testing.T) {
	s, clock := newTestStore()
	populate(t, s)
	clock.set(3 * time.Hour) // past every expiry of populate
	s.Sweep()
	empty(t, s)
}

func TestSweepRunsByItself(t *testing.T) {
	s, clock := newTestStore()
	populate(t, s)
	clock.set(3 * time.Hour)                             // past every expiry of populate
	_, err := s.Meetings().Get(t.Context(), "mtg_other") // any call will do
	wantErr(t, err, state.ErrNotFound)
	empty(t, s)
}

func TestIndexesFollowTheirEntries(t *testing.T) {
	s, _ := newTestStore()
	ctx := t.Context()
	populate(t, s)
	_, err := s.Presence().Disconnect(ctx, "bob", "c2", base)
	must(t, err)
	_, err = s.Presence().SettleOffline(ctx, "bob", time.Hour, base)
	must(t, err)
	_, _, err = s.Guests().Leave(ctx, "mtg_a", "s1", base)
	must(t, err)
	_, err = s.Meetings().Delete(ctx, "mtg_a", "alice")
	must(t, err)

	s.mu.Lock()
	defer s.mu.Unlock()
	for name, n := range map[string]int{
		"meetings": len(s.meetings), "byUser": len(s.byUser), "conns": len(s.conns),
		"byNode": len(s.byNode), "queues": len(s.queues),
	} {
		if n != 0 {
			t.Errorf("%s holds %d entries after their objects went", name, n)
		}
	}
}

func TestDoneContext(t *testing.T) {
	s, _ := newTestStore()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Meetings().Get(ctx, "mtg_a")
	wantErr(t, err, context.Canceled)
	wantErr(t, s.Ping(ctx), context.Canceled)
}
