package statetest

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/state"
)

const cooldown = 5 * time.Second

// session returns a registered guest session of meeting, created at at(0)
// and expiring a day later.
func session(id, meeting string) *state.Session {
	return &state.Session{
		ID:          id,
		MeetingID:   meeting,
		DisplayName: "guest " + id,
		Status:      state.SessionRegistered,
		CreatedAt:   state.At(at(0)),
		ExpiresAt:   state.At(at(day)),
		Keys:        json.RawMessage(`{"identity":"base64key"}`),
		TokenHash:   "sha256-of-token-" + id,
	}
}

func mustCreateSession(t *testing.T, st state.Store, s *state.Session) {
	t.Helper()
	noErr(t, st.Guests().CreateSession(ctx(t), s, at(0)), "CreateSession "+s.ID)
}

func mustGetSession(t *testing.T, st state.Store, id string) *state.Session {
	t.Helper()
	s, err := st.Guests().GetSession(ctx(t), id)
	noErr(t, err, "GetSession "+id)
	return s
}

func mustRequest(t *testing.T, st state.Store, id string, now time.Time) *state.Session {
	t.Helper()
	s, err := st.Guests().Request(ctx(t), mustGetSession(t, st, id).MeetingID, id, nil, now)
	noErr(t, err, "Request "+id)
	return s
}

func mustDecide(t *testing.T, st state.Store, id string, admit bool, now time.Time) *state.Session {
	t.Helper()
	s, err := st.Guests().Decide(ctx(t), mustGetSession(t, st, id).MeetingID, id, "alice", admit, cooldown, now)
	noErr(t, err, "Decide "+id)
	return s
}

// sessionSnap is the full stored form of session id, or "<absent>".
func sessionSnap(t *testing.T, st state.Store, id string) string {
	t.Helper()
	s, err := st.Guests().GetSession(ctx(t), id)
	if errors.Is(err, state.ErrNotFound) {
		return "<absent>"
	}
	noErr(t, err, "GetSession "+id)
	return jsonOf(t, s)
}

// refusedSession runs op, which must fail with want, and asserts that session
// id and the queue of its meeting are unchanged.
func refusedSession(t *testing.T, st state.Store, id, meeting string, want error, op func() error) {
	t.Helper()
	before, qBefore := sessionSnap(t, st, id), queueIDs(t, st, meeting)
	isErr(t, op(), want, "refused transition")
	eq(t, "session after a refused transition", sessionSnap(t, st, id), before)
	eqList(t, "queue after a refused transition", queueIDs(t, st, meeting), qBefore)
}

func queueIDs(t *testing.T, st state.Store, meeting string) []string {
	t.Helper()
	q, err := st.Guests().Queue(ctx(t), meeting)
	noErr(t, err, "Queue")
	var out []string
	for _, s := range q {
		if s.Status != state.SessionWaiting {
			t.Fatalf("session %s in the queue is %s", s.ID, s.Status)
		}
		out = append(out, s.ID)
	}
	return out
}

func testGuests(t *testing.T, newStore factory) {
	subtest(t, newStore, "GetSession returns the session as created", func(t *testing.T, st state.Store) {
		s := session("s1", "mtg_a")
		want := jsonOf(t, s)
		mustCreateSession(t, st, s)
		s.Conns = append(s.Conns, "mutated")
		eq(t, "stored session", sessionSnap(t, st, "s1"), want)
	})
	subtest(t, newStore, "Session reads a session of its meeting only", func(t *testing.T, st state.Store) {
		s := session("s1", "mtg_a")
		mustCreateSession(t, st, s)
		got, err := st.Guests().Session(ctx(t), "mtg_a", "s1")
		noErr(t, err, "Session")
		eq(t, "session", jsonOf(t, got), sessionSnap(t, st, "s1"))
		_, err = st.Guests().Session(ctx(t), "mtg_b", "s1")
		isErr(t, err, state.ErrNotFound, "Session of another meeting")
		_, err = st.Guests().Session(ctx(t), "mtg_a", "nope")
		isErr(t, err, state.ErrNotFound, "unknown Session")
	})
	subtest(t, newStore, "an existing id is ErrConflict", func(t *testing.T, st state.Store) {
		mustCreateSession(t, st, session("s1", "mtg_a"))
		before := sessionSnap(t, st, "s1")
		// Choice: a session is never silently overwritten.
		err := st.Guests().CreateSession(ctx(t), session("s1", "mtg_b"), at(0))
		isErr(t, err, state.ErrConflict, "CreateSession twice")
		eq(t, "session", sessionSnap(t, st, "s1"), before)
	})
	subtest(t, newStore, "unknown session is ErrNotFound everywhere", func(t *testing.T, st state.Store) {
		g := st.Guests()
		_, err := g.GetSession(ctx(t), "nope")
		isErr(t, err, state.ErrNotFound, "GetSession")
		_, err = g.Request(ctx(t), "mtg_a", "nope", nil, at(0))
		isErr(t, err, state.ErrNotFound, "Request")
		_, err = g.Decide(ctx(t), "mtg_a", "nope", "alice", true, cooldown, at(0))
		isErr(t, err, state.ErrNotFound, "Decide")
		_, err = g.Connect(ctx(t), "mtg_a", "nope", "g1", at(0))
		isErr(t, err, state.ErrNotFound, "Connect")
		_, _, err = g.Disconnect(ctx(t), "mtg_a", "nope", "g1", at(0))
		isErr(t, err, state.ErrNotFound, "Disconnect")
		_, _, err = g.SettleLeft(ctx(t), "mtg_a", "nope", at(0))
		isErr(t, err, state.ErrNotFound, "SettleLeft")
		eqList(t, "queue of an unknown meeting", queueIDs(t, st, "mtg_nope"), nil)
	})
	subtest(t, newStore, "Request queues a registered session", func(t *testing.T, st state.Store) {
		mustCreateSession(t, st, session("s1", "mtg_a"))
		name := "new name"
		s, err := st.Guests().Request(ctx(t), "mtg_a", "s1", &name, at(time.Minute))
		noErr(t, err, "Request")
		eq(t, "Status", s.Status, state.SessionWaiting)
		eq(t, "DisplayName", s.DisplayName, name)
		eqTimePtr(t, "QueuedAt", s.QueuedAt, at(time.Minute))
		eq(t, "stored = returned", sessionSnap(t, st, "s1"), jsonOf(t, s))
		eqList(t, "queue", queueIDs(t, st, "mtg_a"), []string{"s1"})
	})
	subtest(t, newStore, "Request without a name keeps the registered one", func(t *testing.T, st state.Store) {
		mustCreateSession(t, st, session("s1", "mtg_a"))
		s := mustRequest(t, st, "s1", at(time.Minute))
		eq(t, "DisplayName", s.DisplayName, "guest s1")
	})
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, st state.Store)
	}{
		{"waiting", func(t *testing.T, st state.Store) { mustRequest(t, st, "s1", at(time.Second)) }},
		{"admitted", func(t *testing.T, st state.Store) {
			mustRequest(t, st, "s1", at(time.Second))
			mustDecide(t, st, "s1", true, at(2*time.Second))
		}},
	} {
		subtest(t, newStore, "Request while "+tc.name+" is ErrConflict", func(t *testing.T, st state.Store) {
			mustCreateSession(t, st, session("s1", "mtg_a"))
			tc.setup(t, st)
			refusedSession(t, st, "s1", "mtg_a", state.ErrConflict, func() error {
				name := "again"
				_, err := st.Guests().Request(ctx(t), "mtg_a", "s1", &name, at(time.Minute))
				return err
			})
		})
	}
	subtest(t, newStore, "a declined guest may ask again after the cooldown only", func(t *testing.T, st state.Store) {
		mustCreateSession(t, st, session("s1", "mtg_a"))
		mustRequest(t, st, "s1", at(time.Second))
		mustDecide(t, st, "s1", false, at(10*time.Second))
		refusedSession(t, st, "s1", "mtg_a", state.ErrRateLimited, func() error {
			_, err := st.Guests().Request(ctx(t), "mtg_a", "s1", nil, at(10*time.Second+cooldown-time.Millisecond))
			return err
		})
		s := mustRequest(t, st, "s1", at(10*time.Second+cooldown+time.Second))
		eq(t, "Status", s.Status, state.SessionWaiting)
		eqTimePtr(t, "QueuedAt", s.QueuedAt, at(10*time.Second+cooldown+time.Second))
		eqList(t, "queue", queueIDs(t, st, "mtg_a"), []string{"s1"})
	})
	subtest(t, newStore, "a left guest may ask again", func(t *testing.T, st state.Store) {
		mustCreateSession(t, st, session("s1", "mtg_a"))
		g := st.Guests()
		_, err := g.Connect(ctx(t), "mtg_a", "s1", "g1", at(0))
		noErr(t, err, "Connect")
		mustRequest(t, st, "s1", at(time.Second))
		_, _, err = g.Disconnect(ctx(t), "mtg_a", "s1", "g1", at(2*time.Second))
		noErr(t, err, "Disconnect")
		_, changedNow, err := g.SettleLeft(ctx(t), "mtg_a", "s1", at(7*time.Second))
		noErr(t, err, "SettleLeft")
		eq(t, "left", changedNow, true)
		_, err = g.Connect(ctx(t), "mtg_a", "s1", "g2", at(time.Minute))
		noErr(t, err, "Connect again")
		s := mustRequest(t, st, "s1", at(time.Minute))
		eq(t, "Status", s.Status, state.SessionWaiting)
		eqList(t, "queue", queueIDs(t, st, "mtg_a"), []string{"s1"})
	})
	subtest(t, newStore, "Decide admits a waiting guest", func(t *testing.T, st state.Store) {
		mustCreateSession(t, st, session("s1", "mtg_a"))
		mustRequest(t, st, "s1", at(time.Second))
		s, err := st.Guests().Decide(ctx(t), "mtg_a", "s1", "bob", true, cooldown, at(2*time.Second))
		noErr(t, err, "Decide")
		eq(t, "Status", s.Status, state.SessionAdmitted)
		eq(t, "AdmittedBy", s.AdmittedBy, "bob")
		eqTimePtr(t, "DecidedAt", s.DecidedAt, at(2*time.Second))
		eq(t, "stored = returned", sessionSnap(t, st, "s1"), jsonOf(t, s))
		eqList(t, "queue", queueIDs(t, st, "mtg_a"), nil)
	})
	subtest(t, newStore, "Decide declines a waiting guest", func(t *testing.T, st state.Store) {
		mustCreateSession(t, st, session("s1", "mtg_a"))
		mustRequest(t, st, "s1", at(time.Second))
		s, err := st.Guests().Decide(ctx(t), "mtg_a", "s1", "bob", false, cooldown, at(2*time.Second))
		noErr(t, err, "Decide")
		eq(t, "Status", s.Status, state.SessionDeclined)
		eqTimePtr(t, "DecidedAt", s.DecidedAt, at(2*time.Second))
		eqTimePtr(t, "RetryAfter", s.RetryAfter, at(2*time.Second+cooldown))
		eq(t, "stored = returned", sessionSnap(t, st, "s1"), jsonOf(t, s))
		eqList(t, "queue", queueIDs(t, st, "mtg_a"), nil)
	})
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, st state.Store)
	}{
		{"registered", func(t *testing.T, st state.Store) {}},
		{"admitted", func(t *testing.T, st state.Store) {
			mustRequest(t, st, "s1", at(time.Second))
			mustDecide(t, st, "s1", true, at(2*time.Second))
		}},
		{"declined", func(t *testing.T, st state.Store) {
			mustRequest(t, st, "s1", at(time.Second))
			mustDecide(t, st, "s1", false, at(2*time.Second))
		}},
		{"left", func(t *testing.T, st state.Store) {
			mustRequest(t, st, "s1", at(time.Second))
			_, _, err := st.Guests().SettleLeft(ctx(t), "mtg_a", "s1", at(2*time.Second))
			noErr(t, err, "SettleLeft")
		}},
	} {
		for _, admit := range []bool{true, false} {
			name := "declining"
			if admit {
				name = "admitting"
			}
			subtest(t, newStore, name+" a "+tc.name+" guest is ErrConflict", func(t *testing.T, st state.Store) {
				mustCreateSession(t, st, session("s1", "mtg_a"))
				tc.setup(t, st)
				refusedSession(t, st, "s1", "mtg_a", state.ErrConflict, func() error {
					_, err := st.Guests().Decide(ctx(t), "mtg_a", "s1", "bob", admit, cooldown, at(time.Minute))
					return err
				})
			})
		}
	}
	subtest(t, newStore, "concurrent decisions: the first wins", func(t *testing.T, st state.Store) {
		mustCreateSession(t, st, session("s1", "mtg_a"))
		mustRequest(t, st, "s1", at(time.Second))
		const n = 32
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			wins   []*state.Session
			others []error
		)
		for i := range n {
			wg.Go(func() {
				s, err := st.Guests().Decide(ctx(t), "mtg_a", "s1", nth("host", i), i%2 == 0, cooldown, at(2*time.Second))
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					wins = append(wins, s)
				} else {
					others = append(others, err)
				}
			})
		}
		wg.Wait()
		if len(wins) != 1 {
			t.Fatalf("%d decisions succeeded, want exactly 1", len(wins))
		}
		for _, err := range others {
			isErr(t, err, state.ErrConflict, "losing decision")
		}
		eq(t, "stored = winner", sessionSnap(t, st, "s1"), jsonOf(t, wins[0]))
		eqList(t, "queue", queueIDs(t, st, "mtg_a"), nil)
	})
	subtest(t, newStore, "Queue is per meeting, oldest first", func(t *testing.T, st state.Store) {
		for _, s := range []*state.Session{session("s1", "mtg_a"), session("s2", "mtg_a"), session("s3", "mtg_a"), session("s4", "mtg_a"), session("x1", "mtg_b")} {
			mustCreateSession(t, st, s)
		}
		mustRequest(t, st, "s3", at(1*time.Second))
		mustRequest(t, st, "x1", at(2*time.Second))
		mustRequest(t, st, "s1", at(3*time.Second))
		mustRequest(t, st, "s4", at(4*time.Second))
		mustRequest(t, st, "s2", at(5*time.Second))
		eqList(t, "queue of mtg_a", queueIDs(t, st, "mtg_a"), []string{"s3", "s1", "s4", "s2"})
		eqList(t, "queue of mtg_b", queueIDs(t, st, "mtg_b"), []string{"x1"})

		mustDecide(t, st, "s1", true, at(6*time.Second))
		mustDecide(t, st, "s3", false, at(6*time.Second))
		eqList(t, "after decisions", queueIDs(t, st, "mtg_a"), []string{"s4", "s2"})
		mustRequest(t, st, "s3", at(7*time.Second+cooldown)) // asks again: back of the queue
		eqList(t, "after asking again", queueIDs(t, st, "mtg_a"), []string{"s4", "s2", "s3"})

		q, err := st.Guests().Queue(ctx(t), "mtg_a")
		noErr(t, err, "Queue")
		eq(t, "queued session", jsonOf(t, q[0]), sessionSnap(t, st, "s4"))
		q[0].Status, q[0].DisplayName = state.SessionAdmitted, "mutated"
		eqList(t, "after mutating a returned session", queueIDs(t, st, "mtg_a"), []string{"s4", "s2", "s3"})
	})
	subtest(t, newStore, "Connect and Disconnect report the last connection", func(t *testing.T, st state.Store) {
		mustCreateSession(t, st, session("s1", "mtg_a"))
		g := st.Guests()
		s, err := g.Connect(ctx(t), "mtg_a", "s1", "g1", at(0))
		noErr(t, err, "Connect g1")
		eqList(t, "Conns", s.Conns, []string{"g1"})
		s, err = g.Connect(ctx(t), "mtg_a", "s1", "g2", at(time.Second))
		noErr(t, err, "Connect g2")
		eqSet(t, "Conns", s.Conns, []string{"g1", "g2"})
		s, err = g.Connect(ctx(t), "mtg_a", "s1", "g2", at(time.Second))
		noErr(t, err, "Connect g2 again")
		eqSet(t, "Conns after connecting g2 twice", s.Conns, []string{"g1", "g2"})

		s, last, err := g.Disconnect(ctx(t), "mtg_a", "s1", "g1", at(2*time.Second))
		noErr(t, err, "Disconnect g1")
		eq(t, "last after g1", last, false)
		eqList(t, "Conns", s.Conns, []string{"g2"})
		// Choice: a connection the session does not hold is not its last one.
		_, last, err = g.Disconnect(ctx(t), "mtg_a", "s1", "nope", at(3*time.Second))
		noErr(t, err, "Disconnect unknown")
		eq(t, "last after an unknown connection", last, false)
		s, last, err = g.Disconnect(ctx(t), "mtg_a", "s1", "g2", at(4*time.Second))
		noErr(t, err, "Disconnect g2")
		eq(t, "last after g2", last, true)
		eqList(t, "Conns", s.Conns, nil)
		eqList(t, "stored Conns", mustGetSession(t, st, "s1").Conns, nil)
		eq(t, "Status", s.Status, state.SessionRegistered) // leaving waits for SettleLeft
	})
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, st state.Store)
		changes bool
	}{
		{"a registered guest leaves", func(t *testing.T, st state.Store) {}, true},
		{"a waiting guest leaves the queue", func(t *testing.T, st state.Store) { mustRequest(t, st, "s1", at(time.Second)) }, true},
		{"an admitted guest leaves", func(t *testing.T, st state.Store) {
			mustRequest(t, st, "s1", at(time.Second))
			mustDecide(t, st, "s1", true, at(2*time.Second))
		}, true},
		{"a declined guest stays declined", func(t *testing.T, st state.Store) {
			mustRequest(t, st, "s1", at(time.Second))
			mustDecide(t, st, "s1", false, at(2*time.Second))
		}, false},
		{"a left guest stays left", func(t *testing.T, st state.Store) {
			_, _, err := st.Guests().SettleLeft(ctx(t), "mtg_a", "s1", at(2*time.Second))
			noErr(t, err, "SettleLeft")
		}, false},
		{"a guest with a live connection stays", func(t *testing.T, st state.Store) {
			mustRequest(t, st, "s1", at(time.Second))
			_, err := st.Guests().Connect(ctx(t), "mtg_a", "s1", "g1", at(2*time.Second))
			noErr(t, err, "Connect")
		}, false},
	} {
		subtest(t, newStore, "SettleLeft: "+tc.name, func(t *testing.T, st state.Store) {
			mustCreateSession(t, st, session("s1", "mtg_a"))
			tc.setup(t, st)
			before := sessionSnap(t, st, "s1")
			s, changedNow, err := st.Guests().SettleLeft(ctx(t), "mtg_a", "s1", at(time.Minute))
			noErr(t, err, "SettleLeft")
			eq(t, "changed", changedNow, tc.changes)
			if !tc.changes {
				eq(t, "session", sessionSnap(t, st, "s1"), before)
				return
			}
			eq(t, "Status", s.Status, state.SessionLeft)
			eq(t, "stored = returned", sessionSnap(t, st, "s1"), jsonOf(t, s))
			eqList(t, "queue", queueIDs(t, st, "mtg_a"), nil)
		})
	}
	subtest(t, newStore, "a guest that reconnects within the grace keeps its place", func(t *testing.T, st state.Store) {
		for _, id := range []string{"s1", "s2"} {
			mustCreateSession(t, st, session(id, "mtg_a"))
		}
		g := st.Guests()
		_, err := g.Connect(ctx(t), "mtg_a", "s1", "g1", at(0))
		noErr(t, err, "Connect")
		mustRequest(t, st, "s1", at(time.Second))
		mustRequest(t, st, "s2", at(2*time.Second))
		_, last, err := g.Disconnect(ctx(t), "mtg_a", "s1", "g1", at(3*time.Second))
		noErr(t, err, "Disconnect")
		eq(t, "last", last, true)
		_, err = g.Connect(ctx(t), "mtg_a", "s1", "g2", at(4*time.Second))
		noErr(t, err, "Connect again")
		s, changedNow, err := g.SettleLeft(ctx(t), "mtg_a", "s1", at(8*time.Second))
		noErr(t, err, "SettleLeft")
		eq(t, "changed", changedNow, false)
		eq(t, "Status", s.Status, state.SessionWaiting)
		eqList(t, "queue", queueIDs(t, st, "mtg_a"), []string{"s1", "s2"})
	})
	subtest(t, newStore, "a session named with another meeting is ErrNotFound", func(t *testing.T, st state.Store) {
		mustCreateSession(t, st, session("s1", "mtg_a"))
		mustCreateSession(t, st, session("s2", "mtg_a"))
		mustRequest(t, st, "s2", at(time.Second))
		g := st.Guests()
		ops := map[string]func(id string) error{
			"Request": func(id string) error { _, err := g.Request(ctx(t), "mtg_b", id, nil, at(time.Minute)); return err },
			"Decide": func(id string) error {
				_, err := g.Decide(ctx(t), "mtg_b", id, "bob", true, cooldown, at(time.Minute))
				return err
			},
			"Connect": func(id string) error { _, err := g.Connect(ctx(t), "mtg_b", id, "g9", at(time.Minute)); return err },
			"Disconnect": func(id string) error {
				_, _, err := g.Disconnect(ctx(t), "mtg_b", id, "g1", at(time.Minute))
				return err
			},
			"SettleLeft": func(id string) error { _, _, err := g.SettleLeft(ctx(t), "mtg_b", id, at(time.Minute)); return err },
			"Leave":      func(id string) error { _, _, err := g.Leave(ctx(t), "mtg_b", id, at(time.Minute)); return err },
		}
		_, err := g.Connect(ctx(t), "mtg_a", "s1", "g1", at(0))
		noErr(t, err, "Connect")
		for name, op := range ops {
			for _, id := range []string{"s1", "s2"} {
				t.Run(name+" "+id, func(t *testing.T) {
					refusedSession(t, st, id, "mtg_a", state.ErrNotFound, func() error { return op(id) })
					eqList(t, "queue of mtg_b", queueIDs(t, st, "mtg_b"), nil)
				})
			}
		}
	})
	subtest(t, newStore, "a session past its expiry is ErrNotFound", func(t *testing.T, st state.Store) {
		// Choice: a session is gone from its ExpiresAt on, as seen from the
		// now of each call (GetSession relies on the store's TTL alone).
		mustCreateSession(t, st, session("s1", "mtg_a"))
		late := at(day)
		refusedSession(t, st, "s1", "mtg_a", state.ErrNotFound, func() error {
			_, err := st.Guests().Request(ctx(t), "mtg_a", "s1", nil, late)
			return err
		})
		refusedSession(t, st, "s1", "mtg_a", state.ErrNotFound, func() error {
			_, err := st.Guests().Connect(ctx(t), "mtg_a", "s1", "g1", late)
			return err
		})
	})
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, st state.Store)
		changes bool
	}{
		{"a registered guest", func(t *testing.T, st state.Store) {}, true},
		{"a waiting guest with a live connection", func(t *testing.T, st state.Store) {
			_, err := st.Guests().Connect(ctx(t), "mtg_a", "s1", "g1", at(0))
			noErr(t, err, "Connect")
			mustRequest(t, st, "s1", at(time.Second))
		}, true},
		{"an admitted guest", func(t *testing.T, st state.Store) {
			mustRequest(t, st, "s1", at(time.Second))
			mustDecide(t, st, "s1", true, at(2*time.Second))
		}, true},
		{"a declined guest", func(t *testing.T, st state.Store) {
			mustRequest(t, st, "s1", at(time.Second))
			mustDecide(t, st, "s1", false, at(2*time.Second))
		}, true},
		{"a left guest", func(t *testing.T, st state.Store) {
			_, _, err := st.Guests().Leave(ctx(t), "mtg_a", "s1", at(2*time.Second))
			noErr(t, err, "Leave")
		}, false},
	} {
		subtest(t, newStore, "Leave: "+tc.name, func(t *testing.T, st state.Store) {
			mustCreateSession(t, st, session("s1", "mtg_a"))
			mustCreateSession(t, st, session("s2", "mtg_a"))
			tc.setup(t, st)
			mustRequest(t, st, "s2", at(3*time.Second))
			before := sessionSnap(t, st, "s1")
			s, changedNow, err := st.Guests().Leave(ctx(t), "mtg_a", "s1", at(time.Minute))
			noErr(t, err, "Leave")
			eq(t, "changed", changedNow, tc.changes)
			eq(t, "Status", s.Status, state.SessionLeft)
			if !tc.changes {
				eq(t, "session", sessionSnap(t, st, "s1"), before)
			}
			eq(t, "stored = returned", sessionSnap(t, st, "s1"), jsonOf(t, s))
			eqList(t, "queue", queueIDs(t, st, "mtg_a"), []string{"s2"})
		})
	}
	subtest(t, newStore, "Leave of an unknown session is ErrNotFound", func(t *testing.T, st state.Store) {
		_, _, err := st.Guests().Leave(ctx(t), "mtg_a", "nope", at(0))
		isErr(t, err, state.ErrNotFound, "Leave")
	})
	subtest(t, newStore, "a declined guest that leaves still waits out the cooldown", func(t *testing.T, st state.Store) {
		mustCreateSession(t, st, session("s1", "mtg_a"))
		mustRequest(t, st, "s1", at(time.Second))
		mustDecide(t, st, "s1", false, at(2*time.Second))
		_, _, err := st.Guests().Leave(ctx(t), "mtg_a", "s1", at(3*time.Second))
		noErr(t, err, "Leave")
		// Choice: leaving does not skip the admission cooldown.
		refusedSession(t, st, "s1", "mtg_a", state.ErrRateLimited, func() error {
			_, err := st.Guests().Request(ctx(t), "mtg_a", "s1", nil, at(4*time.Second))
			return err
		})
		mustRequest(t, st, "s1", at(2*time.Second+cooldown+time.Second))
	})
	subtest(t, newStore, "returned sessions are copies", func(t *testing.T, st state.Store) {
		mustCreateSession(t, st, session("s1", "mtg_a"))
		_, err := st.Guests().Connect(ctx(t), "mtg_a", "s1", "g1", at(0))
		noErr(t, err, "Connect")
		s := mustRequest(t, st, "s1", at(time.Second))
		want := jsonOf(t, s)
		s.Conns[0] = "stolen"
		*s.QueuedAt = state.At(at(99 * hour))
		s.Keys[0] = '['
		got := mustGetSession(t, st, "s1")
		eq(t, "stored", jsonOf(t, got), want)
		got.Conns[0], got.Status = "stolen", state.SessionAdmitted
		eq(t, "stored after mutating GetSession's result", sessionSnap(t, st, "s1"), want)
	})
}
