package redis_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/redis"
)

// benchStore returns a store on a fresh local redis-server, scripts loaded.
func benchStore(b *testing.B) *redis.Store {
	b.Helper()
	srv := redistest.Start(b)
	st, _ := freshStore(b, srv)
	if err := st.Preload(context.Background()); err != nil {
		b.Fatal(err)
	}
	return st
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkJoinLeave: a participant's device joins and leaves a live meeting
// of 50 participants (two transitions per op).
func BenchmarkJoinLeave(b *testing.B) {
	st := benchStore(b)
	ctx := context.Background()
	members := make([]string, 49)
	for i := range members {
		members[i] = fmt.Sprintf("user%02d", i)
	}
	m := scheduled("mtg_a", at(0), at(24*time.Hour), members...)
	must(b, st.Meetings().Create(ctx, m, 7*24*time.Hour, at(0)))
	_, err := st.Meetings().Join(ctx, "mtg_a", "alice", "a1", at(time.Minute))
	must(b, err)
	i := 0
	for b.Loop() {
		conn := fmt.Sprintf("c%d", i)
		i++
		_, err := st.Meetings().Join(ctx, "mtg_a", "user07", conn, at(time.Hour))
		must(b, err)
		_, err = st.Meetings().Leave(ctx, "mtg_a", "user07", conn, at(time.Hour))
		must(b, err)
	}
}

// BenchmarkJoinLeaveParallel: the same on one meeting from many goroutines,
// which all contend for one key.
func BenchmarkJoinLeaveParallel(b *testing.B) {
	st := benchStore(b)
	ctx := context.Background()
	members := make([]string, 63)
	for i := range members {
		members[i] = fmt.Sprintf("user%02d", i)
	}
	must(b, st.Meetings().Create(ctx, scheduled("mtg_a", at(0), at(24*time.Hour), members...), 7*24*time.Hour, at(0)))
	_, err := st.Meetings().Join(ctx, "mtg_a", "alice", "a1", at(time.Minute))
	must(b, err)
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		user := fmt.Sprintf("user%02d", n.Add(1)%63)
		for pb.Next() {
			conn := fmt.Sprintf("c%d", n.Add(1))
			if _, err := st.Meetings().Join(ctx, "mtg_a", user, conn, at(time.Hour)); err != nil {
				b.Error(err)
				return
			}
			if _, err := st.Meetings().Leave(ctx, "mtg_a", user, conn, at(time.Hour)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCreateMeeting: a scheduled meeting of 10 participants, indexed for
// each of them in the same pipeline.
func BenchmarkCreateMeeting(b *testing.B) {
	st := benchStore(b)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		m := scheduled(fmt.Sprintf("mtg_%d", i), at(time.Hour), at(2*time.Hour),
			"b", "c", "d", "e", "f", "g", "h", "i", "j")
		must(b, st.Meetings().Create(ctx, m, 7*24*time.Hour, at(0)))
	}
}

// BenchmarkRing: ring 10 recipients of a call, with the ring-timeout job
// in the same pipeline (as call:notify does).
func BenchmarkRing(b *testing.B) {
	st := benchStore(b)
	ctx := context.Background()
	members := []string{"b", "c", "d", "e", "f", "g", "h", "i", "j", "k"}
	must(b, st.Meetings().Create(ctx, call("call_a", at(0), members...), 0, at(0)))
	for b.Loop() {
		r, err := st.Meetings().Ring(ctx, "call_a", "alice", members, members, at(time.Minute), ringTimeout("call_a", at(time.Minute)), at(0))
		must(b, err)
		must(b, r.TimeoutErr)
		if len(r.Ringing) != len(members) {
			b.Fatalf("rang %d", len(r.Ringing))
		}
	}
}

// BenchmarkCallLifecycle: create, ring, accept, leave twice (the call ends
// and is deleted).
func BenchmarkCallLifecycle(b *testing.B) {
	st := benchStore(b)
	ctx := context.Background()
	mt := st.Meetings()
	i := 0
	for b.Loop() {
		i++
		id := fmt.Sprintf("call_%d", i)
		must(b, mt.Create(ctx, call(id, at(0), "bob"), 0, at(0)))
		rr, err := mt.Ring(ctx, id, "alice", []string{"bob"}, []string{"bob"}, at(time.Minute), ringTimeout(id, at(time.Minute)), at(0))
		must(b, err)
		must(b, rr.TimeoutErr)
		_, err = mt.Accept(ctx, id, "bob", "b1", at(time.Second))
		must(b, err)
		_, err = mt.Leave(ctx, id, "alice", "a1", at(time.Minute))
		must(b, err)
		r, err := mt.Leave(ctx, id, "bob", "b1", at(time.Minute))
		must(b, err)
		if !r.Deleted {
			b.Fatal("call not deleted")
		}
	}
}

// BenchmarkPresenceConnect: a device connects and disconnects while the
// user has another device online (no transition either way).
func BenchmarkPresenceConnect(b *testing.B) {
	st := benchStore(b)
	ctx := context.Background()
	p := st.Presence()
	_, err := p.Connect(ctx, state.Conn{ID: "keep", UserID: "alice", DeviceID: "desk", NodeID: "n1"}, time.Hour, 20, at(0))
	must(b, err)
	i := 0
	for b.Loop() {
		i++
		id := fmt.Sprintf("c%d", i)
		_, err := p.Connect(ctx, state.Conn{ID: id, UserID: "alice", DeviceID: "phone", NodeID: "n1"}, 2*time.Minute, 20, at(0))
		must(b, err)
		_, err = p.Disconnect(ctx, "alice", id, at(time.Second))
		must(b, err)
	}
}

// BenchmarkHeartbeat: one connection's heartbeat.
func BenchmarkHeartbeat(b *testing.B) {
	st := benchStore(b)
	ctx := context.Background()
	c := state.Conn{ID: "c1", UserID: "alice", DeviceID: "phone", NodeID: "n1"}
	_, err := st.Presence().Connect(ctx, c, 2*time.Minute, 20, at(0))
	must(b, err)
	for b.Loop() {
		_, err := st.Presence().Heartbeat(ctx, c, 2*time.Minute, at(time.Minute))
		must(b, err)
	}
}

// BenchmarkPresenceQuery: the status of 100 users, half of them online.
func BenchmarkPresenceQuery(b *testing.B) {
	st := benchStore(b)
	ctx := context.Background()
	users := make([]string, 100)
	for i := range users {
		users[i] = fmt.Sprintf("u%d", i)
		if i%2 == 0 {
			_, err := st.Presence().Connect(ctx, state.Conn{ID: users[i], UserID: users[i], NodeID: "n1"}, time.Hour, 20, at(0))
			must(b, err)
		}
	}
	for b.Loop() {
		_, err := st.Presence().Query(ctx, users, at(time.Minute))
		must(b, err)
	}
}

// BenchmarkAdmission: a guest asks and is declined (two transitions per op).
func BenchmarkAdmission(b *testing.B) {
	st := benchStore(b)
	ctx := context.Background()
	g := st.Guests()
	must(b, g.CreateSession(ctx, guestSession("s1", "mtg_a"), at(0)))
	now := at(0)
	for b.Loop() {
		now = now.Add(10 * time.Millisecond)
		_, err := g.Request(ctx, "mtg_a", "s1", nil, now)
		must(b, err)
		_, err = g.Decide(ctx, "mtg_a", "s1", "alice", false, time.Millisecond, now)
		must(b, err)
	}
}

// BenchmarkUseLink: one use of an unlimited link.
func BenchmarkUseLink(b *testing.B) {
	st := benchStore(b)
	ctx := context.Background()
	must(b, st.Links().CreateLink(ctx, &state.Link{Token: "tok", MeetingID: "mtg_a", CreatedBy: "alice",
		CreatedAt: state.At(at(0)), ExpiresAt: state.At(at(time.Hour))}, at(0)))
	for b.Loop() {
		_, err := st.Links().UseLink(ctx, "tok", at(time.Minute))
		must(b, err)
	}
}

// BenchmarkJobs: schedule a job, claim it, finish it (three transitions).
func BenchmarkJobs(b *testing.B) {
	st := benchStore(b)
	ctx := context.Background()
	j := st.Jobs()
	i := 0
	for b.Loop() {
		i++
		must(b, j.Schedule(ctx, state.Job{ID: fmt.Sprintf("j%d", i), Kind: "k", Subject: "s", Due: state.At(at(0))}))
		js, err := j.Claim(ctx, at(time.Second), 30*time.Second, 10)
		must(b, err)
		if len(js) != 1 {
			b.Fatalf("claimed %d", len(js))
		}
		must(b, j.Done(ctx, js[0]))
	}
}

// BenchmarkNodeRefresh: a node's lease refresh.
func BenchmarkNodeRefresh(b *testing.B) {
	st := benchStore(b)
	ctx := context.Background()
	now := at(0)
	for b.Loop() {
		now = now.Add(time.Millisecond)
		_, err := st.Nodes().Refresh(ctx, "n1", 10*time.Second, now)
		must(b, err)
	}
}

// BenchmarkListForUser: a user with 20 meetings lists a page of 10.
func BenchmarkListForUser(b *testing.B) {
	st := benchStore(b)
	ctx := context.Background()
	for i := range 20 {
		must(b, st.Meetings().Create(ctx, scheduled(fmt.Sprintf("mtg_%d", i), at(time.Duration(i)*time.Hour),
			at(time.Duration(i+1)*time.Hour), "bob"), 7*24*time.Hour, at(0)))
	}
	for b.Loop() {
		ms, err := st.Meetings().ListForUser(ctx, "bob", true, at(0), 0, 10)
		must(b, err)
		if len(ms) != 10 {
			b.Fatalf("listed %d", len(ms))
		}
	}
}
