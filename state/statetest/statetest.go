// Package statetest is the conformance suite of the state interfaces. Every
// implementation of state.Store (state/memory, state/redis) runs it:
//
//	func TestConformance(t *testing.T) {
//		statetest.Run(t, func(t *testing.T) state.Store { return memory.New(time.Now) })
//	}
//
// The suite is written only against the interfaces of package state. It never
// sleeps and never reads the wall clock: every time it passes is explicit,
// on a timeline that starts at 2026-11-25T10:00:00Z. Stores are expected to
// compute their TTLs relative to the now passed with each write (as a Redis
// PEXPIRE would), so the suite's timeline may be anywhere relative to the
// store's own clock; the TTLs it uses are hours or days long.
//
// Where a doc comment of package state leaves a choice open, the test that
// pins the choice says so in a one-line comment starting with "Choice:".
package statetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/state"
)

// Run runs the whole suite. newStore must return a new, empty store for each
// call; every subtest gets its own. Subtests run one after the other, so
// newStore may reuse one backend (a Redis database it flushes, say).
func Run(t *testing.T, newStore func(t *testing.T) state.Store) {
	t.Run("Store", func(t *testing.T) { testStore(t, newStore) })
	t.Run("Meetings", func(t *testing.T) { testMeetings(t, newStore) })
	t.Run("Calls", func(t *testing.T) { testCalls(t, newStore) })
	t.Run("Presence", func(t *testing.T) { testPresence(t, newStore) })
	t.Run("Guests", func(t *testing.T) { testGuests(t, newStore) })
	t.Run("Links", func(t *testing.T) { testLinks(t, newStore) })
	t.Run("Jobs", func(t *testing.T) { testJobs(t, newStore) })
	t.Run("Nodes", func(t *testing.T) { testNodes(t, newStore) })
}

// factory makes a fresh store for one subtest.
type factory = func(t *testing.T) state.Store

// subtest runs fn as a named subtest with its own fresh store.
func subtest(t *testing.T, newStore factory, name string, fn func(t *testing.T, st state.Store)) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		st := newStore(t)
		fn(t, st)
	})
}

func testStore(t *testing.T, newStore factory) {
	subtest(t, newStore, "Ping answers", func(t *testing.T, st state.Store) {
		if err := st.Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
	subtest(t, newStore, "sub-stores are not nil", func(t *testing.T, st state.Store) {
		if st.Meetings() == nil || st.Presence() == nil || st.Guests() == nil ||
			st.Links() == nil || st.Jobs() == nil || st.Nodes() == nil {
			t.Fatal("a sub-store is nil")
		}
	})
}

// ---- timeline ----

// at returns the instant d after the suite's base time 2026-11-25T10:00:00Z.
func at(d time.Duration) time.Time {
	return time.Date(2026, time.November, 25, 10, 0, 0, 0, time.UTC).Add(d)
}

const (
	hour      = time.Hour
	day       = 24 * time.Hour
	retention = 7 * day
	callLen   = 24 * time.Hour
)

// ---- fixtures ----

// scheduled returns a scheduled meeting owned by owner with the members
// invited, running from start to end.
func scheduled(id, owner string, start, end time.Time, members ...string) *state.Meeting {
	m := &state.Meeting{
		ID:            id,
		Title:         "title of " + id,
		Description:   "description of " + id,
		StartTime:     state.At(start),
		EndTime:       state.At(end),
		AllowExternal: true,
		CreatedBy:     owner,
		Status:        state.StatusScheduled,
		CreatedAt:     state.At(at(-day)),
		UpdatedAt:     state.At(at(-day)),
		Version:       1,
	}
	m.Participants = append(m.Participants, state.Participant{UserID: owner, Role: state.RoleOwner, Status: state.PartInvited})
	for _, u := range members {
		m.Participants = append(m.Participants, state.Participant{UserID: u, Role: state.RoleMember, Status: state.PartInvited})
	}
	return m
}

// live returns a live meeting whose owner is joined with connection conn.
func live(id, owner, conn string, start, end time.Time, members ...string) *state.Meeting {
	m := scheduled(id, owner, start, end, members...)
	m.Status = state.StatusLive
	m.StartedAt = state.TimePtr(start)
	p := m.Participant(owner)
	p.Status = state.PartJoined
	p.JoinedAt = state.TimePtr(start)
	m.Conns = map[string][]string{owner: {conn}}
	m.ActiveCount = 1
	return m
}

// ended returns a meeting that has ended at end.
func ended(id, owner string, start, end time.Time, members ...string) *state.Meeting {
	m := scheduled(id, owner, start, end, members...)
	m.Status = state.StatusEnded
	m.StartedAt = state.TimePtr(start)
	m.EndedAt = state.TimePtr(end)
	return m
}

// call returns an instant call created at now by caller from connection conn,
// with the members invited, as call:create makes it.
func call(id, caller, conn string, now time.Time, members ...string) *state.Meeting {
	m := &state.Meeting{
		ID:            id,
		IsInstantCall: true,
		StartTime:     state.At(now),
		EndTime:       state.At(now.Add(callLen)),
		CreatedBy:     caller,
		Status:        state.StatusLive,
		StartedAt:     state.TimePtr(now),
		CreatedAt:     state.At(now),
		UpdatedAt:     state.At(now),
		Conns:         map[string][]string{caller: {conn}},
		ActiveCount:   1,
		Version:       1,
	}
	m.Participants = append(m.Participants, state.Participant{UserID: caller, Role: state.RoleOwner, Status: state.PartJoined, JoinedAt: state.TimePtr(now)})
	for _, u := range members {
		m.Participants = append(m.Participants, state.Participant{UserID: u, Role: state.RoleMember, Status: state.PartInvited})
	}
	return m
}

// withStatus sets the status of user in m (creating fixtures in a given state).
func withStatus(m *state.Meeting, user, status string) *state.Meeting {
	m.Participant(user).Status = status
	return m
}

// ---- store helpers ----

func mustCreate(t *testing.T, st state.Store, m *state.Meeting, now time.Time) *state.Transition {
	t.Helper()
	tr, err := st.Meetings().Create(t.Context(), m, retention, now)
	if err != nil {
		t.Fatalf("Create %s: %v", m.ID, err)
	}
	return tr
}

func mustGet(t *testing.T, st state.Store, id string) *state.Meeting {
	t.Helper()
	m, err := st.Meetings().Get(t.Context(), id)
	if err != nil {
		t.Fatalf("Get %s: %v", id, err)
	}
	return m
}

// absent asserts that meeting id does not exist.
func absent(t *testing.T, st state.Store, id string) {
	t.Helper()
	if m, err := st.Meetings().Get(t.Context(), id); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("Get %s after deletion: got (%v, %v), want ErrNotFound", id, m, err)
	}
}

// snapshot is the full stored form of meeting id (internal fields included),
// or "<absent>".
func snapshot(t *testing.T, st state.Store, id string) string {
	t.Helper()
	m, err := st.Meetings().Get(t.Context(), id)
	if errors.Is(err, state.ErrNotFound) {
		return "<absent>"
	}
	if err != nil {
		t.Fatalf("Get %s: %v", id, err)
	}
	return jsonOf(t, m)
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return string(b)
}

// refused runs op, which must fail with want, and asserts that meeting id is
// exactly as before (a refused transition changes nothing, Version included).
func refused(t *testing.T, st state.Store, id string, want error, op func() error) {
	t.Helper()
	before := snapshot(t, st, id)
	err := op()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want %v", err, want)
	}
	if after := snapshot(t, st, id); after != before {
		t.Fatalf("a refused transition changed the meeting:\nbefore %s\nafter  %s", before, after)
	}
}

// ---- assertions ----

func noErr(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func isErr(t *testing.T, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

// eqTime asserts that got is the instant want (compared in TimeLayout, so in
// milliseconds).
func eqTime(t *testing.T, what string, got state.Time, want time.Time) {
	t.Helper()
	if g, w := got.String(), state.At(want).String(); g != w {
		t.Fatalf("%s = %q, want %q", what, g, w)
	}
}

// eqTimePtr asserts that got is set and is want.
func eqTimePtr(t *testing.T, what string, got *state.Time, want time.Time) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s is nil, want %s", what, state.At(want))
	}
	eqTime(t, what, *got, want)
}

func isNilTime(t *testing.T, what string, got *state.Time) {
	t.Helper()
	if got != nil {
		t.Fatalf("%s = %s, want nil", what, got)
	}
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

// eqSet asserts that got holds the same strings as want, in any order.
func eqSet(t *testing.T, what string, got, want []string) {
	t.Helper()
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Fatalf("%s = %q, want %q (any order)", what, got, want)
	}
}

// eqList asserts that got is exactly want, in order.
func eqList(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}

// status asserts the status of user in m.
func status(t *testing.T, m *state.Meeting, user, want string) {
	t.Helper()
	p := m.Participant(user)
	if p == nil {
		t.Fatalf("%s is not a participant of %s", user, m.ID)
	}
	if p.Status != want {
		t.Fatalf("status of %s in %s = %q, want %q", user, m.ID, p.Status, want)
	}
}

// bumped asserts that after is one change after before: Version + 1 and
// UpdatedAt = now.
// Choice: every successful transition bumps Version by exactly one.
func bumped(t *testing.T, before, after *state.Meeting, now time.Time) {
	t.Helper()
	if after.Version != before.Version+1 {
		t.Fatalf("Version = %d, want %d (one change)", after.Version, before.Version+1)
	}
	eqTime(t, "UpdatedAt", after.UpdatedAt, now)
}

// ids returns the ids of ms, in order.
func ids(ms []*state.Meeting) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

// activeUsers returns the users with a non-empty connection list.
func activeUsers(m *state.Meeting) []string {
	var out []string
	for u, cs := range m.Conns {
		if len(cs) > 0 {
			out = append(out, u)
		}
	}
	return out
}

// checkActive asserts ActiveCount and the joined users of m.
func checkActive(t *testing.T, m *state.Meeting, users ...string) {
	t.Helper()
	eqSet(t, "users in the room", activeUsers(m), users)
	eq(t, "ActiveCount", m.ActiveCount, len(users))
}

// ctx is shorthand for the test's context.
func ctx(t *testing.T) context.Context { return t.Context() }

// nth names the i-th of a family of ids.
func nth(prefix string, i int) string { return fmt.Sprintf("%s%02d", prefix, i) }
