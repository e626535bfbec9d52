package statetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/state"
)

func testMeetings(t *testing.T, newStore factory) {
	t.Run("Create", func(t *testing.T) { testCreate(t, newStore) })
	t.Run("Update", func(t *testing.T) { testUpdate(t, newStore) })
	t.Run("Start", func(t *testing.T) { testStart(t, newStore) })
	t.Run("Join", func(t *testing.T) { testJoin(t, newStore) })
	t.Run("Leave", func(t *testing.T) { testLeave(t, newStore) })
	t.Run("ListForUser", func(t *testing.T) { testListForUser(t, newStore) })
	t.Run("InviteLive", func(t *testing.T) { testInviteLive(t, newStore) })
	t.Run("MarkReminded", func(t *testing.T) { testMarkReminded(t, newStore) })
	t.Run("EndIfOver", func(t *testing.T) { testEndIfOver(t, newStore) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, newStore) })
	t.Run("Visibility", func(t *testing.T) { testVisibility(t, newStore) })
	t.Run("Copies", func(t *testing.T) { testCopies(t, newStore) })
}

func testCreate(t *testing.T, newStore factory) {
	subtest(t, newStore, "Get returns the meeting as created", func(t *testing.T, st state.Store) {
		m := scheduled("mtg_a", "alice", at(hour), at(2*hour), "bob", "carol")
		m.Title, m.Description = "\x00opaque ciphertext\xff", "ünïcode 🎉"
		want := jsonOf(t, m)
		mustCreate(t, st, m, at(0))
		eq(t, "stored meeting", jsonOf(t, mustGet(t, st, "mtg_a")), want)
	})
	subtest(t, newStore, "a call keeps its creating connection", func(t *testing.T, st state.Store) {
		mustCreate(t, st, call("call_a", "alice", "a1", at(0), "bob"), at(0))
		got := mustGet(t, st, "call_a")
		eq(t, "IsInstantCall", got.IsInstantCall, true)
		eq(t, "Joined(alice)", got.Joined("alice"), true)
		eqList(t, "Conns[alice]", got.Conns["alice"], []string{"a1"})
		checkActive(t, got, "alice")
	})
	subtest(t, newStore, "existing id is ErrConflict", func(t *testing.T, st state.Store) {
		mustCreate(t, st, scheduled("mtg_a", "alice", at(hour), at(2*hour), "bob"), at(0))
		refused(t, st, "mtg_a", state.ErrConflict, func() error {
			_, err := st.Meetings().Create(ctx(t), scheduled("mtg_a", "mallory", at(hour), at(3*hour)), retention, at(0))
			return err
		})
	})
	subtest(t, newStore, "unknown id is ErrNotFound", func(t *testing.T, st state.Store) {
		_, err := st.Meetings().Get(ctx(t), "mtg_nope")
		isErr(t, err, state.ErrNotFound, "Get unknown")
	})
}

func testUpdate(t *testing.T, newStore factory) {
	subtest(t, newStore, "applies every field of the patch", func(t *testing.T, st state.Store) {
		mustCreate(t, st, scheduled("mtg_a", "alice", at(hour), at(2*hour), "bob"), at(0))
		before := mustGet(t, st, "mtg_a")
		title, desc, allow := "new title", "new description", false
		start, end := state.At(at(3*hour)), state.At(at(5*hour))
		got, err := st.Meetings().Update(ctx(t), "mtg_a", "alice", state.MeetingPatch{
			Title: &title, Description: &desc, StartTime: &start, EndTime: &end, AllowExternal: &allow,
		}, retention, at(10*time.Minute))
		noErr(t, err, "Update")
		eq(t, "Title", got.Title, title)
		eq(t, "Description", got.Description, desc)
		eqTime(t, "StartTime", got.StartTime, at(3*hour))
		eqTime(t, "EndTime", got.EndTime, at(5*hour))
		eq(t, "AllowExternal", got.AllowExternal, false)
		eq(t, "Status", got.Status, state.StatusScheduled)
		eq(t, "CreatedBy", got.CreatedBy, "alice")
		eqTime(t, "CreatedAt", got.CreatedAt, before.CreatedAt.Time)
		bumped(t, before, got, at(10*time.Minute))
		eq(t, "stored = returned", jsonOf(t, mustGet(t, st, "mtg_a")), jsonOf(t, got))
	})
	subtest(t, newStore, "nil fields are unchanged", func(t *testing.T, st state.Store) {
		mustCreate(t, st, scheduled("mtg_a", "alice", at(hour), at(2*hour), "bob"), at(0))
		before := mustGet(t, st, "mtg_a")
		title := "only the title"
		got, err := st.Meetings().Update(ctx(t), "mtg_a", "alice", state.MeetingPatch{Title: &title}, retention, at(time.Minute))
		noErr(t, err, "Update")
		eq(t, "Title", got.Title, title)
		eq(t, "Description", got.Description, before.Description)
		eqTime(t, "StartTime", got.StartTime, before.StartTime.Time)
		eqTime(t, "EndTime", got.EndTime, before.EndTime.Time)
		eq(t, "AllowExternal", got.AllowExternal, before.AllowExternal)
		eq(t, "participants", jsonOf(t, got.Participants), jsonOf(t, before.Participants))
		bumped(t, before, got, at(time.Minute))
	})
	subtest(t, newStore, "works on a live meeting", func(t *testing.T, st state.Store) {
		mustCreate(t, st, live("mtg_a", "alice", "a1", at(0), at(hour), "bob"), at(0))
		end := state.At(at(3 * hour))
		got, err := st.Meetings().Update(ctx(t), "mtg_a", "alice", state.MeetingPatch{EndTime: &end}, retention, at(time.Minute))
		noErr(t, err, "Update live")
		eqTime(t, "EndTime", got.EndTime, at(3*hour))
		eq(t, "Status", got.Status, state.StatusLive)
		checkActive(t, got, "alice")
	})

	before, after, valid := state.At(at(30*time.Minute)), state.At(at(hour)), state.At(at(3*hour))
	refusals := []struct {
		name  string
		actor string
		patch state.MeetingPatch
		want  error
	}{
		{"member is ErrForbidden", "bob", state.MeetingPatch{EndTime: &valid}, state.ErrForbidden},
		{"non-participant is ErrNotFound", "mallory", state.MeetingPatch{EndTime: &valid}, state.ErrNotFound},
		{"end before start is ErrInvalid", "alice", state.MeetingPatch{EndTime: &before}, state.ErrInvalid},
		{"end equal to start is ErrInvalid", "alice", state.MeetingPatch{EndTime: &after}, state.ErrInvalid},
		{"start moved past end is ErrInvalid", "alice", state.MeetingPatch{StartTime: &state.Time{Time: at(3 * hour)}}, state.ErrInvalid},
	}
	for _, tc := range refusals {
		subtest(t, newStore, tc.name, func(t *testing.T, st state.Store) {
			// start at 1h, end at 2h; "end equal to start" moves end to 1h.
			mustCreate(t, st, scheduled("mtg_a", "alice", at(hour), at(2*hour), "bob"), at(0))
			refused(t, st, "mtg_a", tc.want, func() error {
				_, err := st.Meetings().Update(ctx(t), "mtg_a", tc.actor, tc.patch, retention, at(time.Minute))
				return err
			})
		})
	}
	subtest(t, newStore, "ended meeting is ErrConflict", func(t *testing.T, st state.Store) {
		mustCreate(t, st, ended("mtg_a", "alice", at(-2*hour), at(-hour), "bob"), at(0))
		title := "late"
		refused(t, st, "mtg_a", state.ErrConflict, func() error {
			_, err := st.Meetings().Update(ctx(t), "mtg_a", "alice", state.MeetingPatch{Title: &title}, retention, at(0))
			return err
		})
	})
	subtest(t, newStore, "unknown meeting is ErrNotFound", func(t *testing.T, st state.Store) {
		title := "x"
		_, err := st.Meetings().Update(ctx(t), "mtg_nope", "alice", state.MeetingPatch{Title: &title}, retention, at(0))
		isErr(t, err, state.ErrNotFound, "Update unknown")
	})
}

func testStart(t *testing.T, newStore factory) {
	subtest(t, newStore, "owner makes a scheduled meeting live", func(t *testing.T, st state.Store) {
		mustCreate(t, st, scheduled("mtg_a", "alice", at(hour), at(2*hour), "bob"), at(0))
		before := mustGet(t, st, "mtg_a")
		got, err := st.Meetings().Start(ctx(t), "mtg_a", "alice", at(50*time.Minute))
		noErr(t, err, "Start")
		eq(t, "Status", got.Status, state.StatusLive)
		eqTimePtr(t, "StartedAt", got.StartedAt, at(50*time.Minute))
		bumped(t, before, got, at(50*time.Minute))
		eq(t, "stored = returned", jsonOf(t, mustGet(t, st, "mtg_a")), jsonOf(t, got))
	})
	cases := []struct {
		name    string
		meeting *state.Meeting
		actor   string
		want    error
	}{
		{"member is ErrForbidden", scheduled("mtg_a", "alice", at(hour), at(2*hour), "bob"), "bob", state.ErrForbidden},
		{"non-participant is ErrNotFound", scheduled("mtg_a", "alice", at(hour), at(2*hour), "bob"), "mallory", state.ErrNotFound},
		{"live meeting is ErrConflict", live("mtg_a", "alice", "a1", at(0), at(2*hour), "bob"), "alice", state.ErrConflict},
		{"ended meeting is ErrGone", ended("mtg_a", "alice", at(-2*hour), at(-hour), "bob"), "alice", state.ErrGone},
	}
	for _, tc := range cases {
		subtest(t, newStore, tc.name, func(t *testing.T, st state.Store) {
			mustCreate(t, st, tc.meeting, at(0))
			refused(t, st, "mtg_a", tc.want, func() error {
				_, err := st.Meetings().Start(ctx(t), "mtg_a", tc.actor, at(time.Minute))
				return err
			})
		})
	}
}

func testJoin(t *testing.T, newStore factory) {
	subtest(t, newStore, "flags through a sequence of joins", func(t *testing.T, st state.Store) {
		mustCreate(t, st, scheduled("mtg_a", "alice", at(hour), at(2*hour), "bob", "carol"), at(0))
		m := st.Meetings()
		v0 := mustGet(t, st, "mtg_a")

		// First connection of the first user: everything happens.
		r, err := m.Join(ctx(t), "mtg_a", "alice", "a1", at(55*time.Minute))
		noErr(t, err, "Join a1")
		eq(t, "Already", r.Already, false)
		eq(t, "UserJoined", r.UserJoined, true)
		eq(t, "FirstJoined", r.FirstJoined, true)
		eq(t, "Started", r.Started, true)
		eq(t, "Status", r.Meeting.Status, state.StatusLive)
		eqTimePtr(t, "StartedAt", r.Meeting.StartedAt, at(55*time.Minute))
		status(t, r.Meeting, "alice", state.PartJoined)
		eqTimePtr(t, "alice JoinedAt", r.Meeting.Participant("alice").JoinedAt, at(55*time.Minute))
		checkActive(t, r.Meeting, "alice")
		bumped(t, v0, r.Meeting, at(55*time.Minute))
		v1 := r.Meeting

		// The same connection again: nothing changes.
		r, err = m.Join(ctx(t), "mtg_a", "alice", "a1", at(56*time.Minute))
		noErr(t, err, "Join a1 again")
		eq(t, "Already", r.Already, true)
		eq(t, "UserJoined", r.UserJoined, false)
		eq(t, "FirstJoined", r.FirstJoined, false)
		eq(t, "Started", r.Started, false)
		eq(t, "unchanged", snapshot(t, st, "mtg_a"), jsonOf(t, v1))

		// A second device of the same user.
		r, err = m.Join(ctx(t), "mtg_a", "alice", "a2", at(57*time.Minute))
		noErr(t, err, "Join a2")
		eq(t, "Already", r.Already, false)
		eq(t, "UserJoined", r.UserJoined, false)
		eq(t, "FirstJoined", r.FirstJoined, false)
		eq(t, "Started", r.Started, false)
		eqSet(t, "Conns[alice]", r.Meeting.Conns["alice"], []string{"a1", "a2"})
		eqTimePtr(t, "alice JoinedAt (first connection)", r.Meeting.Participant("alice").JoinedAt, at(55*time.Minute))
		eqTimePtr(t, "StartedAt (unchanged)", r.Meeting.StartedAt, at(55*time.Minute))
		checkActive(t, r.Meeting, "alice")
		bumped(t, v1, r.Meeting, at(57*time.Minute))
		v2 := r.Meeting

		// Another user.
		r, err = m.Join(ctx(t), "mtg_a", "bob", "b1", at(58*time.Minute))
		noErr(t, err, "Join b1")
		eq(t, "UserJoined", r.UserJoined, true)
		eq(t, "FirstJoined", r.FirstJoined, false)
		eq(t, "Started", r.Started, false)
		status(t, r.Meeting, "bob", state.PartJoined)
		status(t, r.Meeting, "carol", state.PartInvited)
		checkActive(t, r.Meeting, "alice", "bob")
		bumped(t, v2, r.Meeting, at(58*time.Minute))
		eq(t, "stored = returned", snapshot(t, st, "mtg_a"), jsonOf(t, r.Meeting))
	})
	subtest(t, newStore, "joining a live meeting does not restart it", func(t *testing.T, st state.Store) {
		mustCreate(t, st, scheduled("mtg_a", "alice", at(hour), at(2*hour), "bob"), at(0))
		_, err := st.Meetings().Start(ctx(t), "mtg_a", "alice", at(30*time.Minute))
		noErr(t, err, "Start")
		r, err := st.Meetings().Join(ctx(t), "mtg_a", "bob", "b1", at(40*time.Minute))
		noErr(t, err, "Join")
		eq(t, "FirstJoined", r.FirstJoined, true)
		eq(t, "Started", r.Started, false)
		eqTimePtr(t, "StartedAt", r.Meeting.StartedAt, at(30*time.Minute))
	})
	subtest(t, newStore, "a left participant joins again", func(t *testing.T, st state.Store) {
		mustCreate(t, st, live("mtg_a", "alice", "a1", at(0), at(2*hour), "bob"), at(0))
		m := st.Meetings()
		_, err := m.Join(ctx(t), "mtg_a", "bob", "b1", at(time.Minute))
		noErr(t, err, "Join")
		_, err = m.Leave(ctx(t), "mtg_a", "bob", "b1", at(2*time.Minute))
		noErr(t, err, "Leave")
		r, err := m.Join(ctx(t), "mtg_a", "bob", "b2", at(3*time.Minute))
		noErr(t, err, "Join again")
		eq(t, "UserJoined", r.UserJoined, true)
		status(t, r.Meeting, "bob", state.PartJoined)
		eqTimePtr(t, "JoinedAt", r.Meeting.Participant("bob").JoinedAt, at(3*time.Minute))
		// Choice: a joined participant has no left_at; rejoining clears it.
		isNilTime(t, "LeftAt", r.Meeting.Participant("bob").LeftAt)
	})
	subtest(t, newStore, "many users join concurrently", func(t *testing.T, st state.Store) {
		const n = 24
		var members []string
		for i := range n {
			members = append(members, nth("u", i))
		}
		mustCreate(t, st, scheduled("mtg_a", "alice", at(hour), at(2*hour), members...), at(0))
		v0 := mustGet(t, st, "mtg_a")
		var (
			wg                  sync.WaitGroup
			mu                  sync.Mutex
			first, started, usr int
			errs                []error
		)
		for _, u := range members {
			wg.Go(func() {
				r, err := st.Meetings().Join(ctx(t), "mtg_a", u, "c-"+u, at(hour))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				if r.FirstJoined {
					first++
				}
				if r.Started {
					started++
				}
				if r.UserJoined {
					usr++
				}
			})
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("Join: %v", errors.Join(errs...))
		}
		eq(t, "joins reporting FirstJoined", first, 1)
		eq(t, "joins reporting Started", started, 1)
		eq(t, "joins reporting UserJoined", usr, n)
		got := mustGet(t, st, "mtg_a")
		checkActive(t, got, members...)
		eq(t, "Version", got.Version, v0.Version+n)
	})

	cases := []struct {
		name    string
		meeting *state.Meeting
		actor   string
		now     time.Time
		want    error
	}{
		{"declined participant is ErrForbidden",
			withStatus(live("mtg_a", "alice", "a1", at(0), at(2*hour), "bob"), "bob", state.PartDeclined), "bob", at(time.Minute), state.ErrForbidden},
		{"ended meeting is ErrGone",
			ended("mtg_a", "alice", at(-2*hour), at(-hour), "bob"), "bob", at(0), state.ErrGone},
		// Choice: a meeting whose end time has passed with nobody in the room
		// has ended (SPEC 4.2) even before EndIfOver records it.
		{"meeting past its end with an empty room is ErrGone",
			scheduled("mtg_a", "alice", at(-2*hour), at(-hour), "bob"), "bob", at(0), state.ErrGone},
		{"non-participant is ErrNotFound",
			scheduled("mtg_a", "alice", at(hour), at(2*hour), "bob"), "mallory", at(0), state.ErrNotFound},
	}
	for _, tc := range cases {
		subtest(t, newStore, tc.name, func(t *testing.T, st state.Store) {
			mustCreate(t, st, tc.meeting, at(0))
			refused(t, st, "mtg_a", tc.want, func() error {
				_, err := st.Meetings().Join(ctx(t), "mtg_a", tc.actor, "c1", tc.now)
				return err
			})
		})
	}
	subtest(t, newStore, "a live meeting past its end with people in it can be joined", func(t *testing.T, st state.Store) {
		mustCreate(t, st, live("mtg_a", "alice", "a1", at(-2*hour), at(-hour), "bob"), at(-2*hour))
		r, err := st.Meetings().Join(ctx(t), "mtg_a", "bob", "b1", at(0))
		noErr(t, err, "Join an overrunning meeting")
		checkActive(t, r.Meeting, "alice", "bob")
	})
	subtest(t, newStore, "unknown meeting is ErrNotFound", func(t *testing.T, st state.Store) {
		_, err := st.Meetings().Join(ctx(t), "mtg_nope", "alice", "a1", at(0))
		isErr(t, err, state.ErrNotFound, "Join unknown")
	})
}

func testLeave(t *testing.T, newStore factory) {
	subtest(t, newStore, "flags through a sequence of leaves", func(t *testing.T, st state.Store) {
		mustCreate(t, st, scheduled("mtg_a", "alice", at(hour), at(2*hour), "bob"), at(0))
		m := st.Meetings()
		for _, j := range []struct{ user, conn string }{{"alice", "a1"}, {"alice", "a2"}, {"bob", "b1"}} {
			_, err := m.Join(ctx(t), "mtg_a", j.user, j.conn, at(hour))
			noErr(t, err, "Join "+j.conn)
		}
		v := mustGet(t, st, "mtg_a")

		r, err := m.Leave(ctx(t), "mtg_a", "alice", "a1", at(hour+time.Minute))
		noErr(t, err, "Leave a1")
		eq(t, "UserLeft", r.UserLeft, false)
		eq(t, "Ended", r.Ended, false)
		eq(t, "Deleted", r.Deleted, false)
		status(t, r.Meeting, "alice", state.PartJoined)
		eqList(t, "Conns[alice]", r.Meeting.Conns["alice"], []string{"a2"})
		checkActive(t, r.Meeting, "alice", "bob")
		bumped(t, v, r.Meeting, at(hour+time.Minute))
		v = r.Meeting

		r, err = m.Leave(ctx(t), "mtg_a", "alice", "a2", at(hour+2*time.Minute))
		noErr(t, err, "Leave a2")
		eq(t, "UserLeft", r.UserLeft, true)
		eq(t, "Ended", r.Ended, false)
		status(t, r.Meeting, "alice", state.PartLeft)
		eqTimePtr(t, "alice LeftAt", r.Meeting.Participant("alice").LeftAt, at(hour+2*time.Minute))
		eq(t, "Joined(alice)", r.Meeting.Joined("alice"), false)
		checkActive(t, r.Meeting, "bob")
		bumped(t, v, r.Meeting, at(hour+2*time.Minute))
		v = r.Meeting

		r, err = m.Leave(ctx(t), "mtg_a", "bob", "b1", at(hour+3*time.Minute))
		noErr(t, err, "Leave b1")
		eq(t, "UserLeft", r.UserLeft, true)
		eq(t, "Ended", r.Ended, false) // before its end time a meeting stays live when empty
		eq(t, "Deleted", r.Deleted, false)
		eq(t, "Reason", r.Reason, "")
		eq(t, "Status", r.Meeting.Status, state.StatusLive)
		checkActive(t, r.Meeting)
		bumped(t, v, r.Meeting, at(hour+3*time.Minute))
		eq(t, "stored = returned", snapshot(t, st, "mtg_a"), jsonOf(t, r.Meeting))
	})
	subtest(t, newStore, "last leave after the end time ends the meeting", func(t *testing.T, st state.Store) {
		mustCreate(t, st, live("mtg_a", "alice", "a1", at(-2*hour), at(-hour), "bob"), at(-2*hour))
		v := mustGet(t, st, "mtg_a")
		r, err := st.Meetings().Leave(ctx(t), "mtg_a", "alice", "a1", at(0))
		noErr(t, err, "Leave")
		eq(t, "UserLeft", r.UserLeft, true)
		eq(t, "Ended", r.Ended, true)
		eq(t, "Deleted", r.Deleted, false) // scheduled meetings are kept for their retention
		eq(t, "Reason", r.Reason, "")
		eq(t, "Status", r.Meeting.Status, state.StatusEnded)
		eqTimePtr(t, "EndedAt", r.Meeting.EndedAt, at(0))
		bumped(t, v, r.Meeting, at(0))
		eq(t, "stored = returned", snapshot(t, st, "mtg_a"), jsonOf(t, r.Meeting))
	})
	subtest(t, newStore, "a leave after the end time that leaves people in the room does not end it", func(t *testing.T, st state.Store) {
		m := live("mtg_a", "alice", "a1", at(-2*hour), at(-hour), "bob")
		m.Conns["bob"] = []string{"b1"}
		m.ActiveCount = 2
		withStatus(m, "bob", state.PartJoined)
		mustCreate(t, st, m, at(-2*hour))
		r, err := st.Meetings().Leave(ctx(t), "mtg_a", "alice", "a1", at(0))
		noErr(t, err, "Leave")
		eq(t, "Ended", r.Ended, false)
		eq(t, "Status", r.Meeting.Status, state.StatusLive)
	})
	cases := []struct {
		name        string
		actor, conn string
		want        error
	}{
		{"connection not in the room is ErrConflict", "bob", "b1", state.ErrConflict},
		{"another user's connection is ErrConflict", "bob", "a1", state.ErrConflict},
		{"non-participant is ErrNotFound", "mallory", "a1", state.ErrNotFound},
	}
	for _, tc := range cases {
		subtest(t, newStore, tc.name, func(t *testing.T, st state.Store) {
			mustCreate(t, st, live("mtg_a", "alice", "a1", at(0), at(2*hour), "bob"), at(0))
			refused(t, st, "mtg_a", tc.want, func() error {
				_, err := st.Meetings().Leave(ctx(t), "mtg_a", tc.actor, tc.conn, at(time.Minute))
				return err
			})
		})
	}
	subtest(t, newStore, "unknown meeting is ErrNotFound", func(t *testing.T, st state.Store) {
		_, err := st.Meetings().Leave(ctx(t), "mtg_nope", "alice", "a1", at(0))
		isErr(t, err, state.ErrNotFound, "Leave unknown")
	})
}

func testListForUser(t *testing.T, newStore factory) {
	// A calendar for alice around now = at(0).
	calendar := func(t *testing.T, st state.Store) {
		t.Helper()
		for _, m := range []*state.Meeting{
			scheduled("mtg_up1", "alice", at(hour), at(2*hour), "bob"),
			scheduled("mtg_up3", "bob", at(3*hour), at(4*hour), "alice"),
			scheduled("mtg_up2", "alice", at(2*hour), at(3*hour)),
			live("mtg_now", "alice", "a1", at(-hour), at(0)), // ends exactly now: still upcoming
			scheduled("mtg_past1", "alice", at(-3*hour), at(-2*hour), "bob"),
			scheduled("mtg_past2", "carol", at(-2*day), at(-2*day+hour), "alice"),
			ended("mtg_ended", "alice", at(-30*time.Minute), at(5*hour)), // ended early: past
			scheduled("mtg_other", "bob", at(90*time.Minute), at(2*hour), "carol"),
		} {
			mustCreate(t, st, m, at(-3*day))
		}
		mustCreate(t, st, call("call_a", "alice", "a9", at(-10*time.Minute), "bob"), at(-10*time.Minute))
	}
	list := func(t *testing.T, st state.Store, user string, upcoming bool, offset, limit int) []string {
		t.Helper()
		ms, err := st.Meetings().ListForUser(ctx(t), user, upcoming, at(0), offset, limit)
		noErr(t, err, "ListForUser")
		return ids(ms)
	}
	subtest(t, newStore, "upcoming ascending and past descending by start time", func(t *testing.T, st state.Store) {
		calendar(t, st)
		eqList(t, "alice upcoming", list(t, st, "alice", true, 0, 100),
			[]string{"mtg_now", "call_a", "mtg_up1", "mtg_up2", "mtg_up3"})
		eqList(t, "alice past", list(t, st, "alice", false, 0, 100),
			[]string{"mtg_ended", "mtg_past1", "mtg_past2"})
	})
	subtest(t, newStore, "only the user's meetings", func(t *testing.T, st state.Store) {
		calendar(t, st)
		got := list(t, st, "bob", true, 0, 100)
		eqSet(t, "bob upcoming", got, []string{"call_a", "mtg_up1", "mtg_other", "mtg_up3"})
		eqList(t, "mallory upcoming", list(t, st, "mallory", true, 0, 100), nil)
		eqList(t, "mallory past", list(t, st, "mallory", false, 0, 100), nil)
	})
	subtest(t, newStore, "paging with offset and limit", func(t *testing.T, st state.Store) {
		calendar(t, st)
		eqList(t, "page 1", list(t, st, "alice", true, 0, 2), []string{"mtg_now", "call_a"})
		eqList(t, "page 2", list(t, st, "alice", true, 2, 2), []string{"mtg_up1", "mtg_up2"})
		eqList(t, "page 3", list(t, st, "alice", true, 4, 2), []string{"mtg_up3"})
		eqList(t, "past the end", list(t, st, "alice", true, 10, 2), nil)
		eqList(t, "past page", list(t, st, "alice", false, 1, 1), []string{"mtg_past1"})
	})
	subtest(t, newStore, "returns full meetings", func(t *testing.T, st state.Store) {
		calendar(t, st)
		ms, err := st.Meetings().ListForUser(ctx(t), "alice", true, at(0), 2, 1)
		noErr(t, err, "ListForUser")
		if len(ms) != 1 {
			t.Fatalf("got %d meetings, want 1", len(ms))
		}
		eq(t, "listed = stored", jsonOf(t, ms[0]), snapshot(t, st, "mtg_up1"))
	})
	subtest(t, newStore, "drops deleted meetings and ended calls", func(t *testing.T, st state.Store) {
		calendar(t, st)
		_, err := st.Meetings().Delete(ctx(t), "mtg_up2", "alice")
		noErr(t, err, "Delete")
		r, err := st.Meetings().Leave(ctx(t), "call_a", "alice", "a9", at(0))
		noErr(t, err, "Leave call")
		eq(t, "call deleted", r.Deleted, true)
		eqList(t, "alice upcoming", list(t, st, "alice", true, 0, 100), []string{"mtg_now", "mtg_up1", "mtg_up3"})
		eqList(t, "bob upcoming", list(t, st, "bob", true, 0, 100), []string{"mtg_up1", "mtg_other", "mtg_up3"})
	})
	subtest(t, newStore, "lists live invitees", func(t *testing.T, st state.Store) {
		calendar(t, st)
		_, _, err := st.Meetings().InviteLive(ctx(t), "mtg_now", "alice", []string{"dave"}, 256, at(0))
		noErr(t, err, "InviteLive")
		eqList(t, "dave upcoming", list(t, st, "dave", true, 0, 100), []string{"mtg_now"})
	})
}

func testInviteLive(t *testing.T, newStore factory) {
	subtest(t, newStore, "adds new users as invited members", func(t *testing.T, st state.Store) {
		mustCreate(t, st, live("mtg_a", "alice", "a1", at(0), at(2*hour), "bob"), at(0))
		before := mustGet(t, st, "mtg_a")
		got, invited, err := st.Meetings().InviteLive(ctx(t), "mtg_a", "alice", []string{"carol", "dave", "carol"}, 256, at(time.Minute))
		noErr(t, err, "InviteLive")
		eqSet(t, "invited", invited, []string{"carol", "dave"})
		for _, u := range []string{"carol", "dave"} {
			p := got.Participant(u)
			if p == nil {
				t.Fatalf("%s not added", u)
			}
			eq(t, u+" role", p.Role, state.RoleMember)
			eq(t, u+" status", p.Status, state.PartInvited)
		}
		eq(t, "participants", len(got.Participants), 4)
		bumped(t, before, got, at(time.Minute))
		eq(t, "stored = returned", snapshot(t, st, "mtg_a"), jsonOf(t, got))
	})
	subtest(t, newStore, "re-invites declined, left and missed; leaves the others", func(t *testing.T, st state.Store) {
		m := live("mtg_a", "alice", "a1", at(0), at(2*hour), "dec", "left", "miss", "inv", "ring", "acc", "join")
		withStatus(m, "dec", state.PartDeclined)
		withStatus(m, "left", state.PartLeft)
		withStatus(m, "miss", state.PartMissed)
		withStatus(m, "ring", state.PartRinging)
		withStatus(m, "acc", state.PartAccepted)
		withStatus(m, "join", state.PartJoined)
		m.Conns["join"] = []string{"j1"}
		m.ActiveCount = 2
		mustCreate(t, st, m, at(0))
		got, invited, err := st.Meetings().InviteLive(ctx(t), "mtg_a", "alice",
			[]string{"alice", "dec", "left", "miss", "inv", "ring", "acc", "join", "new"}, 256, at(time.Minute))
		noErr(t, err, "InviteLive")
		eqSet(t, "invited", invited, []string{"dec", "left", "miss", "new"})
		for u, want := range map[string]string{
			"alice": state.PartJoined, "dec": state.PartInvited, "left": state.PartInvited, "miss": state.PartInvited,
			"inv": state.PartInvited, "ring": state.PartRinging, "acc": state.PartAccepted, "join": state.PartJoined,
			"new": state.PartInvited,
		} {
			status(t, got, u, want)
		}
		eq(t, "participants", len(got.Participants), 9)
	})
	subtest(t, newStore, "nothing to change keeps the meeting as it was", func(t *testing.T, st state.Store) {
		mustCreate(t, st, live("mtg_a", "alice", "a1", at(0), at(2*hour), "bob"), at(0))
		before := snapshot(t, st, "mtg_a")
		_, invited, err := st.Meetings().InviteLive(ctx(t), "mtg_a", "alice", []string{"bob", "alice"}, 256, at(time.Minute))
		noErr(t, err, "InviteLive")
		eqList(t, "invited", invited, nil)
		// Choice: an invitation that changes nobody is not a change (no Version bump).
		eq(t, "meeting", snapshot(t, st, "mtg_a"), before)
	})
	subtest(t, newStore, "up to the limit is allowed", func(t *testing.T, st state.Store) {
		mustCreate(t, st, live("mtg_a", "alice", "a1", at(0), at(2*hour), "bob"), at(0))
		got, _, err := st.Meetings().InviteLive(ctx(t), "mtg_a", "alice", []string{"carol", "dave"}, 4, at(time.Minute))
		noErr(t, err, "InviteLive to the limit")
		eq(t, "participants", len(got.Participants), 4)
	})
	subtest(t, newStore, "re-invitations do not count against the limit", func(t *testing.T, st state.Store) {
		mustCreate(t, st, withStatus(live("mtg_a", "alice", "a1", at(0), at(2*hour), "bob"), "bob", state.PartLeft), at(0))
		_, invited, err := st.Meetings().InviteLive(ctx(t), "mtg_a", "alice", []string{"bob"}, 2, at(time.Minute))
		noErr(t, err, "InviteLive at the limit")
		eqList(t, "invited", invited, []string{"bob"})
	})
	cases := []struct {
		name    string
		meeting *state.Meeting
		actor   string
		users   []string
		max     int
		want    error
	}{
		{"past the limit is ErrTooLarge", live("mtg_a", "alice", "a1", at(0), at(2*hour), "bob"), "alice",
			[]string{"carol", "dave", "erin"}, 4, state.ErrTooLarge},
		{"scheduled meeting is ErrConflict", scheduled("mtg_a", "alice", at(hour), at(2*hour), "bob"), "alice",
			[]string{"carol"}, 256, state.ErrConflict},
		{"ended meeting is ErrGone", ended("mtg_a", "alice", at(-2*hour), at(-hour), "bob"), "alice",
			[]string{"carol"}, 256, state.ErrGone},
		{"participant not joined is ErrForbidden", live("mtg_a", "alice", "a1", at(0), at(2*hour), "bob"), "bob",
			[]string{"carol"}, 256, state.ErrForbidden},
		{"non-participant is ErrNotFound", live("mtg_a", "alice", "a1", at(0), at(2*hour), "bob"), "mallory",
			[]string{"carol"}, 256, state.ErrNotFound},
	}
	for _, tc := range cases {
		subtest(t, newStore, tc.name, func(t *testing.T, st state.Store) {
			mustCreate(t, st, tc.meeting, at(0))
			refused(t, st, "mtg_a", tc.want, func() error {
				_, _, err := st.Meetings().InviteLive(ctx(t), "mtg_a", tc.actor, tc.users, tc.max, at(time.Minute))
				return err
			})
			for _, u := range tc.users {
				ms, err := st.Meetings().ListForUser(ctx(t), u, true, at(time.Minute), 0, 10)
				noErr(t, err, "ListForUser")
				eqList(t, u+"'s meetings after a refused invitation", ids(ms), nil)
			}
		})
	}
}

func testMarkReminded(t *testing.T, newStore factory) {
	subtest(t, newStore, "each reminder is recorded once", func(t *testing.T, st state.Store) {
		mustCreate(t, st, scheduled("mtg_a", "alice", at(hour), at(2*hour), "bob"), at(0))
		m := st.Meetings()
		for _, step := range []struct {
			minutes int
			first   bool
		}{{15, true}, {15, false}, {0, true}, {0, false}, {15, false}} {
			got, first, err := m.MarkReminded(ctx(t), "mtg_a", step.minutes)
			noErr(t, err, "MarkReminded")
			eq(t, "first", first, step.first)
			if got == nil || got.ID != "mtg_a" {
				t.Fatalf("MarkReminded returned meeting %v", got)
			}
		}
	})
	subtest(t, newStore, "concurrent callers: exactly one is first", func(t *testing.T, st state.Store) {
		mustCreate(t, st, scheduled("mtg_a", "alice", at(hour), at(2*hour), "bob"), at(0))
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			first int
		)
		for range 16 {
			wg.Go(func() {
				_, ok, err := st.Meetings().MarkReminded(ctx(t), "mtg_a", 15)
				if err != nil {
					t.Errorf("MarkReminded: %v", err)
				}
				if ok {
					mu.Lock()
					first++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		eq(t, "callers told they were first", first, 1)
	})
	subtest(t, newStore, "ended meeting reports false", func(t *testing.T, st state.Store) {
		mustCreate(t, st, ended("mtg_a", "alice", at(-2*hour), at(-hour), "bob"), at(0))
		_, first, err := st.Meetings().MarkReminded(ctx(t), "mtg_a", 0)
		noErr(t, err, "MarkReminded ended")
		eq(t, "first", first, false)
	})
	subtest(t, newStore, "gone meeting reports false", func(t *testing.T, st state.Store) {
		// Choice: "reports false" means no error, so a reminder job for a
		// deleted meeting simply does nothing.
		_, first, err := st.Meetings().MarkReminded(ctx(t), "mtg_nope", 15)
		noErr(t, err, "MarkReminded unknown")
		eq(t, "first", first, false)
	})
}

func testEndIfOver(t *testing.T, newStore factory) {
	subtest(t, newStore, "ends an empty meeting past its end time once", func(t *testing.T, st state.Store) {
		mustCreate(t, st, scheduled("mtg_a", "alice", at(-2*hour), at(-hour), "bob"), at(-3*hour))
		before := mustGet(t, st, "mtg_a")
		got, endedNow, err := st.Meetings().EndIfOver(ctx(t), "mtg_a", at(0))
		noErr(t, err, "EndIfOver")
		eq(t, "ended now", endedNow, true)
		eq(t, "Status", got.Status, state.StatusEnded)
		eqTimePtr(t, "EndedAt", got.EndedAt, at(0))
		bumped(t, before, got, at(0))
		eq(t, "stored = returned", snapshot(t, st, "mtg_a"), jsonOf(t, got))

		snap := snapshot(t, st, "mtg_a")
		_, endedNow, err = st.Meetings().EndIfOver(ctx(t), "mtg_a", at(time.Minute))
		noErr(t, err, "EndIfOver again")
		eq(t, "ended again", endedNow, false)
		eq(t, "unchanged", snapshot(t, st, "mtg_a"), snap)
	})
	emptyCall := call("mtg_a", "alice", "a1", at(-25*hour), "bob")
	emptyCall.Conns, emptyCall.ActiveCount = nil, 0
	withStatus(emptyCall, "alice", state.PartLeft)
	cases := []struct {
		name    string
		meeting *state.Meeting
		created time.Time
	}{
		{"not over yet", scheduled("mtg_a", "alice", at(-hour), at(hour), "bob"), at(-hour)},
		{"over but someone is joined", live("mtg_a", "alice", "a1", at(-2*hour), at(-hour), "bob"), at(-2 * hour)},
		// Choice: calls end by their own rules (and are deleted), never by EndIfOver.
		{"a call past its end", emptyCall, at(-25 * hour)},
	}
	for _, tc := range cases {
		subtest(t, newStore, tc.name+" does not end", func(t *testing.T, st state.Store) {
			mustCreate(t, st, tc.meeting, tc.created)
			before := snapshot(t, st, "mtg_a")
			_, endedNow, err := st.Meetings().EndIfOver(ctx(t), "mtg_a", at(0))
			noErr(t, err, "EndIfOver")
			eq(t, "ended now", endedNow, false)
			eq(t, "unchanged", snapshot(t, st, "mtg_a"), before)
		})
	}
	subtest(t, newStore, "unknown meeting is ErrNotFound", func(t *testing.T, st state.Store) {
		_, _, err := st.Meetings().EndIfOver(ctx(t), "mtg_nope", at(0))
		isErr(t, err, state.ErrNotFound, "EndIfOver unknown")
	})
}

func testDelete(t *testing.T, newStore factory) {
	subtest(t, newStore, "owner deletes and gets the last state", func(t *testing.T, st state.Store) {
		mustCreate(t, st, scheduled("mtg_a", "alice", at(hour), at(2*hour), "bob"), at(0))
		last := snapshot(t, st, "mtg_a")
		got, err := st.Meetings().Delete(ctx(t), "mtg_a", "alice")
		noErr(t, err, "Delete")
		eq(t, "last state", jsonOf(t, got), last)
		absent(t, st, "mtg_a")
		_, err = st.Meetings().Delete(ctx(t), "mtg_a", "alice")
		isErr(t, err, state.ErrNotFound, "Delete twice")
		// The id is free again.
		mustCreate(t, st, scheduled("mtg_a", "alice", at(hour), at(2*hour)), at(0))
	})
	for _, tc := range []struct {
		name, actor string
		want        error
	}{
		{"member is ErrForbidden", "bob", state.ErrForbidden},
		{"non-participant is ErrNotFound", "mallory", state.ErrNotFound},
	} {
		subtest(t, newStore, tc.name, func(t *testing.T, st state.Store) {
			mustCreate(t, st, scheduled("mtg_a", "alice", at(hour), at(2*hour), "bob"), at(0))
			refused(t, st, "mtg_a", tc.want, func() error {
				_, err := st.Meetings().Delete(ctx(t), "mtg_a", tc.actor)
				return err
			})
		})
	}
}

// testVisibility checks the rule shared by every method taking an actor: a
// user who is not a participant gets ErrNotFound, whatever else is true, and
// an unknown id is ErrNotFound too.
func testVisibility(t *testing.T, newStore factory) {
	title := "x"
	ops := []struct {
		name string
		op   func(t *testing.T, m state.Meetings, id, actor string) error
	}{
		{"Update", func(t *testing.T, m state.Meetings, id, actor string) error {
			_, err := m.Update(ctx(t), id, actor, state.MeetingPatch{Title: &title}, retention, at(time.Minute))
			return err
		}},
		{"Start", func(t *testing.T, m state.Meetings, id, actor string) error {
			_, err := m.Start(ctx(t), id, actor, at(time.Minute))
			return err
		}},
		{"Join", func(t *testing.T, m state.Meetings, id, actor string) error {
			_, err := m.Join(ctx(t), id, actor, "x1", at(time.Minute))
			return err
		}},
		{"Leave", func(t *testing.T, m state.Meetings, id, actor string) error {
			_, err := m.Leave(ctx(t), id, actor, "a1", at(time.Minute))
			return err
		}},
		{"InviteLive", func(t *testing.T, m state.Meetings, id, actor string) error {
			_, _, err := m.InviteLive(ctx(t), id, actor, []string{"dave"}, 256, at(time.Minute))
			return err
		}},
		{"Ring", func(t *testing.T, m state.Meetings, id, actor string) error {
			_, err := m.Ring(ctx(t), id, actor, []string{"bob"}, at(2*time.Minute), state.Job{}, at(time.Minute))
			return err
		}},
		{"Accept", func(t *testing.T, m state.Meetings, id, actor string) error {
			_, err := m.Accept(ctx(t), id, actor, "x1", at(time.Minute))
			return err
		}},
		{"Decline", func(t *testing.T, m state.Meetings, id, actor string) error {
			_, err := m.Decline(ctx(t), id, actor, at(time.Minute))
			return err
		}},
		{"Delete", func(t *testing.T, m state.Meetings, id, actor string) error {
			_, err := m.Delete(ctx(t), id, actor)
			return err
		}},
	}
	for _, o := range ops {
		subtest(t, newStore, o.name+" by a non-participant is ErrNotFound", func(t *testing.T, st state.Store) {
			mustCreate(t, st, call("call_a", "alice", "a1", at(0), "bob"), at(0))
			refused(t, st, "call_a", state.ErrNotFound, func() error { return o.op(t, st.Meetings(), "call_a", "mallory") })
		})
		subtest(t, newStore, o.name+" of an unknown id is ErrNotFound", func(t *testing.T, st state.Store) {
			isErr(t, o.op(t, st.Meetings(), "call_nope", "alice"), state.ErrNotFound, o.name)
		})
	}
}

// testCopies checks that a store never shares memory with its callers.
func testCopies(t *testing.T, newStore factory) {
	mutate := func(m *state.Meeting) {
		m.Title = "mutated"
		m.Version = 999
		m.Participants[0].Status = state.PartDeclined
		*m.Participants[0].JoinedAt = state.At(at(99 * hour))
		m.Participants = append(m.Participants, state.Participant{UserID: "mallory"})
		m.Conns["alice"][0] = "stolen"
		m.Conns["mallory"] = []string{"m1"}
		if m.Reminded == nil {
			m.Reminded = map[string]bool{}
		}
		m.Reminded["15"] = true
		*m.StartedAt = state.At(at(99 * hour))
	}
	subtest(t, newStore, "mutating the created meeting does not change the store", func(t *testing.T, st state.Store) {
		m := call("call_a", "alice", "a1", at(0), "bob")
		want := jsonOf(t, m)
		mustCreate(t, st, m, at(0))
		mutate(m)
		eq(t, "stored", snapshot(t, st, "call_a"), want)
	})
	subtest(t, newStore, "mutating returned meetings does not change the store", func(t *testing.T, st state.Store) {
		mustCreate(t, st, call("call_a", "alice", "a1", at(0), "bob", "carol"), at(0))
		mt := st.Meetings()
		mutate(mustGet(t, st, "call_a"))
		r, err := mt.Accept(ctx(t), "call_a", "bob", "b1", at(time.Minute))
		noErr(t, err, "Accept")
		want := jsonOf(t, r.Meeting)
		mutate(r.Meeting)
		eq(t, "after mutating Get and Accept results", snapshot(t, st, "call_a"), want)

		ms, err := mt.ListForUser(ctx(t), "alice", true, at(time.Minute), 0, 10)
		noErr(t, err, "ListForUser")
		mutate(ms[0])
		m, _, err := mt.MarkReminded(ctx(t), "call_a", 15)
		noErr(t, err, "MarkReminded")
		want = jsonOf(t, m)
		mutate(m)
		eq(t, "after mutating ListForUser and MarkReminded results", snapshot(t, st, "call_a"), want)
	})
}
