package statetest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/state"
)

const lease = 30 * time.Second

// job returns a job due at due.
func job(id string, due time.Time) state.Job {
	return state.Job{ID: id, Kind: "ring_timeout", Subject: "call_" + id, Arg: "arg-" + id, Due: state.At(due)}
}

func mustSchedule(t *testing.T, st state.Store, j state.Job) {
	t.Helper()
	noErr(t, st.Jobs().Schedule(ctx(t), j), "Schedule "+j.ID)
}

func mustClaim(t *testing.T, st state.Store, now time.Time, limit int) []state.Job {
	t.Helper()
	js, err := st.Jobs().Claim(ctx(t), now, lease, limit)
	noErr(t, err, "Claim")
	return js
}

func jobIDs(js []state.Job) []string {
	var out []string
	for _, j := range js {
		out = append(out, j.ID)
	}
	return out
}

func testJobs(t *testing.T, newStore factory) {
	subtest(t, newStore, "Claim returns due jobs with a lease", func(t *testing.T, st state.Store) {
		mustSchedule(t, st, job("j1", at(time.Minute)))
		eqList(t, "claimed before due", jobIDs(mustClaim(t, st, at(time.Minute-time.Millisecond), 10)), nil)
		js := mustClaim(t, st, at(time.Minute), 10) // due at or before now
		if len(js) != 1 {
			t.Fatalf("claimed %v, want j1", jobIDs(js))
		}
		want := job("j1", at(time.Minute))
		want.Lease = state.At(at(time.Minute + lease))
		eq(t, "claimed job", jsonOf(t, js[0]), jsonOf(t, want))
	})
	subtest(t, newStore, "Claim takes only due jobs, earliest first, up to the limit", func(t *testing.T, st state.Store) {
		for _, j := range []state.Job{
			job("late", at(hour)), job("j3", at(3*time.Second)), job("j1", at(time.Second)),
			job("j2", at(2*time.Second)),
		} {
			mustSchedule(t, st, j)
		}
		eqList(t, "first claim", jobIDs(mustClaim(t, st, at(time.Minute), 2)), []string{"j1", "j2"})
		eqList(t, "second claim", jobIDs(mustClaim(t, st, at(time.Minute), 10)), []string{"j3"})
		eqList(t, "third claim", jobIDs(mustClaim(t, st, at(time.Minute), 10)), nil)
	})
	subtest(t, newStore, "Schedule takes several jobs, or none", func(t *testing.T, st state.Store) {
		noErr(t, st.Jobs().Schedule(ctx(t)), "Schedule of no jobs")
		noErr(t, st.Jobs().Schedule(ctx(t), job("j2", at(2*time.Second)), job("j1", at(time.Second)), job("j3", at(hour))), "Schedule")
		js := mustClaim(t, st, at(time.Minute), 10)
		eqList(t, "claimed", jobIDs(js), []string{"j1", "j2"})
		for _, j := range js {
			noErr(t, st.Jobs().Done(ctx(t), j), "Done")
		}
		// The same id twice in one call: the last one wins.
		noErr(t, st.Jobs().Schedule(ctx(t), job("j4", at(time.Second)), job("j4", at(2*hour))), "Schedule twice")
		eqList(t, "claimed", jobIDs(mustClaim(t, st, at(hour+time.Minute), 10)), []string{"j3"})
	})
	subtest(t, newStore, "Schedule of an existing id moves it", func(t *testing.T, st state.Store) {
		mustSchedule(t, st, job("j1", at(10*time.Minute)))
		mustSchedule(t, st, job("j1", at(time.Minute)))
		js := mustClaim(t, st, at(2*time.Minute), 10)
		eqList(t, "claimed", jobIDs(js), []string{"j1"})
		eqTime(t, "Due", js[0].Due, at(time.Minute))
		eqList(t, "claimed later", jobIDs(mustClaim(t, st, at(20*time.Minute), 10)), []string{"j1"}) // lease expired; one copy only

		mustSchedule(t, st, job("j2", at(time.Minute)))
		mustSchedule(t, st, job("j2", at(10*time.Minute)))
		eqList(t, "claimed before the new due time", jobIDs(mustClaim(t, st, at(2*time.Minute), 10)), nil)
	})
	subtest(t, newStore, "Cancel removes a job", func(t *testing.T, st state.Store) {
		mustSchedule(t, st, job("j1", at(time.Minute)))
		mustSchedule(t, st, job("j2", at(time.Minute)))
		noErr(t, st.Jobs().Cancel(ctx(t), "j1"), "Cancel")
		noErr(t, st.Jobs().Cancel(ctx(t), "nope"), "Cancel unknown")
		eqList(t, "claimed", jobIDs(mustClaim(t, st, at(time.Hour), 10)), []string{"j2"})
	})
	subtest(t, newStore, "a claimed job reappears after its lease", func(t *testing.T, st state.Store) {
		mustSchedule(t, st, job("j1", at(time.Minute)))
		first := mustClaim(t, st, at(time.Minute), 10)
		eqList(t, "hidden during the lease", jobIDs(mustClaim(t, st, at(time.Minute+lease-time.Second), 10)), nil)
		again := mustClaim(t, st, at(time.Minute+lease+time.Second), 10)
		eqList(t, "claimed again", jobIDs(again), []string{"j1"})
		eqTime(t, "new Lease", again[0].Lease, at(time.Minute+2*lease+time.Second))
		// The first claimer's Done is stale: the job stays for the second.
		noErr(t, st.Jobs().Done(ctx(t), first[0]), "stale Done")
		eqList(t, "after a stale Done", jobIDs(mustClaim(t, st, at(time.Hour), 10)), []string{"j1"})
	})
	subtest(t, newStore, "Done removes a claimed job", func(t *testing.T, st state.Store) {
		mustSchedule(t, st, job("j1", at(time.Minute)))
		js := mustClaim(t, st, at(time.Minute), 10)
		noErr(t, st.Jobs().Done(ctx(t), js[0]), "Done")
		eqList(t, "after Done", jobIDs(mustClaim(t, st, at(time.Hour), 10)), nil)
		noErr(t, st.Jobs().Done(ctx(t), js[0]), "Done twice")
	})
	subtest(t, newStore, "Done of a job rescheduled since does not remove it", func(t *testing.T, st state.Store) {
		mustSchedule(t, st, job("j1", at(time.Minute)))
		js := mustClaim(t, st, at(time.Minute), 10)
		mustSchedule(t, st, job("j1", at(15*time.Minute))) // the handler schedules the next step
		noErr(t, st.Jobs().Done(ctx(t), js[0]), "Done")
		eqList(t, "before the new due time", jobIDs(mustClaim(t, st, at(14*time.Minute), 10)), nil)
		js = mustClaim(t, st, at(15*time.Minute), 10)
		eqList(t, "at the new due time", jobIDs(js), []string{"j1"})
		eqTime(t, "Due", js[0].Due, at(15*time.Minute))
	})
	subtest(t, newStore, "Done of a claimed job passed back to Schedule does not remove it", func(t *testing.T, st state.Store) {
		mustSchedule(t, st, job("j1", at(time.Minute)))
		js := mustClaim(t, st, at(time.Minute), 10)
		next := js[0] // the handler moves the job it holds, lease and all
		next.Due = state.At(at(15 * time.Minute))
		mustSchedule(t, st, next)
		noErr(t, st.Jobs().Done(ctx(t), js[0]), "Done")
		eqList(t, "at the new due time", jobIDs(mustClaim(t, st, at(15*time.Minute), 10)), []string{"j1"})
	})
	subtest(t, newStore, "concurrent claimers never share a job", func(t *testing.T, st state.Store) {
		const jobs, claimers = 60, 8
		for i := range jobs {
			mustSchedule(t, st, job(nth("j", i), at(time.Duration(i)*time.Millisecond)))
		}
		var (
			wg  sync.WaitGroup
			mu  sync.Mutex
			got []string
		)
		for range claimers {
			wg.Go(func() {
				for range jobs { // bounded: a store that never hides claimed jobs must not hang the suite
					js, err := st.Jobs().Claim(ctx(t), at(time.Minute), lease, 3)
					if err != nil {
						t.Errorf("Claim: %v", err)
						return
					}
					if len(js) == 0 {
						return
					}
					mu.Lock()
					got = append(got, jobIDs(js)...)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		slices.Sort(got)
		var want []string
		for i := range jobs {
			want = append(want, nth("j", i))
		}
		eqList(t, "claimed jobs, each once", got, want)
	})
}
