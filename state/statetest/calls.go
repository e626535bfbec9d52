package statetest

import (
	"testing"
	"time"

	"github.com/switchboard/switchboard/state"
)

const ring = 60 * time.Second // the ring timeout used in call tests

func testCalls(t *testing.T, newStore factory) {
	t.Run("Ring", func(t *testing.T) { testRing(t, newStore) })
	t.Run("Accept", func(t *testing.T) { testAccept(t, newStore) })
	t.Run("Decline", func(t *testing.T) { testDecline(t, newStore) })
	t.Run("ExpireRings", func(t *testing.T) { testExpireRings(t, newStore) })
	t.Run("Flows", func(t *testing.T) { testCallFlows(t, newStore) })
}

// newCall creates call_a by alice (connection a1) at at(0) with the members.
func newCall(t *testing.T, st state.Store, members ...string) {
	t.Helper()
	mustCreate(t, st, call("call_a", "alice", "a1", at(0), members...), at(0))
}

// ringTimeout is the ring-timeout job of call_a due at deadline, as the
// service builds it.
func ringTimeout(deadline time.Time) state.Job {
	return state.Job{ID: "ring:call_a:" + state.At(deadline).String(), Kind: "ring_timeout", Subject: "call_a", Due: state.At(deadline)}
}

// ringCall rings call_a until deadline with its ring-timeout job, the users
// of online connected first (Ring reads the store's presence).
func ringCall(t *testing.T, st state.Store, actor string, recipients, online []string, deadline, now time.Time) (*state.RingResult, error) {
	t.Helper()
	goOnline(t, st, now, online...)
	return st.Meetings().Ring(ctx(t), "call_a", actor, recipients, deadline, ringTimeout(deadline), now)
}

// goOnline connects a device of each user at now.
func goOnline(t *testing.T, st state.Store, now time.Time, users ...string) {
	t.Helper()
	for _, u := range users {
		mustConnect(t, st, conn("on-"+u, u, "on-"+u, "n1"), now)
	}
}

// mustRingCall is ringCall that must succeed and schedule its job.
func mustRingCall(t *testing.T, st state.Store, actor string, recipients, online []string, deadline, now time.Time) (*state.Meeting, []string) {
	t.Helper()
	r, err := ringCall(t, st, actor, recipients, online, deadline, now)
	noErr(t, err, "Ring")
	noErr(t, r.TimeoutErr, "Ring: ring timeout")
	return r.Meeting, r.Ringing
}

func mustRing(t *testing.T, st state.Store, actor string, recipients []string, now time.Time) []string {
	t.Helper()
	_, ringing := mustRingCall(t, st, actor, recipients, recipients, now.Add(ring), now)
	return ringing
}

// timeoutScheduled asserts that job j is scheduled as given: not due just
// before j.Due, due at j.Due. It claims the jobs due then.
func timeoutScheduled(t *testing.T, st state.Store, j state.Job) {
	t.Helper()
	for _, c := range mustClaim(t, st, j.Due.Add(-time.Millisecond), 100) {
		if c.ID == j.ID {
			t.Fatalf("job %s is due before %s: %s", j.ID, j.Due, jsonOf(t, c))
		}
	}
	for _, c := range mustClaim(t, st, j.Due.Time, 100) {
		if c.ID == j.ID {
			c.Lease = state.Time{}
			eq(t, "scheduled ring timeout", jsonOf(t, c), jsonOf(t, j))
			return
		}
	}
	t.Fatalf("job %s is not scheduled at %s", j.ID, j.Due)
}

func mustAccept(t *testing.T, st state.Store, user, conn string, now time.Time) *state.JoinResult {
	t.Helper()
	r, err := st.Meetings().Accept(ctx(t), "call_a", user, conn, now)
	noErr(t, err, "Accept "+user)
	return r
}

func mustDecline(t *testing.T, st state.Store, user string, now time.Time) *state.CallResult {
	t.Helper()
	r, err := st.Meetings().Decline(ctx(t), "call_a", user, now)
	noErr(t, err, "Decline "+user)
	return r
}

func mustLeave(t *testing.T, st state.Store, user, conn string, now time.Time) *state.LeaveResult {
	t.Helper()
	r, err := st.Meetings().Leave(ctx(t), "call_a", user, conn, now)
	noErr(t, err, "Leave "+user)
	return r
}

func mustExpire(t *testing.T, st state.Store, now time.Time) *state.CallResult {
	t.Helper()
	r, err := st.Meetings().ExpireRings(ctx(t), "call_a", now)
	noErr(t, err, "ExpireRings")
	return r
}

// callEnded asserts that a call ended with reason, that the result carries
// its last state, and that it is deleted (Get and ListForUser).
func callEnded(t *testing.T, st state.Store, m *state.Meeting, ended, deleted bool, reason, want string, now time.Time) {
	t.Helper()
	eq(t, "Ended", ended, true)
	eq(t, "Deleted", deleted, true)
	eq(t, "Reason", reason, want)
	if m == nil {
		t.Fatal("no last state with the ended call")
	}
	eq(t, "last state ID", m.ID, "call_a")
	eq(t, "last state Status", m.Status, state.StatusEnded)
	eqTimePtr(t, "last state EndedAt", m.EndedAt, now)
	absent(t, st, "call_a")
	for _, u := range m.Everyone() {
		ms, err := st.Meetings().ListForUser(ctx(t), u, true, now, 0, 10)
		noErr(t, err, "ListForUser")
		eqList(t, u+"'s upcoming after the call ended", ids(ms), nil)
	}
}

// callGoesOn asserts that a result did not end the call.
func callGoesOn(t *testing.T, st state.Store, ended, deleted bool, reason string) {
	t.Helper()
	eq(t, "Ended", ended, false)
	eq(t, "Deleted", deleted, false)
	eq(t, "Reason", reason, "")
	mustGet(t, st, "call_a")
}

func testRing(t *testing.T, newStore factory) {
	subtest(t, newStore, "marks recipients ringing until the deadline", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob", "carol", "dave")
		before := mustGet(t, st, "call_a")
		got, ringing := mustRingCall(t, st, "alice", []string{"bob", "carol"}, []string{"bob", "carol"}, at(ring), at(0))
		eqSet(t, "ringing", ringing, []string{"bob", "carol"})
		status(t, got, "bob", state.PartRinging)
		status(t, got, "carol", state.PartRinging)
		status(t, got, "dave", state.PartInvited)
		eqTimePtr(t, "bob RingDeadline", got.Participant("bob").RingDeadline, at(ring))
		bumped(t, before, got, at(0))
		eq(t, "stored = returned", snapshot(t, st, "call_a"), jsonOf(t, got))
	})
	subtest(t, newStore, "offline recipients stay invited", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob", "carol", "dave")
		got, ringing := mustRingCall(t, st, "alice", []string{"bob", "carol"},
			[]string{"carol", "dave", "mallory"}, at(ring), at(0))
		eqList(t, "ringing", ringing, []string{"carol"})
		status(t, got, "bob", state.PartInvited)
		status(t, got, "carol", state.PartRinging)
		status(t, got, "dave", state.PartInvited) // online but not a recipient
		isNilTime(t, "bob RingDeadline", got.Participant("bob").RingDeadline)
	})
	subtest(t, newStore, "reads the store's presence: online, busy and in the offline grace ring; expired, settled and unknown do not", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob", "carol", "dave", "erin", "frank", "gina")
		mustConnect(t, st, conn("e1", "erin", "e", "n1"), at(0)) // expired by the ring
		on := at(presenceTTL)
		mustConnect(t, st, conn("b1", "bob", "b", "n1"), on)
		mustConnect(t, st, conn("c1", "carol", "c", "n1"), on)
		mustSetJoined(t, st, "carol", "c1", "call_other", true, on) // busy
		mustConnect(t, st, conn("d1", "dave", "d", "n1"), on)
		mustDisconnect(t, st, "dave", "d1", on.Add(time.Second)) // in the grace
		mustConnect(t, st, conn("f1", "frank", "f", "n1"), on)
		mustDisconnect(t, st, "frank", "f1", on.Add(time.Second))
		mustSettle(t, st, "frank", on.Add(time.Second)) // offline
		now := on.Add(2 * time.Second)
		all := []string{"bob", "carol", "dave", "erin", "frank", "gina"}
		r, err := st.Meetings().Ring(ctx(t), "call_a", "alice", all, now.Add(ring), state.Job{}, now)
		noErr(t, err, "Ring")
		eqSet(t, "ringing", r.Ringing, []string{"bob", "carol", "dave"})
		// The same users Presence.Query reports as not offline.
		pres, err := st.Presence().Query(ctx(t), all, now)
		noErr(t, err, "Query")
		var notOffline []string
		for _, p := range pres {
			if p.Status != state.Offline {
				notOffline = append(notOffline, p.UserID)
			}
		}
		eqSet(t, "not offline in Query", notOffline, r.Ringing)
	})
	subtest(t, newStore, "nobody online changes nothing", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob")
		before := snapshot(t, st, "call_a")
		_, ringing := mustRingCall(t, st, "alice", []string{"bob"}, nil, at(ring), at(0))
		eqList(t, "ringing", ringing, nil)
		eq(t, "unchanged", snapshot(t, st, "call_a"), before)
		// Choice: the job is scheduled all the same (it finds nobody
		// ringing and does nothing).
		timeoutScheduled(t, st, ringTimeout(at(ring)))
	})
	subtest(t, newStore, "an offline recipient that is not a participant is still ErrInvalid", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob")
		refused(t, st, "call_a", state.ErrInvalid, func() error {
			_, err := ringCall(t, st, "alice", []string{"bob", "mallory"}, []string{"bob"}, at(ring), at(0))
			return err
		})
		timeoutScheduled(t, st, ringTimeout(at(ring)))
	})
	subtest(t, newStore, "ringing again moves the deadline", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob")
		mustRing(t, st, "alice", []string{"bob"}, at(0))
		got, ringing := mustRingCall(t, st, "alice", []string{"bob"}, []string{"bob"}, at(30*time.Second+ring), at(30*time.Second))
		eqList(t, "ringing", ringing, []string{"bob"})
		eqTimePtr(t, "bob RingDeadline", got.Participant("bob").RingDeadline, at(30*time.Second+ring))
		r := mustExpire(t, st, at(ring))
		eqList(t, "missed at the old deadline", r.Missed, nil)
	})
	subtest(t, newStore, "skips accepted, declined, joined and left; re-rings missed", func(t *testing.T, st state.Store) {
		m := call("call_a", "alice", "a1", at(0), "acc", "dec", "join", "left", "miss", "inv")
		withStatus(m, "acc", state.PartAccepted)
		withStatus(m, "dec", state.PartDeclined)
		withStatus(m, "join", state.PartJoined)
		withStatus(m, "left", state.PartLeft)
		withStatus(m, "miss", state.PartMissed)
		m.Conns["acc"], m.Conns["join"] = []string{"c1"}, []string{"j1"}
		m.ActiveCount = 3
		mustCreate(t, st, m, at(0))
		all := []string{"acc", "dec", "join", "left", "miss", "inv"}
		got, ringing := mustRingCall(t, st, "alice", all, all, at(ring), at(0))
		eqSet(t, "ringing", ringing, []string{"miss", "inv"})
		for u, want := range map[string]string{
			"acc": state.PartAccepted, "dec": state.PartDeclined, "join": state.PartJoined,
			"left": state.PartLeft, "miss": state.PartRinging, "inv": state.PartRinging,
		} {
			status(t, got, u, want)
		}
	})
	subtest(t, newStore, "any participant may ring", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob", "carol")
		mustAccept(t, st, "bob", "b1", at(time.Second))
		_, ringing := mustRingCall(t, st, "bob", []string{"carol"}, []string{"carol"}, at(ring), at(2*time.Second))
		eqList(t, "ringing", ringing, []string{"carol"})
	})
	subtest(t, newStore, "nobody to ring changes nothing", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob", "carol")
		mustDecline(t, st, "bob", at(time.Second))
		before := snapshot(t, st, "call_a")
		_, ringing := mustRingCall(t, st, "alice", []string{"bob"}, []string{"bob"}, at(ring), at(2*time.Second))
		eqList(t, "ringing", ringing, nil)
		// Choice: a Ring that rings nobody is not a change (no Version bump).
		eq(t, "unchanged", snapshot(t, st, "call_a"), before)
	})
	for _, tc := range []struct {
		name       string
		actor      string
		recipients []string
		want       error
	}{
		{"a recipient who is not a participant is ErrInvalid", "alice", []string{"bob", "mallory"}, state.ErrInvalid},
		{"the actor as recipient is ErrInvalid", "alice", []string{"alice", "bob"}, state.ErrInvalid},
		{"non-participant actor is ErrNotFound", "mallory", []string{"bob"}, state.ErrNotFound},
	} {
		subtest(t, newStore, tc.name, func(t *testing.T, st state.Store) {
			newCall(t, st, "bob", "carol")
			refused(t, st, "call_a", tc.want, func() error {
				_, err := ringCall(t, st, tc.actor, tc.recipients, tc.recipients, at(ring), at(0))
				return err
			})
			// Choice: a refused Ring schedules its job all the same (the
			// Redis store sends both in one pipeline); the job finds
			// nobody ringing and does nothing.
			timeoutScheduled(t, st, ringTimeout(at(ring)))
		})
	}
	subtest(t, newStore, "a meeting that is not a call is ErrNotFound", func(t *testing.T, st state.Store) {
		mustCreate(t, st, live("call_a", "alice", "a1", at(0), at(hour), "bob"), at(0))
		refused(t, st, "call_a", state.ErrNotFound, func() error {
			_, err := ringCall(t, st, "alice", []string{"bob"}, []string{"bob"}, at(ring), at(0))
			return err
		})
		timeoutScheduled(t, st, ringTimeout(at(ring)))
	})
	subtest(t, newStore, "schedules the ring-timeout job, due at the ring deadline", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob", "carol")
		eqList(t, "jobs before Ring", jobIDs(mustClaim(t, st, at(hour), 100)), nil)
		mustRingCall(t, st, "alice", []string{"bob"}, []string{"bob"}, at(ring), at(0))
		timeoutScheduled(t, st, ringTimeout(at(ring)))
	})
	subtest(t, newStore, "ringing again schedules the job of the new deadline", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob")
		mustRing(t, st, "alice", []string{"bob"}, at(0))
		mustRingCall(t, st, "alice", []string{"bob"}, []string{"bob"}, at(30*time.Second+ring), at(30*time.Second))
		timeoutScheduled(t, st, ringTimeout(at(30*time.Second+ring)))
	})
	subtest(t, newStore, "the job is scheduled as Jobs.Schedule would: an existing id moves, its lease cleared", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob")
		j := ringTimeout(at(ring))
		mustSchedule(t, st, state.Job{ID: j.ID, Kind: j.Kind, Subject: j.Subject, Due: state.At(at(hour))})
		mustRing(t, st, "alice", []string{"bob"}, at(0))
		timeoutScheduled(t, st, j) // claimed: leased
		mustRing(t, st, "alice", []string{"bob"}, at(0))
		timeoutScheduled(t, st, j) // scheduled again: the lease is gone
	})
	subtest(t, newStore, "a timeout with an empty ID schedules nothing", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob")
		goOnline(t, st, at(0), "bob")
		r, err := st.Meetings().Ring(ctx(t), "call_a", "alice", []string{"bob"}, at(ring), state.Job{}, at(0))
		noErr(t, err, "Ring")
		noErr(t, r.TimeoutErr, "Ring: ring timeout")
		eqList(t, "ringing", r.Ringing, []string{"bob"})
		eqList(t, "jobs", jobIDs(mustClaim(t, st, at(hour), 100)), nil)
	})
}

func testAccept(t *testing.T, newStore factory) {
	subtest(t, newStore, "a ringing participant accepts and joins the room", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob", "carol")
		mustRing(t, st, "alice", []string{"bob", "carol"}, at(0))
		before := mustGet(t, st, "call_a")
		r := mustAccept(t, st, "bob", "b1", at(5*time.Second))
		eq(t, "Already", r.Already, false)
		eq(t, "UserJoined", r.UserJoined, true)
		eq(t, "FirstJoined", r.FirstJoined, false) // alice is in the room
		eq(t, "Started", r.Started, false)
		status(t, r.Meeting, "bob", state.PartAccepted)
		status(t, r.Meeting, "carol", state.PartRinging)
		eqTimePtr(t, "bob JoinedAt", r.Meeting.Participant("bob").JoinedAt, at(5*time.Second))
		eqList(t, "Conns[bob]", r.Meeting.Conns["bob"], []string{"b1"})
		eq(t, "Answered", r.Meeting.Answered, true)
		checkActive(t, r.Meeting, "alice", "bob")
		bumped(t, before, r.Meeting, at(5*time.Second))
		eq(t, "stored = returned", snapshot(t, st, "call_a"), jsonOf(t, r.Meeting))
		// An accepted participant does not become missed at the old deadline.
		e := mustExpire(t, st, at(ring))
		eqList(t, "missed", e.Missed, []string{"carol"})
		status(t, e.Meeting, "bob", state.PartAccepted)
	})
	subtest(t, newStore, "an invited participant who was never rung may accept", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob")
		r := mustAccept(t, st, "bob", "b1", at(time.Second))
		status(t, r.Meeting, "bob", state.PartAccepted)
		checkActive(t, r.Meeting, "alice", "bob")
	})
	for _, tc := range []struct {
		name   string
		user   string
		status string
		want   error
	}{
		{"accepted again is ErrConflict", "bob", state.PartAccepted, state.ErrConflict},
		{"declined is ErrConflict", "bob", state.PartDeclined, state.ErrConflict},
		{"missed is ErrConflict", "bob", state.PartMissed, state.ErrConflict},
		{"left is ErrConflict", "bob", state.PartLeft, state.ErrConflict},
		{"the joined caller is ErrConflict", "alice", state.PartJoined, state.ErrConflict},
		{"non-participant is ErrNotFound", "mallory", "", state.ErrNotFound},
	} {
		subtest(t, newStore, tc.name, func(t *testing.T, st state.Store) {
			m := call("call_a", "alice", "a1", at(0), "bob", "carol")
			if tc.status != "" {
				withStatus(m, tc.user, tc.status)
			}
			if tc.status == state.PartAccepted {
				m.Conns["bob"], m.ActiveCount, m.Answered = []string{"b1"}, 2, true
			}
			mustCreate(t, st, m, at(0))
			refused(t, st, "call_a", tc.want, func() error {
				_, err := st.Meetings().Accept(ctx(t), "call_a", tc.user, "x2", at(time.Second))
				return err
			})
		})
	}
	subtest(t, newStore, "a meeting that is not a call is ErrNotFound", func(t *testing.T, st state.Store) {
		mustCreate(t, st, live("call_a", "alice", "a1", at(0), at(hour), "bob"), at(0))
		refused(t, st, "call_a", state.ErrNotFound, func() error {
			_, err := st.Meetings().Accept(ctx(t), "call_a", "bob", "b1", at(time.Second))
			return err
		})
	})
}

func testDecline(t *testing.T, newStore factory) {
	subtest(t, newStore, "one of several declines; the call goes on", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob", "carol")
		mustRing(t, st, "alice", []string{"bob", "carol"}, at(0))
		before := mustGet(t, st, "call_a")
		r := mustDecline(t, st, "bob", at(time.Second))
		callGoesOn(t, st, r.Ended, r.Deleted, r.Reason)
		eqList(t, "Missed", r.Missed, nil)
		status(t, r.Meeting, "bob", state.PartDeclined)
		status(t, r.Meeting, "carol", state.PartRinging)
		bumped(t, before, r.Meeting, at(time.Second))
		eq(t, "stored = returned", snapshot(t, st, "call_a"), jsonOf(t, r.Meeting))
		// A decliner is not turned into missed at the deadline.
		e := mustExpire(t, st, at(ring))
		eqList(t, "missed", e.Missed, []string{"carol"})
	})
	subtest(t, newStore, "an invited participant who was never rung may decline", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob", "carol")
		r := mustDecline(t, st, "bob", at(time.Second))
		status(t, r.Meeting, "bob", state.PartDeclined)
	})
	for _, tc := range []struct {
		name, user, status string
		want               error
	}{
		{"declined again is ErrConflict", "bob", state.PartDeclined, state.ErrConflict},
		{"accepted is ErrConflict", "bob", state.PartAccepted, state.ErrConflict},
		{"missed is ErrConflict", "bob", state.PartMissed, state.ErrConflict},
		{"the joined caller is ErrConflict", "alice", state.PartJoined, state.ErrConflict},
		{"non-participant is ErrNotFound", "mallory", "", state.ErrNotFound},
	} {
		subtest(t, newStore, tc.name, func(t *testing.T, st state.Store) {
			m := call("call_a", "alice", "a1", at(0), "bob", "carol")
			if tc.status != "" {
				withStatus(m, tc.user, tc.status)
			}
			if tc.status == state.PartAccepted {
				m.Conns["bob"], m.ActiveCount, m.Answered = []string{"b1"}, 2, true
			}
			mustCreate(t, st, m, at(0))
			refused(t, st, "call_a", tc.want, func() error {
				_, err := st.Meetings().Decline(ctx(t), "call_a", tc.user, at(time.Second))
				return err
			})
		})
	}
	subtest(t, newStore, "a meeting that is not a call is ErrNotFound", func(t *testing.T, st state.Store) {
		// Choice: Decline, like Ring and Accept, does not see scheduled meetings.
		mustCreate(t, st, live("call_a", "alice", "a1", at(0), at(hour), "bob"), at(0))
		refused(t, st, "call_a", state.ErrNotFound, func() error {
			_, err := st.Meetings().Decline(ctx(t), "call_a", "bob", at(time.Second))
			return err
		})
	})
}

func testExpireRings(t *testing.T, newStore factory) {
	subtest(t, newStore, "rings at or before now become missed", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob", "carol", "dave")
		mustRing(t, st, "alice", []string{"bob"}, at(0))                 // deadline 60s
		mustRing(t, st, "alice", []string{"carol"}, at(-30*time.Second)) // deadline 30s
		before := mustGet(t, st, "call_a")

		r := mustExpire(t, st, at(30*time.Second)) // exactly carol's deadline
		eqList(t, "Missed", r.Missed, []string{"carol"})
		callGoesOn(t, st, r.Ended, r.Deleted, r.Reason)
		status(t, r.Meeting, "carol", state.PartMissed)
		status(t, r.Meeting, "bob", state.PartRinging)
		bumped(t, before, r.Meeting, at(30*time.Second))
		eq(t, "stored = returned", snapshot(t, st, "call_a"), jsonOf(t, r.Meeting))
	})
	subtest(t, newStore, "nothing due changes nothing", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob")
		mustRing(t, st, "alice", []string{"bob"}, at(0))
		before := snapshot(t, st, "call_a")
		r := mustExpire(t, st, at(ring-time.Millisecond))
		eqList(t, "Missed", r.Missed, nil)
		callGoesOn(t, st, r.Ended, r.Deleted, r.Reason)
		eq(t, "unchanged", snapshot(t, st, "call_a"), before)
	})
	subtest(t, newStore, "a meeting that is not a call is ErrNotFound", func(t *testing.T, st state.Store) {
		// Choice: ring timeouts concern calls only, like Ring.
		mustCreate(t, st, live("call_a", "alice", "a1", at(0), at(hour), "bob"), at(0))
		refused(t, st, "call_a", state.ErrNotFound, func() error {
			_, err := st.Meetings().ExpireRings(ctx(t), "call_a", at(ring))
			return err
		})
	})
	subtest(t, newStore, "a call that no longer exists is ErrNotFound", func(t *testing.T, st state.Store) {
		_, err := st.Meetings().ExpireRings(ctx(t), "call_nope", at(0))
		isErr(t, err, state.ErrNotFound, "ExpireRings unknown")
	})
}

func testCallFlows(t *testing.T, newStore factory) {
	subtest(t, newStore, "ring, accept, leave: completed", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob")
		mustRing(t, st, "alice", []string{"bob"}, at(0))
		mustAccept(t, st, "bob", "b1", at(5*time.Second))
		r := mustLeave(t, st, "alice", "a1", at(time.Minute))
		eq(t, "UserLeft", r.UserLeft, true)
		callGoesOn(t, st, r.Ended, r.Deleted, r.Reason) // bob is still present
		status(t, r.Meeting, "alice", state.PartLeft)
		r = mustLeave(t, st, "bob", "b1", at(2*time.Minute))
		eq(t, "UserLeft", r.UserLeft, true)
		callEnded(t, st, r.Meeting, r.Ended, r.Deleted, r.Reason, state.ReasonCompleted, at(2*time.Minute))
		status(t, r.Meeting, "bob", state.PartLeft)
		checkActive(t, r.Meeting)
	})
	subtest(t, newStore, "the accepter leaves first, then the caller: completed", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob", "carol")
		mustRing(t, st, "alice", []string{"bob", "carol"}, at(0))
		mustAccept(t, st, "bob", "b1", at(5*time.Second))
		r := mustLeave(t, st, "bob", "b1", at(time.Minute))
		callGoesOn(t, st, r.Ended, r.Deleted, r.Reason)
		r = mustLeave(t, st, "alice", "a1", at(2*time.Minute))
		callEnded(t, st, r.Meeting, r.Ended, r.Deleted, r.Reason, state.ReasonCompleted, at(2*time.Minute))
	})
	subtest(t, newStore, "the caller leaves before anyone accepts: cancelled", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob", "carol")
		mustRing(t, st, "alice", []string{"bob", "carol"}, at(0))
		mustDecline(t, st, "bob", at(time.Second))
		r := mustLeave(t, st, "alice", "a1", at(10*time.Second))
		eq(t, "UserLeft", r.UserLeft, true)
		callEnded(t, st, r.Meeting, r.Ended, r.Deleted, r.Reason, state.ReasonCancelled, at(10*time.Second))
	})
	subtest(t, newStore, "the caller's second device keeps the call", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob")
		_, err := st.Meetings().Join(ctx(t), "call_a", "alice", "a2", at(time.Second))
		noErr(t, err, "Join a2")
		r := mustLeave(t, st, "alice", "a1", at(2*time.Second))
		eq(t, "UserLeft", r.UserLeft, false)
		callGoesOn(t, st, r.Ended, r.Deleted, r.Reason)
		r = mustLeave(t, st, "alice", "a2", at(3*time.Second))
		callEnded(t, st, r.Meeting, r.Ended, r.Deleted, r.Reason, state.ReasonCancelled, at(3*time.Second))
	})
	subtest(t, newStore, "everyone declines: declined", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob", "carol")
		mustRing(t, st, "alice", []string{"bob", "carol"}, at(0))
		r := mustDecline(t, st, "bob", at(time.Second))
		callGoesOn(t, st, r.Ended, r.Deleted, r.Reason)
		r = mustDecline(t, st, "carol", at(2*time.Second))
		callEnded(t, st, r.Meeting, r.Ended, r.Deleted, r.Reason, state.ReasonDeclined, at(2*time.Second))
		status(t, r.Meeting, "carol", state.PartDeclined)
	})
	subtest(t, newStore, "the only callee declines: declined", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob")
		mustRing(t, st, "alice", []string{"bob"}, at(0))
		r := mustDecline(t, st, "bob", at(time.Second))
		callEnded(t, st, r.Meeting, r.Ended, r.Deleted, r.Reason, state.ReasonDeclined, at(time.Second))
		// The caller is still in the room in the last state, so the caller can clear their busy status.
		eqList(t, "Conns[alice] of the last state", r.Meeting.Conns["alice"], []string{"a1"})
	})
	subtest(t, newStore, "the only callee misses: timeout", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob")
		mustRing(t, st, "alice", []string{"bob"}, at(0))
		r := mustExpire(t, st, at(ring))
		eqList(t, "Missed", r.Missed, []string{"bob"})
		callEnded(t, st, r.Meeting, r.Ended, r.Deleted, r.Reason, state.ReasonTimeout, at(ring))
		eqList(t, "Conns[alice] of the last state", r.Meeting.Conns["alice"], []string{"a1"})
	})
	subtest(t, newStore, "every ring times out: timeout", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob", "carol")
		mustRing(t, st, "alice", []string{"bob", "carol"}, at(0))
		r := mustExpire(t, st, at(ring))
		eqSet(t, "Missed", r.Missed, []string{"bob", "carol"})
		callEnded(t, st, r.Meeting, r.Ended, r.Deleted, r.Reason, state.ReasonTimeout, at(ring))
		status(t, r.Meeting, "bob", state.PartMissed)
		_, err := st.Meetings().ExpireRings(ctx(t), "call_a", at(2*ring))
		isErr(t, err, state.ErrNotFound, "ExpireRings after the call ended")
	})
	subtest(t, newStore, "one declines, the last misses: timeout", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob", "carol")
		mustRing(t, st, "alice", []string{"bob", "carol"}, at(0))
		mustDecline(t, st, "bob", at(time.Second))
		r := mustExpire(t, st, at(ring))
		eqList(t, "Missed", r.Missed, []string{"carol"})
		callEnded(t, st, r.Meeting, r.Ended, r.Deleted, r.Reason, state.ReasonTimeout, at(ring))
	})
	subtest(t, newStore, "one misses, the last declines: declined", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob", "carol")
		mustRing(t, st, "alice", []string{"bob"}, at(0))
		mustRing(t, st, "alice", []string{"carol"}, at(30*time.Second))
		r := mustExpire(t, st, at(ring))
		eqList(t, "Missed", r.Missed, []string{"bob"})
		callGoesOn(t, st, r.Ended, r.Deleted, r.Reason)
		d := mustDecline(t, st, "carol", at(ring+time.Second))
		callEnded(t, st, d.Meeting, d.Ended, d.Deleted, d.Reason, state.ReasonDeclined, at(ring+time.Second))
	})
	subtest(t, newStore, "a recipient never rung keeps the call open", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob", "offline")
		mustRing(t, st, "alice", []string{"bob"}, at(0))
		r := mustExpire(t, st, at(ring))
		eqList(t, "Missed", r.Missed, []string{"bob"})
		callGoesOn(t, st, r.Ended, r.Deleted, r.Reason)
		status(t, r.Meeting, "offline", state.PartInvited)
	})
	subtest(t, newStore, "a missed recipient rung again can accept", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob", "carol") // carol is never rung: the call stays open
		mustRing(t, st, "alice", []string{"bob"}, at(0))
		r := mustExpire(t, st, at(ring))
		eqList(t, "Missed", r.Missed, []string{"bob"})
		ringing := mustRing(t, st, "alice", []string{"bob"}, at(ring+time.Second))
		eqList(t, "ringing again", ringing, []string{"bob"})
		a := mustAccept(t, st, "bob", "b1", at(ring+2*time.Second))
		status(t, a.Meeting, "bob", state.PartAccepted)
		checkActive(t, a.Meeting, "alice", "bob")
	})
	subtest(t, newStore, "calls are deleted when they end, so their id is free", func(t *testing.T, st state.Store) {
		newCall(t, st, "bob")
		mustLeave(t, st, "alice", "a1", at(time.Second))
		absent(t, st, "call_a")
		newCall(t, st, "bob")
		mustGet(t, st, "call_a")
	})
}
