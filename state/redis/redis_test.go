package redis_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/redis"
)

// base is the start of the tests' timeline, far from the wall clock: TTLs
// are computed from the now each call passes.
var base = time.Date(2026, time.November, 25, 10, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return base.Add(d) }

// newClient returns a client of srv that honours context deadlines, closed
// at the end of the test.
func newClient(t testing.TB, srv *redistest.Server) *goredis.Client {
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true, Dialer: redistest.Dialer()})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// freshStore flushes srv and returns a store on a new client.
func freshStore(t testing.TB, srv *redistest.Server) (*redis.Store, *goredis.Client) {
	t.Helper()
	c := newClient(t, srv)
	if err := c.FlushAll(context.Background()).Err(); err != nil {
		t.Fatalf("FLUSHALL: %v", err)
	}
	return redis.New(c, redis.Options{}), c
}

// online connects a device of each user at at(0) for two hours: Ring rings
// only users the store's presence has online.
func online(t testing.TB, st state.Store, users ...string) {
	t.Helper()
	for _, u := range users {
		c := state.Conn{ID: "on-" + u, UserID: u, DeviceID: "on-" + u, NodeID: "n1"}
		if _, err := st.Presence().Connect(context.Background(), c, 2*time.Hour, 0, at(0)); err != nil {
			t.Fatalf("Connect %s: %v", u, err)
		}
	}
}

// created is the error of a Meetings.Create, whose transition these tests
// do not need.
func created(_ *state.Transition, err error) error { return err }

func noErr(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// call is an instant call by alice from a1, with the members invited.
func call(id string, now time.Time, members ...string) *state.Meeting {
	m := &state.Meeting{
		ID: id, IsInstantCall: true, StartTime: state.At(now), EndTime: state.At(now.Add(24 * time.Hour)),
		CreatedBy: "alice", Status: state.StatusLive, StartedAt: state.TimePtr(now),
		CreatedAt: state.At(now), UpdatedAt: state.At(now), Version: 1,
		Conns: map[string][]string{"alice": {"a1"}}, ActiveCount: 1,
	}
	m.Participants = []state.Participant{{UserID: "alice", Role: state.RoleOwner, Status: state.PartJoined, JoinedAt: state.TimePtr(now)}}
	for _, u := range members {
		m.Participants = append(m.Participants, state.Participant{UserID: u, Role: state.RoleMember, Status: state.PartInvited})
	}
	return m
}

// ringTimeout is the ring-timeout job of call id due at deadline, as the
// service builds it.
func ringTimeout(id string, deadline time.Time) state.Job {
	return state.Job{ID: "ring:" + id + ":" + state.At(deadline).String(), Kind: "ring_timeout", Subject: id, Due: state.At(deadline)}
}

// scheduled is a meeting of alice from start to end with the members invited.
func scheduled(id string, start, end time.Time, members ...string) *state.Meeting {
	m := &state.Meeting{
		ID: id, Title: "t", StartTime: state.At(start), EndTime: state.At(end), AllowExternal: true,
		CreatedBy: "alice", Status: state.StatusScheduled, CreatedAt: state.At(base), UpdatedAt: state.At(base), Version: 1,
	}
	m.Participants = []state.Participant{{UserID: "alice", Role: state.RoleOwner, Status: state.PartInvited}}
	for _, u := range members {
		m.Participants = append(m.Participants, state.Participant{UserID: u, Role: state.RoleMember, Status: state.PartInvited})
	}
	return m
}

func guestSession(id, meeting string) *state.Session {
	return &state.Session{ID: id, MeetingID: meeting, DisplayName: "guest", Status: state.SessionRegistered,
		CreatedAt: state.At(base), ExpiresAt: state.At(at(24 * time.Hour)), TokenHash: "h-" + id}
}

// flow runs one of every transition against st, so that every kind of key
// gets written.
func flow(t testing.TB, st state.Store) {
	t.Helper()
	ctx := context.Background()
	m := st.Meetings()
	noErr(t, created(m.Create(ctx, scheduled("mtg_a", at(time.Hour), at(2*time.Hour), "bob"), 7*24*time.Hour, at(0))), "Create")
	_, err := m.Join(ctx, "mtg_a", "alice", "a1", at(time.Hour))
	noErr(t, err, "Join")
	_, _, err = m.InviteLive(ctx, "mtg_a", "alice", []string{"carol"}, 256, at(time.Hour))
	noErr(t, err, "InviteLive")
	_, _, err = m.MarkReminded(ctx, "mtg_a", 15)
	noErr(t, err, "MarkReminded")
	noErr(t, created(m.Create(ctx, call("call_a", at(0), "bob", "carol"), 0, at(0))), "Create call")
	online(t, st, "bob", "carol")
	r, err := m.Ring(ctx, "call_a", "alice", []string{"bob", "carol"}, at(time.Minute), ringTimeout("call_a", at(time.Minute)), at(0))
	noErr(t, err, "Ring")
	noErr(t, r.TimeoutErr, "Ring: ring timeout")
	_, err = m.Accept(ctx, "call_a", "bob", "b1", at(time.Second))
	noErr(t, err, "Accept")
	_, err = m.Decline(ctx, "call_a", "carol", at(time.Second))
	noErr(t, err, "Decline")

	g := st.Guests()
	noErr(t, g.CreateSession(ctx, guestSession("s1", "mtg_a"), at(0)), "CreateSession")
	noErr(t, g.CreateSession(ctx, guestSession("s2", "mtg_a"), at(0)), "CreateSession")
	_, err = g.Connect(ctx, "mtg_a", "s1", "g1", at(time.Hour))
	noErr(t, err, "guest Connect")
	_, err = g.Request(ctx, "mtg_a", "s1", nil, at(time.Hour))
	noErr(t, err, "Request")
	_, err = g.Request(ctx, "mtg_a", "s2", nil, at(time.Hour))
	noErr(t, err, "Request")
	_, err = g.Decide(ctx, "mtg_a", "s1", "alice", true, 5*time.Second, at(time.Hour))
	noErr(t, err, "Decide")

	l := st.Links()
	noErr(t, l.CreateLink(ctx, &state.Link{Token: "tok", MeetingID: "mtg_a", CreatedBy: "alice",
		CreatedAt: state.At(at(0)), ExpiresAt: state.At(at(2 * time.Hour)), MaxUses: 3}, at(0)), "CreateLink")
	_, err = l.UseLink(ctx, "tok", at(0))
	noErr(t, err, "UseLink")

	p := st.Presence()
	for i, u := range []string{"alice", "bob", "dave"} {
		_, err = p.Connect(ctx, state.Conn{ID: fmt.Sprintf("c%d", i), UserID: u, DeviceID: "phone", NodeID: "n1"}, 2*time.Minute, 20, at(0))
		noErr(t, err, "presence Connect")
	}
	_, err = p.SetJoined(ctx, "alice", "c0", "mtg_a", true, at(time.Second))
	noErr(t, err, "SetJoined")
	_, err = p.Disconnect(ctx, "dave", "c2", at(time.Second))
	noErr(t, err, "presence Disconnect")
	_, err = p.SettleOffline(ctx, "dave", 30*24*time.Hour, at(10*time.Second))
	noErr(t, err, "SettleOffline")

	noErr(t, st.Jobs().Schedule(ctx, state.Job{ID: "j1", Kind: "k", Subject: "s", Due: state.At(at(time.Minute))}), "Schedule")
	_, err = st.Nodes().Refresh(ctx, "n1", 10*time.Second, at(0))
	noErr(t, err, "Refresh")
}

// TestEveryKeyExpiresOrIsOwned writes every kind of key and checks that each
// has a TTL, except the few keys whose owner removes what they hold.
func TestEveryKeyExpiresOrIsOwned(t *testing.T) {
	srv := redistest.Start(t)
	st, c := freshStore(t, srv)
	flow(t, st)

	owned := map[string]string{
		"sb:{jobs}:due":     "scheduler: Done and Cancel remove jobs",
		"sb:{jobs}:data":    "scheduler: Done and Cancel remove jobs",
		"sb:{nodes}:leases": "node registry: ClaimDead and Deregister remove nodes",
	}
	ctx := context.Background()
	keys, err := c.Keys(ctx, "*").Result()
	noErr(t, err, "KEYS")
	slices.Sort(keys)
	kinds := map[string]bool{}
	for _, k := range keys {
		if !strings.HasPrefix(k, "sb:") {
			t.Errorf("key %q lacks the prefix", k)
		}
		kinds[k[strings.LastIndex(k, "}")+1:]] = true
		ttl, err := c.PTTL(ctx, k).Result()
		noErr(t, err, "PTTL")
		if why, ok := owned[k]; ok {
			t.Logf("%-32s owned (%s)", k, why)
			continue
		}
		if ttl <= 0 {
			t.Errorf("key %q has no TTL (PTTL %v)", k, ttl)
			continue
		}
		t.Logf("%-32s ttl %v", k, ttl.Round(time.Second))
	}
	for _, kind := range []string{":meeting", ":meetings", ":presence", ":marks", ":queue", ":link", ":conns"} {
		if !kinds[kind] {
			t.Errorf("the flow wrote no key of kind %q (keys: %q)", kind, keys)
		}
	}
}

// TestTTLsFollowTheGivenNow checks TTL arithmetic, including the Lua
// conversion of times to milliseconds that Update uses.
func TestTTLsFollowTheGivenNow(t *testing.T) {
	srv := redistest.Start(t)
	st, c := freshStore(t, srv)
	ctx := context.Background()
	const retention = 7 * 24 * time.Hour
	noErr(t, created(st.Meetings().Create(ctx, scheduled("mtg_a", at(time.Hour), at(2*time.Hour), "bob"), retention, at(0))), "Create")
	near := func(key string, want time.Duration) {
		t.Helper()
		got, err := c.PTTL(ctx, key).Result()
		noErr(t, err, "PTTL")
		if got > want || got < want-5*time.Second {
			t.Fatalf("PTTL %s = %v, want about %v", key, got, want)
		}
	}
	near("sb:{mtg_a}:meeting", 2*time.Hour+retention)
	near("sb:{u:bob}:meetings", 2*time.Hour+retention)

	// Across a leap day and a year boundary, so the Lua date arithmetic is
	// exercised on more than the easy cases.
	end := state.At(time.Date(2028, time.March, 1, 0, 0, 0, 123e6, time.UTC))
	now := time.Date(2027, time.December, 31, 23, 0, 0, 0, time.UTC)
	_, err := st.Meetings().Update(ctx, "mtg_a", "alice", state.MeetingPatch{EndTime: &end}, retention, now)
	noErr(t, err, "Update")
	near("sb:{mtg_a}:meeting", end.Sub(now)+retention)
	// The end moved later: the participants' indexes follow.
	near("sb:{u:bob}:meetings", end.Sub(now)+retention)
}

// TestConcurrentDecide: 50 hosts decide on one waiting guest at once;
// exactly one decision wins, the others are ErrConflict.
func TestConcurrentDecide(t *testing.T) {
	srv := redistest.Start(t)
	st, _ := freshStore(t, srv)
	ctx := context.Background()
	g := st.Guests()
	noErr(t, g.CreateSession(ctx, guestSession("s1", "mtg_a"), at(0)), "CreateSession")
	_, err := g.Request(ctx, "mtg_a", "s1", nil, at(time.Second))
	noErr(t, err, "Request")
	var (
		wg         sync.WaitGroup
		wins, lose atomic.Int64
	)
	for i := range 50 {
		wg.Go(func() {
			_, err := g.Decide(ctx, "mtg_a", "s1", fmt.Sprintf("host%d", i), i%2 == 0, 5*time.Second, at(2*time.Second))
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, state.ErrConflict):
				lose.Add(1)
			default:
				t.Errorf("Decide: %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 || lose.Load() != 49 {
		t.Fatalf("wins %d, conflicts %d; want 1 and 49", wins.Load(), lose.Load())
	}
	q, err := g.Queue(ctx, "mtg_a")
	noErr(t, err, "Queue")
	if len(q) != 0 {
		t.Fatalf("queue after the decision: %d sessions", len(q))
	}
}

// TestConcurrentUseLink: 50 guests use a link of 7 uses at once.
func TestConcurrentUseLink(t *testing.T) {
	srv := redistest.Start(t)
	st, _ := freshStore(t, srv)
	ctx := context.Background()
	noErr(t, st.Links().CreateLink(ctx, &state.Link{Token: "tok", MeetingID: "mtg_a", CreatedBy: "alice",
		CreatedAt: state.At(at(0)), ExpiresAt: state.At(at(time.Hour)), MaxUses: 7}, at(0)), "CreateLink")
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		uses []int
		gone atomic.Int64
	)
	for range 50 {
		wg.Go(func() {
			l, err := st.Links().UseLink(ctx, "tok", at(time.Minute))
			switch {
			case err == nil:
				mu.Lock()
				uses = append(uses, l.Uses)
				mu.Unlock()
			case errors.Is(err, state.ErrGone):
				gone.Add(1)
			default:
				t.Errorf("UseLink: %v", err)
			}
		})
	}
	wg.Wait()
	slices.Sort(uses)
	if !slices.Equal(uses, []int{1, 2, 3, 4, 5, 6, 7}) || gone.Load() != 43 {
		t.Fatalf("uses %v, gone %d; want 1..7 and 43", uses, gone.Load())
	}
}

// TestUnavailable: with Redis stopped, every method answers an error that
// wraps state.ErrUnavailable within its context deadline.
func TestUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	st, _ := freshStore(t, srv)
	ctx := context.Background()
	noErr(t, st.Preload(ctx), "Preload")
	srv.Stop()

	title := "x"
	end := state.At(at(3 * time.Hour))
	ops := map[string]func(ctx context.Context) error{
		"Ping": func(ctx context.Context) error { return st.Ping(ctx) },
		"Create": func(ctx context.Context) error {
			return created(st.Meetings().Create(ctx, call("call_x", at(0)), 0, at(0)))
		},
		"Get": func(ctx context.Context) error { _, err := st.Meetings().Get(ctx, "mtg_a"); return err },
		"ListForUser": func(ctx context.Context) error {
			_, err := st.Meetings().ListForUser(ctx, "alice", true, at(0), 0, 10)
			return err
		},
		"Update": func(ctx context.Context) error {
			_, err := st.Meetings().Update(ctx, "mtg_a", "alice", state.MeetingPatch{Title: &title, EndTime: &end}, time.Hour, at(0))
			return err
		},
		"Join": func(ctx context.Context) error {
			_, err := st.Meetings().Join(ctx, "mtg_a", "alice", "a1", at(0))
			return err
		},
		"Leave": func(ctx context.Context) error {
			_, err := st.Meetings().Leave(ctx, "mtg_a", "alice", "a1", at(0))
			return err
		},
		"InviteLive": func(ctx context.Context) error {
			_, _, err := st.Meetings().InviteLive(ctx, "mtg_a", "alice", []string{"x"}, 9, at(0))
			return err
		},
		"Ring": func(ctx context.Context) error {
			_, err := st.Meetings().Ring(ctx, "call_a", "alice", []string{"bob"}, at(time.Minute), ringTimeout("call_a", at(time.Minute)), at(0))
			return err
		},
		"ExpireRings": func(ctx context.Context) error { _, err := st.Meetings().ExpireRings(ctx, "call_a", at(0)); return err },
		"Connect": func(ctx context.Context) error {
			_, err := st.Presence().Connect(ctx, state.Conn{ID: "c1", UserID: "alice", NodeID: "n1"}, time.Minute, 20, at(0))
			return err
		},
		"Query": func(ctx context.Context) error {
			_, err := st.Presence().Query(ctx, []string{"alice"}, at(0))
			return err
		},
		"NodeConns": func(ctx context.Context) error { _, err := st.Presence().NodeConns(ctx, "n1"); return err },
		"CreateSession": func(ctx context.Context) error {
			return st.Guests().CreateSession(ctx, guestSession("s1", "mtg_a"), at(0))
		},
		"GetSession": func(ctx context.Context) error { _, err := st.Guests().GetSession(ctx, "s1"); return err },
		"Decide": func(ctx context.Context) error {
			_, err := st.Guests().Decide(ctx, "mtg_a", "s1", "alice", true, time.Second, at(0))
			return err
		},
		"Queue":   func(ctx context.Context) error { _, err := st.Guests().Queue(ctx, "mtg_a"); return err },
		"UseLink": func(ctx context.Context) error { _, err := st.Links().UseLink(ctx, "tok", at(0)); return err },
		"Claim":   func(ctx context.Context) error { _, err := st.Jobs().Claim(ctx, at(0), time.Second, 5); return err },
		"Schedule": func(ctx context.Context) error {
			return st.Jobs().Schedule(ctx, state.Job{ID: "j", Due: state.At(at(0))})
		},
		"Refresh": func(ctx context.Context) error {
			_, err := st.Nodes().Refresh(ctx, "n1", time.Second, at(0))
			return err
		},
		"Deregister": func(ctx context.Context) error { return st.Nodes().Deregister(ctx, "n1") },
		"ClaimDead":  func(ctx context.Context) error { _, err := st.Nodes().ClaimDead(ctx, at(0)); return err },
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			const deadline = 2 * time.Second
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			err := op(ctx)
			if took := time.Since(start); took > deadline+500*time.Millisecond {
				t.Errorf("took %v, past the %v deadline", took, deadline)
			}
			if !errors.Is(err, state.ErrUnavailable) {
				t.Fatalf("error %v does not wrap ErrUnavailable", err)
			}
			for _, domain := range []error{state.ErrNotFound, state.ErrConflict, state.ErrGone} {
				if errors.Is(err, domain) {
					t.Fatalf("error %v also wraps %v", err, domain)
				}
			}
		})
	}
}

// TestDomainErrorsAreNotUnavailable: a refused transition is its own error.
func TestDomainErrorsAreNotUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	st, _ := freshStore(t, srv)
	_, err := st.Meetings().Join(context.Background(), "mtg_nope", "alice", "a1", at(0))
	if !errors.Is(err, state.ErrNotFound) || errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("Join unknown: %v", err)
	}
}

// TestScriptsReloadAfterFlush: after SCRIPT FLUSH (a restarted or failed-over
// Redis), transitions fall back to EVAL, pipelined ones included.
func TestScriptsReloadAfterFlush(t *testing.T) {
	srv := redistest.Start(t)
	st, c := freshStore(t, srv)
	ctx := context.Background()
	noErr(t, st.Preload(ctx), "Preload")
	noErr(t, c.ScriptFlush(ctx).Err(), "SCRIPT FLUSH")
	flow(t, st)
	ms, err := st.Meetings().ListForUser(ctx, "carol", true, at(0), 0, 10)
	noErr(t, err, "ListForUser")
	if len(ms) != 2 {
		t.Fatalf("carol's meetings: %d, want 2 (indexed through pipelined scripts)", len(ms))
	}
}

// TestRingWritesItsTimeoutJobAfterFlush: after SCRIPT FLUSH, both scripts
// of Ring's pipeline (the ring and its ring-timeout job) fall back to EVAL.
func TestRingWritesItsTimeoutJobAfterFlush(t *testing.T) {
	srv := redistest.Start(t)
	st, c := freshStore(t, srv)
	ctx := context.Background()
	noErr(t, created(st.Meetings().Create(ctx, call("call_a", at(0), "bob"), 0, at(0))), "Create")
	noErr(t, c.ScriptFlush(ctx).Err(), "SCRIPT FLUSH")
	j := ringTimeout("call_a", at(time.Minute))
	online(t, st, "bob")
	r, err := st.Meetings().Ring(ctx, "call_a", "alice", []string{"bob"}, at(time.Minute), j, at(0))
	noErr(t, err, "Ring")
	noErr(t, r.TimeoutErr, "Ring: ring timeout")
	if !slices.Equal(r.Ringing, []string{"bob"}) {
		t.Fatalf("ringing %v, want [bob]", r.Ringing)
	}
	js, err := st.Jobs().Claim(ctx, at(time.Minute), time.Second, 10)
	noErr(t, err, "Claim")
	if len(js) != 1 || js[0].ID != j.ID || js[0].Subject != "call_a" || !js[0].Due.Equal(j.Due.Time) {
		t.Fatalf("jobs due at the ring deadline: %+v, want %s", js, j.ID)
	}
}

// TestRingReportsAFailedTimeoutJob: when the ring is applied but its job
// cannot be written, Ring answers the ring with the job's error in
// TimeoutErr (the service logs it; the ring stands).
func TestRingReportsAFailedTimeoutJob(t *testing.T) {
	srv := redistest.Start(t)
	st, c := freshStore(t, srv)
	ctx := context.Background()
	noErr(t, created(st.Meetings().Create(ctx, call("call_a", at(0), "bob"), 0, at(0))), "Create")
	noErr(t, c.Set(ctx, "sb:{jobs}:data", "not a hash", 0).Err(), "SET") // HSET fails: WRONGTYPE
	online(t, st, "bob")
	r, err := st.Meetings().Ring(ctx, "call_a", "alice", []string{"bob"}, at(time.Minute),
		ringTimeout("call_a", at(time.Minute)), at(0))
	noErr(t, err, "Ring")
	if r.TimeoutErr == nil || !strings.Contains(r.TimeoutErr.Error(), "WRONGTYPE") {
		t.Fatalf("TimeoutErr = %v, want the job's WRONGTYPE", r.TimeoutErr)
	}
	if !slices.Equal(r.Ringing, []string{"bob"}) || r.Meeting.Participant("bob").Status != state.PartRinging {
		t.Fatalf("the ring was not applied: ringing %v", r.Ringing)
	}
	m, err := st.Meetings().Get(ctx, "call_a")
	noErr(t, err, "Get")
	if m.Participant("bob").Status != state.PartRinging {
		t.Fatalf("stored bob is %s, want ringing", m.Participant("bob").Status)
	}
}

// TestOpaqueValuesSurvive: guest keys are stored byte for byte (Lua never
// re-encodes them) and empty lists never come back as {}.
func TestOpaqueValuesSurvive(t *testing.T) {
	srv := redistest.Start(t)
	st, _ := freshStore(t, srv)
	ctx := context.Background()
	g := st.Guests()
	s := guestSession("s1", "mtg_a")
	s.Keys = json.RawMessage(`{"a":[],"n":12345678901234567890,"o":{}}`)
	noErr(t, g.CreateSession(ctx, s, at(0)), "CreateSession")
	_, err := g.Connect(ctx, "mtg_a", "s1", "g1", at(0))
	noErr(t, err, "Connect")
	_, _, err = g.Disconnect(ctx, "mtg_a", "s1", "g1", at(0))
	noErr(t, err, "Disconnect")
	got, err := g.Request(ctx, "mtg_a", "s1", nil, at(0))
	noErr(t, err, "Request")
	if string(got.Keys) != string(s.Keys) {
		t.Fatalf("keys = %s, want %s", got.Keys, s.Keys)
	}

	m := call("call_a", at(0), "bob")
	m.Conns["bob"] = []string{} // an empty list must not come back as {}
	noErr(t, created(st.Meetings().Create(ctx, m, 0, at(0))), "Create")
	_, err = st.Meetings().Accept(ctx, "call_a", "bob", "b1", at(time.Second))
	noErr(t, err, "Accept")
	r, err := st.Meetings().Leave(ctx, "call_a", "bob", "b1", at(2*time.Second))
	noErr(t, err, "Leave")
	if r.Meeting.Joined("bob") || !r.Meeting.Joined("alice") || r.Meeting.ActiveCount != 1 {
		t.Fatalf("after leave: conns %v, active %d", r.Meeting.Conns, r.Meeting.ActiveCount)
	}
}

// TestSessionIDsAreUniqueAcrossMeetings: sessions live in their meeting's
// slot; their id is claimed through a lookup key of its own.
func TestSessionIDsAreUniqueAcrossMeetings(t *testing.T) {
	srv := redistest.Start(t)
	st, c := freshStore(t, srv)
	ctx := context.Background()
	g := st.Guests()
	noErr(t, g.CreateSession(ctx, guestSession("s1", "mtg_a"), at(0)), "CreateSession")
	err := g.CreateSession(ctx, guestSession("s1", "mtg_b"), at(0))
	if !errors.Is(err, state.ErrConflict) {
		t.Fatalf("CreateSession in another meeting: %v, want ErrConflict", err)
	}
	if n, _ := c.Exists(ctx, "sb:{mtg_b}:session:s1").Result(); n != 0 {
		t.Fatal("the refused session was left in mtg_b")
	}
	_, err = g.Request(ctx, "mtg_b", "s1", nil, at(0))
	if !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("Request naming the wrong meeting: %v, want ErrNotFound", err)
	}
}

// roundTrips counts what a client sends: each command and each pipeline is
// one round trip.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (r *roundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}

// TestOneRoundTripPerTransition counts the round trips of every transition,
// on a single Redis and on a Cluster.
func TestOneRoundTripPerTransition(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		srv := redistest.Start(t)
		testRoundTrips(t, newClient(t, srv), 1)
	})
	t.Run("cluster", func(t *testing.T) {
		testRoundTrips(t, redistest.StartCluster(t).Client(t), 2)
	})
}

// testRoundTrips checks that every transition takes one round trip, but
// Ring: ringTrips (on a Redis Cluster the recipients' presence, in other
// slots than the call, is read first).
func testRoundTrips(t *testing.T, c goredis.UniversalClient, ringTrips int64) {
	ctx := context.Background()
	counter := &roundTrips{}
	c.AddHook(counter)
	st := redis.New(c, redis.Options{})
	noErr(t, st.Preload(ctx), "Preload") // so that no call pays for a NOSCRIPT

	mt, pr, gu, li, jo, no := st.Meetings(), st.Presence(), st.Guests(), st.Links(), st.Jobs(), st.Nodes()
	title := "new"
	var lease state.Time
	steps := []struct {
		name string
		op   func() error
	}{
		{"Meetings.Create", func() error {
			return created(mt.Create(ctx, scheduled("mtg_a", at(time.Hour), at(2*time.Hour), "bob", "carol"), 7*24*time.Hour, at(0)))
		}},
		{"Meetings.Update", func() error {
			_, err := mt.Update(ctx, "mtg_a", "alice", state.MeetingPatch{Title: &title}, 7*24*time.Hour, at(0))
			return err
		}},
		{"Meetings.Start", func() error { _, err := mt.Start(ctx, "mtg_a", "alice", at(time.Minute)); return err }},
		{"Meetings.Join", func() error { _, err := mt.Join(ctx, "mtg_a", "alice", "a1", at(time.Hour)); return err }},
		{"Meetings.InviteLive", func() error {
			_, _, err := mt.InviteLive(ctx, "mtg_a", "alice", []string{"dave", "erin"}, 256, at(time.Hour))
			return err
		}},
		{"Meetings.MarkReminded", func() error { _, _, err := mt.MarkReminded(ctx, "mtg_a", 15); return err }},
		{"Meetings.Leave", func() error { _, err := mt.Leave(ctx, "mtg_a", "alice", "a1", at(3*time.Hour)); return err }},
		{"Meetings.EndIfOver", func() error { _, _, err := mt.EndIfOver(ctx, "mtg_a", at(3*time.Hour)); return err }},
		{"Meetings.Delete", func() error { _, err := mt.Delete(ctx, "mtg_a", "alice"); return err }},
		{"Meetings.Create (call)", func() error { return created(mt.Create(ctx, call("call_a", at(0), "bob", "carol", "dave"), 0, at(0))) }},
		{"Meetings.Ring (with job)", func() error {
			r, err := mt.Ring(ctx, "call_a", "alice", []string{"bob", "carol", "dave"},
				at(time.Minute), ringTimeout("call_a", at(time.Minute)), at(0))
			if err == nil {
				err = r.TimeoutErr
			}
			return err
		}},
		{"Meetings.Accept", func() error { _, err := mt.Accept(ctx, "call_a", "bob", "b1", at(time.Second)); return err }},
		{"Meetings.Decline", func() error { _, err := mt.Decline(ctx, "call_a", "carol", at(time.Second)); return err }},
		{"Meetings.ExpireRings", func() error { _, err := mt.ExpireRings(ctx, "call_a", at(time.Minute)); return err }},

		{"Presence.Connect", func() error {
			_, err := pr.Connect(ctx, state.Conn{ID: "c1", UserID: "alice", DeviceID: "phone", NodeID: "n1"}, 2*time.Minute, 20, at(0))
			return err
		}},
		{"Presence.Heartbeat", func() error {
			_, err := pr.Heartbeat(ctx, state.Conn{ID: "c1", UserID: "alice", DeviceID: "phone", NodeID: "n1"}, 2*time.Minute, at(time.Minute))
			return err
		}},
		{"Presence.SetJoined", func() error {
			_, err := pr.SetJoined(ctx, "alice", "c1", "call_a", true, at(time.Minute))
			return err
		}},
		{"Presence.Disconnect", func() error { _, err := pr.Disconnect(ctx, "alice", "c1", at(time.Minute)); return err }},
		{"Presence.SettleOffline", func() error {
			_, err := pr.SettleOffline(ctx, "alice", 30*24*time.Hour, at(2*time.Minute))
			return err
		}},

		{"Guests.CreateSession", func() error { return gu.CreateSession(ctx, guestSession("s1", "mtg_b"), at(0)) }},
		{"Guests.Connect", func() error { _, err := gu.Connect(ctx, "mtg_b", "s1", "g1", at(0)); return err }},
		{"Guests.Request", func() error { _, err := gu.Request(ctx, "mtg_b", "s1", &title, at(0)); return err }},
		{"Guests.Decide", func() error {
			_, err := gu.Decide(ctx, "mtg_b", "s1", "alice", false, 5*time.Second, at(time.Second))
			return err
		}},
		{"Guests.Disconnect", func() error { _, _, err := gu.Disconnect(ctx, "mtg_b", "s1", "g1", at(time.Minute)); return err }},
		{"Guests.SettleLeft", func() error { _, _, err := gu.SettleLeft(ctx, "mtg_b", "s1", at(time.Minute)); return err }},
		{"Guests.Leave", func() error { _, _, err := gu.Leave(ctx, "mtg_b", "s1", at(time.Minute)); return err }},

		{"Links.CreateLink", func() error {
			return li.CreateLink(ctx, &state.Link{Token: "tok", MeetingID: "mtg_b", CreatedBy: "alice",
				CreatedAt: state.At(at(0)), ExpiresAt: state.At(at(time.Hour))}, at(0))
		}},
		{"Links.UseLink", func() error { _, err := li.UseLink(ctx, "tok", at(0)); return err }},

		{"Jobs.Schedule (3 jobs)", func() error {
			return jo.Schedule(ctx, state.Job{ID: "j1", Due: state.At(at(0))}, state.Job{ID: "j2", Due: state.At(at(0))},
				state.Job{ID: "j3", Due: state.At(at(time.Hour))})
		}},
		{"Jobs.Claim", func() error {
			js, err := jo.Claim(ctx, at(time.Second), time.Minute, 10)
			if err == nil && len(js) > 0 {
				lease = js[0].Lease
			}
			return err
		}},
		{"Jobs.Done", func() error { return jo.Done(ctx, state.Job{ID: "j1", Lease: lease}) }},
		{"Jobs.Cancel", func() error { return jo.Cancel(ctx, "j3") }},

		{"Nodes.Refresh", func() error { _, err := no.Refresh(ctx, "n1", 10*time.Second, at(0)); return err }},
		{"Nodes.ClaimDead", func() error { _, err := no.ClaimDead(ctx, at(time.Minute)); return err }},
		{"Nodes.Deregister", func() error { return no.Deregister(ctx, "n1") }},
	}
	for _, s := range steps {
		before := counter.n.Load()
		if err := s.op(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		n := counter.n.Load() - before
		t.Logf("%-26s %d round trip(s)", s.name, n)
		want := int64(1)
		if s.name == "Meetings.Ring (with job)" {
			want = ringTrips
		}
		if n != want {
			t.Errorf("%s took %d round trips, want %d", s.name, n, want)
		}
	}
}

// TestQueueKeepsRequestOrderWithinAMillisecond: guests that ask in the same
// millisecond are queued in the order they asked, not by id.
func TestQueueKeepsRequestOrderWithinAMillisecond(t *testing.T) {
	srv := redistest.Start(t)
	st, _ := freshStore(t, srv)
	ctx := context.Background()
	g := st.Guests()
	order := []string{"s9", "s1", "s5", "s3"}
	for _, id := range order {
		noErr(t, g.CreateSession(ctx, guestSession(id, "mtg_a"), at(0)), "CreateSession")
	}
	noErr(t, g.CreateSession(ctx, guestSession("s0", "mtg_a"), at(0)), "CreateSession")
	for _, id := range order {
		_, err := g.Request(ctx, "mtg_a", id, nil, at(time.Second))
		noErr(t, err, "Request")
	}
	_, err := g.Request(ctx, "mtg_a", "s0", nil, at(time.Second+time.Millisecond))
	noErr(t, err, "Request")
	q, err := g.Queue(ctx, "mtg_a")
	noErr(t, err, "Queue")
	var got []string
	for _, s := range q {
		got = append(got, s.ID)
	}
	if want := append(order, "s0"); !slices.Equal(got, want) {
		t.Fatalf("queue = %v, want %v", got, want)
	}
}

// TestInviteeIndexFollowsTheMeeting: an invitee's meeting index lives as
// long as the meeting, even past Options.IndexTTL.
func TestInviteeIndexFollowsTheMeeting(t *testing.T) {
	srv := redistest.Start(t)
	c := newClient(t, srv)
	ctx := context.Background()
	noErr(t, c.FlushAll(ctx).Err(), "FLUSHALL")
	st := redis.New(c, redis.Options{IndexTTL: time.Hour})
	m := scheduled("mtg_a", at(0), at(72*time.Hour), "bob")
	noErr(t, created(st.Meetings().Create(ctx, m, 24*time.Hour, at(0))), "Create")
	_, err := st.Meetings().Join(ctx, "mtg_a", "alice", "a1", at(time.Minute))
	noErr(t, err, "Join")
	_, _, err = st.Meetings().InviteLive(ctx, "mtg_a", "alice", []string{"dave"}, 0, at(time.Minute))
	noErr(t, err, "InviteLive")
	meeting, _ := c.PTTL(ctx, "sb:{mtg_a}:meeting").Result()
	index, _ := c.PTTL(ctx, "sb:{u:dave}:meetings").Result()
	if index < meeting-5*time.Second {
		t.Fatalf("dave's index lives %v, the meeting %v", index, meeting)
	}
}

// TestIndexesAreRepairedOnRead: index entries whose object is gone, or
// that a refused transition wrote, are dropped by their reader.
func TestIndexesAreRepairedOnRead(t *testing.T) {
	srv := redistest.Start(t)
	st, c := freshStore(t, srv)
	ctx := context.Background()
	mt := st.Meetings()
	noErr(t, created(mt.Create(ctx, scheduled("mtg_a", at(time.Hour), at(2*time.Hour), "bob"), time.Hour, at(0))), "Create")
	noErr(t, created(mt.Create(ctx, scheduled("mtg_b", at(time.Hour), at(2*time.Hour), "bob"), time.Hour, at(0))), "Create")
	_, err := mt.Delete(ctx, "mtg_b", "alice")
	noErr(t, err, "Delete")
	// A refused invitation (the meeting is not live) indexed carol anyway.
	_, _, err = mt.InviteLive(ctx, "mtg_a", "alice", []string{"carol"}, 0, at(0))
	if !errors.Is(err, state.ErrConflict) {
		t.Fatalf("InviteLive on a scheduled meeting: %v", err)
	}
	ms, err := mt.ListForUser(ctx, "bob", true, at(0), 0, 0)
	noErr(t, err, "ListForUser")
	if len(ms) != 1 || ms[0].ID != "mtg_a" {
		t.Fatalf("bob's meetings: %v", ms)
	}
	ms, err = mt.ListForUser(ctx, "carol", true, at(0), 0, 0)
	noErr(t, err, "ListForUser")
	if len(ms) != 0 {
		t.Fatalf("carol's meetings: %v", ms)
	}
	for user, want := range map[string][]string{"bob": {"mtg_a"}, "carol": nil} {
		got, _ := c.SMembers(ctx, "sb:{u:"+user+"}:meetings").Result()
		if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("%s's index after the read: %v, want %v", user, got, want)
		}
	}

	// A connection's node index entry outlives its Disconnect until read.
	p := st.Presence()
	_, err = p.Connect(ctx, state.Conn{ID: "c1", UserID: "alice", NodeID: "n1"}, time.Minute, 0, at(0))
	noErr(t, err, "Connect")
	_, err = p.Disconnect(ctx, "alice", "c1", at(time.Second))
	noErr(t, err, "Disconnect")
	conns, err := p.NodeConns(ctx, "n1")
	noErr(t, err, "NodeConns")
	if len(conns) != 0 {
		t.Fatalf("NodeConns after Disconnect: %v", conns)
	}
	if n, _ := c.HLen(ctx, "sb:{node:n1}:conns").Result(); n != 0 {
		t.Fatalf("node index still holds %d entries", n)
	}
}

// TestBusyMarksDoNotGrowThePresenceHash checks the layout that makes a busy
// mark cost the same however many meetings its connection is in: the marks
// are members of their own set, which lives as long as the presence hash,
// and the hash that every presence script reads holds only their count.
func TestBusyMarksDoNotGrowThePresenceHash(t *testing.T) {
	srv := redistest.Start(t)
	st, c := freshStore(t, srv)
	ctx := context.Background()
	p := st.Presence()
	hash, marks := "sb:{u:alice}:presence", "sb:{u:alice}:marks"
	_, err := p.Connect(ctx, state.Conn{ID: "c1", UserID: "alice", DeviceID: "phone", NodeID: "n1"}, time.Minute, 0, at(0))
	noErr(t, err, "Connect")
	entry := c.HGet(ctx, hash, "c:c1").Val()
	fields := c.HLen(ctx, hash).Val()
	const n = 50
	for i := range n {
		_, err := p.SetJoined(ctx, "alice", "c1", fmt.Sprintf("call_%d", i), true, at(time.Second))
		noErr(t, err, "SetJoined")
	}
	if got := c.HGet(ctx, hash, "c:c1").Val(); got != entry {
		t.Errorf("the connection entry changed with its marks: %q, was %q", got, entry)
	}
	if got := c.HLen(ctx, hash).Val(); got != fields+1 {
		t.Errorf("presence hash has %d fields after %d marks, want %d (the count added)", got, n, fields+1)
	}
	if got := c.HGet(ctx, hash, "n:c1").Val(); got != fmt.Sprint(n) {
		t.Errorf("n:c1 = %q, want %d", got, n)
	}
	if got := c.SCard(ctx, marks).Val(); got != n {
		t.Errorf("marks set has %d members, want %d", got, n)
	}
	hashTTL, marksTTL := c.PTTL(ctx, hash).Val(), c.PTTL(ctx, marks).Val()
	if marksTTL <= 0 || marksTTL > hashTTL {
		t.Errorf("marks TTL %v, want within the presence hash's %v", marksTTL, hashTTL)
	}
	for i := range n {
		_, err := p.SetJoined(ctx, "alice", "c1", fmt.Sprintf("call_%d", i), false, at(2*time.Second))
		noErr(t, err, "SetJoined")
	}
	if c.HExists(ctx, hash, "n:c1").Val() || c.Exists(ctx, marks).Val() != 0 {
		t.Errorf("after every leave: n:c1 exists %v, marks set exists %v", c.HExists(ctx, hash, "n:c1").Val(), c.Exists(ctx, marks).Val())
	}
}

// TestExpiredConnectionsLoseTheirMarks checks that the entry of a connection
// dead for longer than the hold is dropped with its marks, by the next
// script that keeps the user's presence, while another connection's marks
// stay.
func TestExpiredConnectionsLoseTheirMarks(t *testing.T) {
	srv := redistest.Start(t)
	st, c := freshStore(t, srv)
	ctx := context.Background()
	p := st.Presence()
	connect := func(id string, ttl time.Duration, now time.Time) {
		t.Helper()
		_, err := p.Connect(ctx, state.Conn{ID: id, UserID: "alice", DeviceID: id, NodeID: "n1"}, ttl, 0, now)
		noErr(t, err, "Connect "+id)
	}
	join := func(id, meeting string, now time.Time) {
		t.Helper()
		_, err := p.SetJoined(ctx, "alice", id, meeting, true, now)
		noErr(t, err, "SetJoined "+id)
	}
	connect("c1", 10*time.Second, at(0))
	connect("c2", time.Hour, at(0))
	join("c1", "call_a", at(time.Second))
	join("c1", "call_b", at(time.Second))
	join("c2", "call_c", at(time.Second))
	connect("c2", time.Hour, at(30*time.Minute)) // a heartbeat long after c1 died
	hash, marks := "sb:{u:alice}:presence", "sb:{u:alice}:marks"
	if c.HExists(ctx, hash, "c:c1").Val() || c.HExists(ctx, hash, "n:c1").Val() {
		t.Errorf("c1's entry or count outlived it: %v", c.HGetAll(ctx, hash).Val())
	}
	got := c.SMembers(ctx, marks).Val()
	if len(got) != 1 || got[0] != "2:c2call_c" {
		t.Errorf("marks = %q, want only c2's call_c", got)
	}
	r, err := p.Disconnect(ctx, "alice", "c2", at(31*time.Minute))
	noErr(t, err, "Disconnect")
	if len(r.Meetings) != 1 || r.Meetings[0] != "call_c" {
		t.Errorf("Disconnect c2 Meetings = %q, want [call_c]", r.Meetings)
	}
}
