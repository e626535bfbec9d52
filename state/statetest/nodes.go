package statetest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/state"
)

const nodeLease = 10 * time.Second

func mustRefresh(t *testing.T, st state.Store, node string, now time.Time) bool {
	t.Helper()
	lost, err := st.Nodes().Refresh(ctx(t), node, nodeLease, now)
	noErr(t, err, "Refresh "+node)
	return lost
}

func alive(t *testing.T, st state.Store, now time.Time) []string {
	t.Helper()
	ns, err := st.Nodes().Alive(ctx(t), now)
	noErr(t, err, "Alive")
	slices.Sort(ns)
	return ns
}

func claimDead(t *testing.T, st state.Store, now time.Time) []string {
	t.Helper()
	ns, err := st.Nodes().ClaimDead(ctx(t), now)
	noErr(t, err, "ClaimDead")
	slices.Sort(ns)
	return ns
}

func testNodes(t *testing.T, newStore factory) {
	subtest(t, newStore, "Refresh reports lost on the first registration only", func(t *testing.T, st state.Store) {
		eq(t, "lost at first", mustRefresh(t, st, "n1", at(0)), true)
		eq(t, "lost on refresh", mustRefresh(t, st, "n1", at(2*time.Second)), false)
		eq(t, "lost on refresh", mustRefresh(t, st, "n1", at(4*time.Second)), false)
		eqList(t, "Alive", alive(t, st, at(5*time.Second)), []string{"n1"})
	})
	subtest(t, newStore, "Refresh after the lease expired reports lost", func(t *testing.T, st state.Store) {
		mustRefresh(t, st, "n1", at(0))
		// Choice: an expired lease is lost even if nobody reaped it yet; the
		// node cannot know, so it re-registers what it holds.
		eq(t, "lost after a long pause", mustRefresh(t, st, "n1", at(nodeLease+time.Second)), true)
		eq(t, "lost on the next refresh", mustRefresh(t, st, "n1", at(nodeLease+2*time.Second)), false)
	})
	subtest(t, newStore, "ClaimDead returns expired nodes once", func(t *testing.T, st state.Store) {
		mustRefresh(t, st, "n1", at(0))
		mustRefresh(t, st, "n2", at(0))
		mustRefresh(t, st, "n2", at(8*time.Second))
		now := at(nodeLease + time.Second)
		// Choice: Alive lists only nodes whose lease holds at now.
		eqList(t, "Alive", alive(t, st, now), []string{"n2"})
		eqList(t, "ClaimDead", claimDead(t, st, now), []string{"n1"})
		eqList(t, "ClaimDead again", claimDead(t, st, now), nil)
		eqList(t, "Alive after", alive(t, st, now), []string{"n2"})
		eq(t, "a reaped node finds its lease lost", mustRefresh(t, st, "n1", now), true)
		eqList(t, "Alive after re-registration", alive(t, st, now), []string{"n1", "n2"})
	})
	subtest(t, newStore, "ClaimDead keeps the dead node's connections for the reaper", func(t *testing.T, st state.Store) {
		mustRefresh(t, st, "n1", at(0))
		mustConnect(t, st, conn("c1", "alice", "phone", "n1"), at(0))
		eqList(t, "ClaimDead", claimDead(t, st, at(time.Minute)), []string{"n1"})
		eqList(t, "NodeConns(n1)", nodeConns(t, st, "n1"), []string{"c1"})
	})
	subtest(t, newStore, "concurrent reapers: each dead node to exactly one", func(t *testing.T, st state.Store) {
		const nodes, reapers = 6, 10
		for i := range nodes {
			mustRefresh(t, st, nth("n", i), at(0))
		}
		mustRefresh(t, st, "survivor", at(time.Minute))
		var (
			wg  sync.WaitGroup
			mu  sync.Mutex
			got []string
		)
		for range reapers {
			wg.Go(func() {
				ns, err := st.Nodes().ClaimDead(ctx(t), at(time.Minute))
				if err != nil {
					t.Errorf("ClaimDead: %v", err)
					return
				}
				mu.Lock()
				got = append(got, ns...)
				mu.Unlock()
			})
		}
		wg.Wait()
		slices.Sort(got)
		var want []string
		for i := range nodes {
			want = append(want, nth("n", i))
		}
		eqList(t, "claimed dead nodes, each once", got, want)
		eqList(t, "Alive", alive(t, st, at(time.Minute)), []string{"survivor"})
	})
	subtest(t, newStore, "Deregister removes the node and its connection index", func(t *testing.T, st state.Store) {
		mustRefresh(t, st, "n1", at(0))
		mustRefresh(t, st, "n2", at(0))
		mustConnect(t, st, conn("c1", "alice", "phone", "n1"), at(0))
		mustConnect(t, st, conn("c2", "bob", "phone", "n2"), at(0))
		noErr(t, st.Nodes().Deregister(ctx(t), "n1"), "Deregister")
		eqList(t, "Alive", alive(t, st, at(time.Second)), []string{"n2"})
		eqList(t, "NodeConns(n1)", nodeConns(t, st, "n1"), nil)
		eqList(t, "NodeConns(n2)", nodeConns(t, st, "n2"), []string{"c2"})
		eqList(t, "ClaimDead", claimDead(t, st, at(time.Minute)), []string{"n2"})
		noErr(t, st.Nodes().Deregister(ctx(t), "nope"), "Deregister unknown")
		eq(t, "a deregistered node starts afresh", mustRefresh(t, st, "n1", at(time.Minute)), true)
	})
}
