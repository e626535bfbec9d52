package statetest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/state"
)

const (
	presenceTTL = 120 * time.Second
	lastSeenTTL = 30 * day
)

// conn is a member connection of user on device, held by node.
func conn(id, user, device, node string) state.Conn {
	return state.Conn{ID: id, UserID: user, DeviceID: device, NodeID: node}
}

func mustConnect(t *testing.T, st state.Store, c state.Conn, now time.Time) state.ConnResult {
	t.Helper()
	r, err := st.Presence().Connect(ctx(t), c, presenceTTL, 0, now)
	noErr(t, err, "Connect "+c.ID)
	return r
}

func mustDisconnect(t *testing.T, st state.Store, user, id string, now time.Time) state.ConnResult {
	t.Helper()
	r, err := st.Presence().Disconnect(ctx(t), user, id, now)
	noErr(t, err, "Disconnect "+id)
	return r
}

func mustSetJoined(t *testing.T, st state.Store, user, id, meeting string, joined bool, now time.Time) state.Transition {
	t.Helper()
	tr, err := st.Presence().SetJoined(ctx(t), user, id, meeting, joined, now)
	noErr(t, err, "SetJoined "+id)
	return tr
}

func mustSettle(t *testing.T, st state.Store, user string, now time.Time) state.Transition {
	t.Helper()
	tr, err := st.Presence().SettleOffline(ctx(t), user, lastSeenTTL, now)
	noErr(t, err, "SettleOffline "+user)
	return tr
}

// changed asserts a transition of user from → to at now.
func changed(t *testing.T, tr state.Transition, user, from, to string, now time.Time) {
	t.Helper()
	if !tr.Changed() || tr.From != from || tr.To != to {
		t.Fatalf("transition = %s → %s, want %s → %s", tr.From, tr.To, from, to)
	}
	eq(t, "transition user", tr.UserID, user)
	eqTime(t, "transition At", tr.At, now)
}

// unchanged asserts a transition that changes nothing.
func unchanged(t *testing.T, tr state.Transition) {
	t.Helper()
	if tr.Changed() {
		t.Fatalf("transition = %s → %s, want no change", tr.From, tr.To)
	}
}

// presenceOf asserts the queried status of user at now, and returns the entry.
func presenceOf(t *testing.T, st state.Store, user string, now time.Time, want string) state.UserPresence {
	t.Helper()
	ps, err := st.Presence().Query(ctx(t), []string{user}, now)
	noErr(t, err, "Query")
	if len(ps) != 1 {
		t.Fatalf("Query returned %d entries, want 1", len(ps))
	}
	eq(t, "Query user", ps[0].UserID, user)
	eq(t, "status of "+user, ps[0].Status, want)
	return ps[0]
}

// nodeConns returns the connection ids indexed under node, sorted.
func nodeConns(t *testing.T, st state.Store, node string) []string {
	t.Helper()
	cs, err := st.Presence().NodeConns(ctx(t), node)
	noErr(t, err, "NodeConns")
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	slices.Sort(out)
	return out
}

func testPresence(t *testing.T, newStore factory) {
	subtest(t, newStore, "first connection goes online", func(t *testing.T, st state.Store) {
		r := mustConnect(t, st, conn("c1", "alice", "phone", "n1"), at(0))
		changed(t, r.Transition, "alice", state.Offline, state.Online, at(0))
		eq(t, "LastConn", r.LastConn, false)
		eqList(t, "Meetings", r.Meetings, nil)
		p := presenceOf(t, st, "alice", at(time.Second), state.Online)
		// Choice: last_seen is reported for offline users only.
		isNilTime(t, "LastSeen while online", p.LastSeen)
	})
	subtest(t, newStore, "a second connection is no transition", func(t *testing.T, st state.Store) {
		mustConnect(t, st, conn("c1", "alice", "phone", "n1"), at(0))
		r := mustConnect(t, st, conn("c2", "alice", "desktop", "n2"), at(time.Second))
		unchanged(t, r.Transition)
		eq(t, "To", r.To, state.Online)
	})
	subtest(t, newStore, "the last disconnect leaves the user online until SettleOffline", func(t *testing.T, st state.Store) {
		mustConnect(t, st, conn("c1", "alice", "phone", "n1"), at(0))
		mustConnect(t, st, conn("c2", "alice", "desktop", "n1"), at(0))
		r := mustDisconnect(t, st, "alice", "c1", at(time.Second))
		eq(t, "LastConn after c1", r.LastConn, false)
		unchanged(t, r.Transition)
		r = mustDisconnect(t, st, "alice", "c2", at(2*time.Second))
		eq(t, "LastConn after c2", r.LastConn, true)
		unchanged(t, r.Transition)
		// Choice: during the grace the query agrees with what was broadcast.
		presenceOf(t, st, "alice", at(3*time.Second), state.Online)

		tr := mustSettle(t, st, "alice", at(7*time.Second))
		changed(t, tr, "alice", state.Online, state.Offline, at(7*time.Second))
		p := presenceOf(t, st, "alice", at(8*time.Second), state.Offline)
		eqTimePtr(t, "LastSeen", p.LastSeen, at(7*time.Second))
		unchanged(t, mustSettle(t, st, "alice", at(9*time.Second)))
		p = presenceOf(t, st, "alice", at(10*time.Second), state.Offline)
		eqTimePtr(t, "LastSeen after a second settle", p.LastSeen, at(7*time.Second))
	})
	subtest(t, newStore, "a reconnect within the grace cancels the offline", func(t *testing.T, st state.Store) {
		mustConnect(t, st, conn("c1", "alice", "phone", "n1"), at(0))
		r := mustDisconnect(t, st, "alice", "c1", at(time.Second))
		eq(t, "LastConn", r.LastConn, true)
		r = mustConnect(t, st, conn("c2", "alice", "phone", "n2"), at(2*time.Second))
		unchanged(t, r.Transition)
		unchanged(t, mustSettle(t, st, "alice", at(6*time.Second)))
		presenceOf(t, st, "alice", at(7*time.Second), state.Online)
	})
	subtest(t, newStore, "after a reconnect ends the grace, an expiry counts again", func(t *testing.T, st state.Store) {
		mustConnect(t, st, conn("c1", "alice", "phone", "n1"), at(0))
		mustDisconnect(t, st, "alice", "c1", at(time.Second))
		mustConnect(t, st, conn("c2", "alice", "phone", "n1"), at(2*time.Second))
		// c2 expires without a disconnect: nothing is pending, the user is offline.
		presenceOf(t, st, "alice", at(2*time.Second+presenceTTL+time.Second), state.Offline)
	})
	subtest(t, newStore, "connecting again after offline goes online", func(t *testing.T, st state.Store) {
		mustConnect(t, st, conn("c1", "alice", "phone", "n1"), at(0))
		mustDisconnect(t, st, "alice", "c1", at(time.Second))
		mustSettle(t, st, "alice", at(6*time.Second))
		r := mustConnect(t, st, conn("c2", "alice", "phone", "n1"), at(time.Minute))
		changed(t, r.Transition, "alice", state.Offline, state.Online, at(time.Minute))
		p := presenceOf(t, st, "alice", at(time.Minute), state.Online)
		isNilTime(t, "LastSeen while online", p.LastSeen)
	})
	subtest(t, newStore, "SetJoined moves between online and busy", func(t *testing.T, st state.Store) {
		mustConnect(t, st, conn("c1", "alice", "phone", "n1"), at(0))
		mustConnect(t, st, conn("c2", "alice", "desktop", "n1"), at(0))
		steps := []struct {
			conn, meeting string
			joined        bool
			from, to      string
		}{
			{"c1", "mtg_a", true, state.Online, state.Busy},
			{"c2", "call_b", true, state.Busy, state.Busy},
			{"c1", "mtg_a", false, state.Busy, state.Busy}, // c2 is still in call_b
			{"c2", "call_b", false, state.Busy, state.Online},
			{"c2", "call_b", false, state.Online, state.Online},
		}
		for i, s := range steps {
			now := at(time.Duration(i+1) * time.Second)
			tr := mustSetJoined(t, st, "alice", s.conn, s.meeting, s.joined, now)
			if s.from == s.to {
				unchanged(t, tr)
			} else {
				changed(t, tr, "alice", s.from, s.to, now)
			}
			presenceOf(t, st, "alice", now, s.to)
		}
	})
	subtest(t, newStore, "ids that look like JSON are only ids", func(t *testing.T, st state.Store) {
		// A store that reads its entries without decoding them must not
		// take an expiry or a meeting from an id.
		tricky := `"x":1,"m":{"mtg_z":true}`
		mustConnect(t, st, conn(tricky, "alice", tricky, tricky), at(0))
		// A second device: the first is live and in no meeting.
		r := mustConnect(t, st, conn("c2", "alice", "desktop", "n1"), at(time.Second))
		unchanged(t, r.Transition)
		eq(t, "To", r.To, state.Online)
		changed(t, mustSetJoined(t, st, "alice", tricky, `"m":{"`, true, at(2*time.Second)), "alice", state.Online, state.Busy, at(2*time.Second))
		changed(t, mustSetJoined(t, st, "alice", tricky, `"m":{"`, false, at(3*time.Second)), "alice", state.Busy, state.Online, at(3*time.Second))
		r = mustDisconnect(t, st, "alice", "c2", at(4*time.Second))
		unchanged(t, r.Transition)
		presenceOf(t, st, "alice", at(5*time.Second), state.Online)
	})
	subtest(t, newStore, "Accept, Join and Leave record the meeting in presence", func(t *testing.T, st state.Store) {
		mustConnect(t, st, conn("b1", "bob", "phone", "n1"), at(0))
		newCall(t, st, "bob", "carol")
		presence := func(what string, tr *state.Transition) state.Transition {
			t.Helper()
			if tr == nil {
				t.Fatalf("%s reported no presence transition", what)
			}
			return *tr
		}
		r := mustAccept(t, st, "bob", "b1", at(time.Second))
		changed(t, presence("Accept", r.Presence), "bob", state.Online, state.Busy, at(time.Second))
		presenceOf(t, st, "bob", at(time.Second), state.Busy)

		// Refused: bob has accepted already, and mtg_none does not exist.
		// Neither leaves a mark behind.
		_, err := st.Meetings().Accept(ctx(t), "call_a", "bob", "b1", at(2*time.Second))
		isErr(t, err, state.ErrConflict, "Accept again")
		_, err = st.Meetings().Join(ctx(t), "mtg_none", "bob", "b1", at(2*time.Second))
		isErr(t, err, state.ErrNotFound, "Join an unknown meeting")
		presenceOf(t, st, "bob", at(2*time.Second), state.Busy)

		j, err := st.Meetings().Join(ctx(t), "call_a", "bob", "b1", at(3*time.Second))
		noErr(t, err, "Join again")
		eq(t, "Already", j.Already, true)
		unchanged(t, presence("Join again", j.Presence))

		l := mustLeave(t, st, "bob", "b1", at(4*time.Second))
		changed(t, presence("Leave", l.Presence), "bob", state.Busy, state.Online, at(4*time.Second))
		presenceOf(t, st, "bob", at(4*time.Second), state.Online)
		// The refused join took its mark back: nothing is left to forget.
		unchanged(t, mustSetJoined(t, st, "bob", "b1", "mtg_none", false, at(5*time.Second)))
		unchanged(t, mustSetJoined(t, st, "bob", "b1", "call_a", false, at(5*time.Second)))
	})
	subtest(t, newStore, "Create records a call in its creator's presence", func(t *testing.T, st state.Store) {
		mustConnect(t, st, conn("a1", "alice", "phone", "n1"), at(0))
		mustConnect(t, st, conn("c1", "carol", "phone", "n1"), at(0))
		tr := mustCreate(t, st, call("call_a", "alice", "a1", at(time.Second), "bob"), at(time.Second))
		if tr == nil {
			t.Fatal("Create of a call reported no presence transition")
		}
		changed(t, *tr, "alice", state.Online, state.Busy, at(time.Second))
		presenceOf(t, st, "alice", at(time.Second), state.Busy)
		if tr := mustCreate(t, st, scheduled("mtg_a", "alice", at(hour), at(2*hour), "bob"), at(time.Second)); tr != nil {
			t.Fatalf("Create of a scheduled meeting reported a transition %s → %s", tr.From, tr.To)
		}

		// Refused (the id exists): carol's connection keeps no mark.
		_, err := st.Meetings().Create(ctx(t), call("call_a", "carol", "c1", at(2*time.Second), "bob"), retention, at(2*time.Second))
		isErr(t, err, state.ErrConflict, "Create an existing call")
		presenceOf(t, st, "carol", at(2*time.Second), state.Online)
		unchanged(t, mustSetJoined(t, st, "carol", "c1", "call_a", false, at(3*time.Second)))
	})
	subtest(t, newStore, "Disconnect returns the joined meetings and clears busy", func(t *testing.T, st state.Store) {
		mustConnect(t, st, conn("c1", "alice", "phone", "n1"), at(0))
		mustConnect(t, st, conn("c2", "alice", "desktop", "n1"), at(0))
		mustSetJoined(t, st, "alice", "c1", "mtg_a", true, at(time.Second))
		mustSetJoined(t, st, "alice", "c1", "call_b", true, at(time.Second))
		mustSetJoined(t, st, "alice", "c1", "mtg_c", true, at(time.Second))
		mustSetJoined(t, st, "alice", "c1", "mtg_c", false, at(time.Second))
		r := mustDisconnect(t, st, "alice", "c1", at(2*time.Second))
		eqSet(t, "Meetings", r.Meetings, []string{"mtg_a", "call_b"})
		eq(t, "LastConn", r.LastConn, false)
		changed(t, r.Transition, "alice", state.Busy, state.Online, at(2*time.Second))
		presenceOf(t, st, "alice", at(2*time.Second), state.Online)
	})
	subtest(t, newStore, "the meetings of connections whose ids overlap stay apart", func(t *testing.T, st state.Store) {
		// A store that keys a mark by connection and meeting together must
		// not let one connection's marks pass for another's.
		ids := []string{"a", "a|b", "1:a", "a:"}
		for i, id := range ids {
			mustConnect(t, st, conn(id, "alice", fmt.Sprintf("d%d", i), "n1"), at(0))
			mustSetJoined(t, st, "alice", id, "m"+id, true, at(time.Second))
			mustSetJoined(t, st, "alice", id, "b|m", true, at(time.Second))
		}
		for i, id := range ids {
			r := mustDisconnect(t, st, "alice", id, at(time.Duration(2+i)*time.Second))
			eqSet(t, "Meetings of "+id, r.Meetings, []string{"m" + id, "b|m"})
		}
	})
	subtest(t, newStore, "a connection is busy until it left the last of its meetings", func(t *testing.T, st state.Store) {
		mustConnect(t, st, conn("c1", "alice", "phone", "n1"), at(0))
		const n = 30
		for i := range n {
			tr := mustSetJoined(t, st, "alice", "c1", fmt.Sprintf("call_%d", i), true, at(time.Second))
			if i == 0 {
				changed(t, tr, "alice", state.Online, state.Busy, at(time.Second))
			} else {
				unchanged(t, tr)
			}
		}
		unchanged(t, mustSetJoined(t, st, "alice", "c1", "call_0", true, at(2*time.Second)))
		for i := range n - 1 {
			unchanged(t, mustSetJoined(t, st, "alice", "c1", fmt.Sprintf("call_%d", i), false, at(3*time.Second)))
		}
		unchanged(t, mustSetJoined(t, st, "alice", "c1", "call_0", false, at(3*time.Second)))
		presenceOf(t, st, "alice", at(3*time.Second), state.Busy)
		changed(t, mustSetJoined(t, st, "alice", "c1", fmt.Sprintf("call_%d", n-1), false, at(4*time.Second)),
			"alice", state.Busy, state.Online, at(4*time.Second))
		r := mustDisconnect(t, st, "alice", "c1", at(5*time.Second))
		eqList(t, "Meetings", r.Meetings, nil)
	})
	subtest(t, newStore, "the last disconnect of a busy user", func(t *testing.T, st state.Store) {
		mustConnect(t, st, conn("c1", "alice", "phone", "n1"), at(0))
		mustSetJoined(t, st, "alice", "c1", "call_b", true, at(time.Second))
		r := mustDisconnect(t, st, "alice", "c1", at(2*time.Second))
		eqList(t, "Meetings", r.Meetings, []string{"call_b"})
		eq(t, "LastConn", r.LastConn, true)
		// The stored status is kept through the grace: no broadcast yet.
		unchanged(t, r.Transition)
		eq(t, "To", r.To, state.Busy)
		unchanged(t, mustSetJoined(t, st, "alice", "c1", "call_b", false, at(3*time.Second)))
		changed(t, mustSettle(t, st, "alice", at(7*time.Second)), "alice", state.Busy, state.Offline, at(7*time.Second))
	})
	subtest(t, newStore, "a busy user reconnecting within the grace becomes online", func(t *testing.T, st state.Store) {
		mustConnect(t, st, conn("c1", "alice", "phone", "n1"), at(0))
		mustSetJoined(t, st, "alice", "c1", "call_b", true, at(time.Second))
		mustDisconnect(t, st, "alice", "c1", at(2*time.Second))
		r := mustConnect(t, st, conn("c2", "alice", "phone", "n1"), at(3*time.Second))
		changed(t, r.Transition, "alice", state.Busy, state.Online, at(3*time.Second))
		unchanged(t, mustSettle(t, st, "alice", at(7*time.Second)))
	})
	subtest(t, newStore, "Connect refuses past maxConns live connections", func(t *testing.T, st state.Store) {
		const maxConns = 2
		connect := func(id string, now time.Time) error {
			_, err := st.Presence().Connect(ctx(t), conn(id, "alice", id, "n1"), presenceTTL, maxConns, now)
			return err
		}
		noErr(t, connect("c1", at(0)), "Connect c1")
		noErr(t, connect("c2", at(10*time.Second)), "Connect c2")
		isErr(t, connect("c3", at(20*time.Second)), state.ErrRateLimited, "Connect c3")
		eqList(t, "NodeConns after a refused Connect", nodeConns(t, st, "n1"), []string{"c1", "c2"})
		noErr(t, connect("c2", at(20*time.Second)), "Connect c2 again (not a new connection)")
		_, err := st.Presence().Connect(ctx(t), conn("other", "bob", "x", "n1"), presenceTTL, maxConns, at(20*time.Second))
		noErr(t, err, "another user's connection")

		// Heartbeat registers an unknown connection without a limit.
		_, err = st.Presence().Heartbeat(ctx(t), conn("c4", "alice", "c4", "n1"), presenceTTL, at(20*time.Second))
		noErr(t, err, "Heartbeat over the limit")
		eqList(t, "NodeConns", nodeConns(t, st, "n1"), []string{"c1", "c2", "c4", "other"})

		mustDisconnect(t, st, "alice", "c4", at(21*time.Second))
		mustDisconnect(t, st, "alice", "c2", at(21*time.Second))
		noErr(t, connect("c5", at(22*time.Second)), "Connect after a disconnect")
		isErr(t, connect("c6", at(22*time.Second)), state.ErrRateLimited, "Connect c6")
		// c1 expires at 120s: expired connections do not count.
		noErr(t, connect("c6", at(presenceTTL+time.Second)), "Connect after an expiry")
	})
	subtest(t, newStore, "Query reports each user in order", func(t *testing.T, st state.Store) {
		mustConnect(t, st, conn("c1", "alice", "phone", "n1"), at(0))
		mustConnect(t, st, conn("c2", "bob", "phone", "n1"), at(0))
		mustSetJoined(t, st, "bob", "c2", "mtg_a", true, at(0))
		mustConnect(t, st, conn("c3", "carol", "phone", "n1"), at(0))
		mustDisconnect(t, st, "carol", "c3", at(time.Second))
		mustSettle(t, st, "carol", at(5*time.Second))
		ps, err := st.Presence().Query(ctx(t), []string{"nobody", "carol", "bob", "alice", "bob"}, at(10*time.Second))
		noErr(t, err, "Query")
		var got []string
		for _, p := range ps {
			got = append(got, p.UserID+"="+p.Status)
		}
		eqList(t, "presence", got, []string{"nobody=offline", "carol=offline", "bob=busy", "alice=online", "bob=busy"})
		isNilTime(t, "LastSeen of a user never seen", ps[0].LastSeen)
		eqTimePtr(t, "LastSeen of carol", ps[1].LastSeen, at(5*time.Second))
		ps, err = st.Presence().Query(ctx(t), nil, at(10*time.Second))
		noErr(t, err, "Query nobody")
		eq(t, "entries for no users", len(ps), 0)
	})
	subtest(t, newStore, "expired connections do not count", func(t *testing.T, st state.Store) {
		mustConnect(t, st, conn("c1", "alice", "phone", "n1"), at(0))
		presenceOf(t, st, "alice", at(presenceTTL-time.Second), state.Online)
		presenceOf(t, st, "alice", at(presenceTTL+time.Second), state.Offline)

		mustConnect(t, st, conn("b1", "bob", "phone", "n1"), at(0))
		mustSetJoined(t, st, "bob", "b1", "mtg_a", true, at(0))
		mustConnect(t, st, conn("b2", "bob", "desktop", "n1"), at(100*time.Second))
		presenceOf(t, st, "bob", at(10*time.Second), state.Busy)
		// b1 (the busy one) expired; b2 is live and in no meeting.
		presenceOf(t, st, "bob", at(presenceTTL+time.Second), state.Online)
	})
	subtest(t, newStore, "Heartbeat extends liveness without a transition", func(t *testing.T, st state.Store) {
		c := conn("c1", "alice", "phone", "n1")
		mustConnect(t, st, c, at(0))
		r, err := st.Presence().Heartbeat(ctx(t), c, presenceTTL, at(60*time.Second))
		noErr(t, err, "Heartbeat")
		unchanged(t, r.Transition)
		presenceOf(t, st, "alice", at(150*time.Second), state.Online)
		presenceOf(t, st, "alice", at(181*time.Second), state.Offline)
	})
	subtest(t, newStore, "Heartbeat keeps the connection's meetings", func(t *testing.T, st state.Store) {
		c := conn("c1", "alice", "phone", "n1")
		mustConnect(t, st, c, at(0))
		mustSetJoined(t, st, "alice", "c1", "mtg_a", true, at(time.Second))
		r, err := st.Presence().Heartbeat(ctx(t), c, presenceTTL, at(60*time.Second))
		noErr(t, err, "Heartbeat")
		unchanged(t, r.Transition)
		presenceOf(t, st, "alice", at(61*time.Second), state.Busy)
		d := mustDisconnect(t, st, "alice", "c1", at(62*time.Second))
		eqList(t, "Meetings", d.Meetings, []string{"mtg_a"})
	})
	subtest(t, newStore, "Heartbeat of an unknown connection registers it", func(t *testing.T, st state.Store) {
		c := conn("c1", "alice", "phone", "n1")
		r, err := st.Presence().Heartbeat(ctx(t), c, presenceTTL, at(0))
		noErr(t, err, "Heartbeat")
		changed(t, r.Transition, "alice", state.Offline, state.Online, at(0))
		presenceOf(t, st, "alice", at(time.Second), state.Online)
		eqList(t, "NodeConns", nodeConns(t, st, "n1"), []string{"c1"})
		d := mustDisconnect(t, st, "alice", "c1", at(2*time.Second))
		eq(t, "LastConn", d.LastConn, true)
	})
	subtest(t, newStore, "Heartbeat after the connection expired and the user went offline", func(t *testing.T, st state.Store) {
		c := conn("c1", "alice", "phone", "n1")
		mustConnect(t, st, c, at(0))
		now := at(presenceTTL + time.Second)
		changed(t, mustSettle(t, st, "alice", now), "alice", state.Online, state.Offline, now)
		r, err := st.Presence().Heartbeat(ctx(t), c, presenceTTL, at(130*time.Second))
		noErr(t, err, "Heartbeat")
		changed(t, r.Transition, "alice", state.Offline, state.Online, at(130*time.Second))
		presenceOf(t, st, "alice", at(131*time.Second), state.Online)
	})
	subtest(t, newStore, "SettleOffline while a connection is live changes nothing", func(t *testing.T, st state.Store) {
		mustConnect(t, st, conn("c1", "alice", "phone", "n1"), at(0))
		unchanged(t, mustSettle(t, st, "alice", at(time.Second)))
		presenceOf(t, st, "alice", at(2*time.Second), state.Online)
	})
	subtest(t, newStore, "NodeConns lists connections by node", func(t *testing.T, st state.Store) {
		mustConnect(t, st, conn("c1", "alice", "phone", "n1"), at(0))
		mustConnect(t, st, conn("c2", "bob", "", "n1"), at(0))
		mustConnect(t, st, conn("c3", "alice", "desktop", "n2"), at(0))
		cs, err := st.Presence().NodeConns(ctx(t), "n1")
		noErr(t, err, "NodeConns")
		slices.SortFunc(cs, func(a, b state.Conn) int { return strings.Compare(a.ID, b.ID) })
		if !slices.Equal(cs, []state.Conn{conn("c1", "alice", "phone", "n1"), conn("c2", "bob", "", "n1")}) {
			t.Fatalf("NodeConns(n1) = %+v", cs)
		}
		eqList(t, "NodeConns(n2)", nodeConns(t, st, "n2"), []string{"c3"})
		eqList(t, "NodeConns(n3)", nodeConns(t, st, "n3"), nil)
		mustDisconnect(t, st, "alice", "c1", at(time.Second))
		eqList(t, "NodeConns(n1) after Disconnect", nodeConns(t, st, "n1"), []string{"c2"})
		mustDisconnect(t, st, "alice", "c3", at(time.Second))
		eqList(t, "NodeConns(n2) after Disconnect", nodeConns(t, st, "n2"), nil)
	})
	subtest(t, newStore, "NodeConns still lists expired connections", func(t *testing.T, st state.Store) {
		// The reaper of a dead node needs them to leave meetings and settle users.
		mustConnect(t, st, conn("c1", "alice", "phone", "n1"), at(0))
		presenceOf(t, st, "alice", at(presenceTTL+time.Second), state.Offline)
		eqList(t, "NodeConns(n1)", nodeConns(t, st, "n1"), []string{"c1"})
	})
	subtest(t, newStore, "Disconnect of an unknown connection is a zero result", func(t *testing.T, st state.Store) {
		mustConnect(t, st, conn("c1", "alice", "phone", "n1"), at(0))
		for _, tc := range []struct{ user, id string }{{"alice", "nope"}, {"bob", "c1"}, {"nobody", "nope"}} {
			r := mustDisconnect(t, st, tc.user, tc.id, at(time.Second))
			unchanged(t, r.Transition)
			eq(t, "LastConn", r.LastConn, false)
			eqList(t, "Meetings", r.Meetings, nil)
		}
		presenceOf(t, st, "alice", at(time.Second), state.Online)
		eqList(t, "NodeConns(n1)", nodeConns(t, st, "n1"), []string{"c1"})
	})
	subtest(t, newStore, "SetJoined of an unknown connection changes nothing", func(t *testing.T, st state.Store) {
		mustConnect(t, st, conn("c1", "alice", "phone", "n1"), at(0))
		unchanged(t, mustSetJoined(t, st, "alice", "nope", "mtg_a", true, at(time.Second)))
		unchanged(t, mustSetJoined(t, st, "bob", "nope", "mtg_a", true, at(time.Second)))
		presenceOf(t, st, "alice", at(time.Second), state.Online)
		presenceOf(t, st, "bob", at(time.Second), state.Offline)
	})
	subtest(t, newStore, "SettleOffline of an unknown user changes nothing", func(t *testing.T, st state.Store) {
		unchanged(t, mustSettle(t, st, "nobody", at(0)))
		p := presenceOf(t, st, "nobody", at(0), state.Offline)
		isNilTime(t, "LastSeen", p.LastSeen)
	})
	subtest(t, newStore, "concurrent connects: one transition", func(t *testing.T, st state.Store) {
		const n = 16
		var (
			wg  sync.WaitGroup
			mu  sync.Mutex
			got int
		)
		for i := range n {
			wg.Go(func() {
				r, err := st.Presence().Connect(ctx(t), conn(nth("c", i), "alice", nth("d", i), "n1"), presenceTTL, n, at(0))
				if err != nil {
					t.Errorf("Connect: %v", err)
					return
				}
				if r.Changed() {
					mu.Lock()
					got++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		eq(t, "connects reporting a transition", got, 1)
		eq(t, "connections of n1", len(nodeConns(t, st, "n1")), n)
	})
	subtest(t, newStore, "concurrent disconnects: one LastConn", func(t *testing.T, st state.Store) {
		const n = 16
		for i := range n {
			mustConnect(t, st, conn(nth("c", i), "alice", nth("d", i), "n1"), at(0))
		}
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			last int
		)
		for i := range n {
			wg.Go(func() {
				r, err := st.Presence().Disconnect(ctx(t), "alice", nth("c", i), at(time.Second))
				if err != nil {
					t.Errorf("Disconnect: %v", err)
					return
				}
				if r.LastConn {
					mu.Lock()
					last++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		eq(t, "disconnects reporting LastConn", last, 1)
		changed(t, mustSettle(t, st, "alice", at(6*time.Second)), "alice", state.Online, state.Offline, at(6*time.Second))
	})
}
