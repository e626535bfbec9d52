package redis_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/redis"
)

// benchStore returns a store on a fresh local redis-server, scripts loaded,
// and the meter of that server's CPU.
func benchStore(b *testing.B) (*redis.Store, *redisMeter) {
	b.Helper()
	srv := redistest.Start(b)
	st, c := freshStore(b, srv)
	if err := st.Preload(context.Background()); err != nil {
		b.Fatal(err)
	}
	return st, &redisMeter{b: b, c: c}
}

// redisMeter reports what the benchmark's operations cost in CPU, which
// ns/op (mostly round-trip latency) does not tell: go-cpu-µs/op is the CPU
// time of this process (user + sys, the client's side: encoding, decoding,
// go-redis, the runtime); redis-cpu-µs/op is the server process's CPU time
// (INFO cpu), event loop and network included; redis-eval-µs/op is the time
// Redis spent running scripts (EVALSHA and EVAL in INFO commandstats; the
// commands a script calls are inside that time). Call start just before the
// loop and report just after it.
type redisMeter struct {
	b      *testing.B
	c      *goredis.Client
	cpu    float64
	goUsed time.Duration
}

func (m *redisMeter) start() {
	m.b.Helper()
	must(m.b, m.c.ConfigResetStat(context.Background()).Err())
	m.cpu = m.cpuSeconds()
	m.goUsed = processCPU(m.b)
}

func (m *redisMeter) report() {
	m.b.Helper()
	goUsed := processCPU(m.b) - m.goUsed
	cpu := m.cpuSeconds() - m.cpu
	info, err := m.c.Info(context.Background(), "commandstats").Result()
	must(m.b, err)
	var eval float64 // µs
	for _, line := range strings.Split(info, "\n") {
		name, stats, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (name != "cmdstat_evalsha" && name != "cmdstat_eval") {
			continue
		}
		for _, f := range strings.Split(stats, ",") {
			if v, ok := strings.CutPrefix(f, "usec="); ok {
				n, err := strconv.ParseFloat(v, 64)
				must(m.b, err)
				eval += n
			}
		}
	}
	n := float64(m.b.N)
	m.b.ReportMetric(float64(goUsed.Microseconds())/n, "go-cpu-µs/op")
	m.b.ReportMetric(cpu*1e6/n, "redis-cpu-µs/op")
	m.b.ReportMetric(eval/n, "redis-eval-µs/op")
}

// processCPU is the CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	must(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuSeconds is the CPU time the server process has used.
func (m *redisMeter) cpuSeconds() float64 {
	info, err := m.c.Info(context.Background(), "cpu").Result()
	must(m.b, err)
	var sum float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, err := strconv.ParseFloat(v, 64)
			must(m.b, err)
			sum += f
		}
	}
	return sum
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
	st, rm := benchStore(b)
	ctx := context.Background()
	members := make([]string, 49)
	for i := range members {
		members[i] = fmt.Sprintf("user%02d", i)
	}
	m := scheduled("mtg_a", at(0), at(24*time.Hour), members...)
	must(b, created(st.Meetings().Create(ctx, m, 7*24*time.Hour, at(0))))
	_, err := st.Meetings().Join(ctx, "mtg_a", "alice", "a1", at(time.Minute))
	must(b, err)
	i := 0
	rm.start()
	for b.Loop() {
		conn := fmt.Sprintf("c%d", i)
		i++
		_, err := st.Meetings().Join(ctx, "mtg_a", "user07", conn, at(time.Hour))
		must(b, err)
		_, err = st.Meetings().Leave(ctx, "mtg_a", "user07", conn, at(time.Hour))
		must(b, err)
	}
	rm.report()
}

// BenchmarkJoinLeaveParallel: the same on one meeting from many goroutines,
// which all contend for one key.
func BenchmarkJoinLeaveParallel(b *testing.B) {
	st, rm := benchStore(b)
	ctx := context.Background()
	members := make([]string, 63)
	for i := range members {
		members[i] = fmt.Sprintf("user%02d", i)
	}
	must(b, created(st.Meetings().Create(ctx, scheduled("mtg_a", at(0), at(24*time.Hour), members...), 7*24*time.Hour, at(0))))
	_, err := st.Meetings().Join(ctx, "mtg_a", "alice", "a1", at(time.Minute))
	must(b, err)
	var n atomic.Int64
	rm.start()
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
	rm.report()
}

// BenchmarkCreateMeeting: a scheduled meeting of 10 participants, indexed for
// each of them in the same pipeline.
func BenchmarkCreateMeeting(b *testing.B) {
	st, rm := benchStore(b)
	ctx := context.Background()
	i := 0
	rm.start()
	for b.Loop() {
		i++
		m := scheduled(fmt.Sprintf("mtg_%d", i), at(time.Hour), at(2*time.Hour),
			"b", "c", "d", "e", "f", "g", "h", "i", "j")
		must(b, created(st.Meetings().Create(ctx, m, 7*24*time.Hour, at(0))))
	}
	rm.report()
}

// BenchmarkRing: ring 10 recipients of a call, with the ring-timeout job
// in the same pipeline (as call:notify does).
func BenchmarkRing(b *testing.B) {
	st, rm := benchStore(b)
	ctx := context.Background()
	members := []string{"b", "c", "d", "e", "f", "g", "h", "i", "j", "k"}
	must(b, created(st.Meetings().Create(ctx, call("call_a", at(0), members...), 0, at(0))))
	online(b, st, members...)
	rm.start()
	for b.Loop() {
		r, err := st.Meetings().Ring(ctx, "call_a", "alice", members, at(time.Minute), ringTimeout("call_a", at(time.Minute)), at(0))
		must(b, err)
		must(b, r.TimeoutErr)
		if len(r.Ringing) != len(members) {
			b.Fatalf("rang %d", len(r.Ringing))
		}
	}
	rm.report()
}

// BenchmarkCallLifecycle: create, ring, accept, leave twice (the call ends
// and is deleted).
func BenchmarkCallLifecycle(b *testing.B) {
	st, rm := benchStore(b)
	ctx := context.Background()
	mt := st.Meetings()
	online(b, st, "bob")
	i := 0
	rm.start()
	for b.Loop() {
		i++
		id := fmt.Sprintf("call_%d", i)
		must(b, created(mt.Create(ctx, call(id, at(0), "bob"), 0, at(0))))
		rr, err := mt.Ring(ctx, id, "alice", []string{"bob"}, at(time.Minute), ringTimeout(id, at(time.Minute)), at(0))
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
	rm.report()
}

// BenchmarkPresenceConnect: a device connects and disconnects while the
// user has another device online (no transition either way).
func BenchmarkPresenceConnect(b *testing.B) {
	st, rm := benchStore(b)
	ctx := context.Background()
	p := st.Presence()
	_, err := p.Connect(ctx, state.Conn{ID: "keep", UserID: "alice", DeviceID: "desk", NodeID: "n1"}, time.Hour, 20, at(0))
	must(b, err)
	i := 0
	rm.start()
	for b.Loop() {
		i++
		id := fmt.Sprintf("c%d", i)
		_, err := p.Connect(ctx, state.Conn{ID: id, UserID: "alice", DeviceID: "phone", NodeID: "n1"}, 2*time.Minute, 20, at(0))
		must(b, err)
		_, err = p.Disconnect(ctx, "alice", id, at(time.Second))
		must(b, err)
	}
	rm.report()
}

// BenchmarkHeartbeat: one connection's heartbeat.
func BenchmarkHeartbeat(b *testing.B) {
	st, rm := benchStore(b)
	ctx := context.Background()
	c := state.Conn{ID: "c1", UserID: "alice", DeviceID: "phone", NodeID: "n1"}
	_, err := st.Presence().Connect(ctx, c, 2*time.Minute, 20, at(0))
	must(b, err)
	rm.start()
	for b.Loop() {
		_, err := st.Presence().Heartbeat(ctx, c, 2*time.Minute, at(time.Minute))
		must(b, err)
	}
	rm.report()
}

// BenchmarkSetJoined is the common busy mark: a connection that joins and
// leaves one call, beside another connection of its user.
func BenchmarkSetJoined(b *testing.B) { benchSetJoined(b, 0) }

// BenchmarkSetJoinedManyMeetings: a busy mark of a user whose two
// connections are each in 100 meetings at once (as a load test's few users
// placing thousands of calls are), toggled on one of them.
func BenchmarkSetJoinedManyMeetings(b *testing.B) { benchSetJoined(b, 100) }

// benchSetJoined toggles the mark of one meeting on connection c1 of a user
// whose two connections are each in meetings other meetings.
func benchSetJoined(b *testing.B, meetings int) {
	st, rm := benchStore(b)
	ctx := context.Background()
	p := st.Presence()
	for _, id := range []string{"c1", "c2"} {
		_, err := p.Connect(ctx, state.Conn{ID: id, UserID: "alice", DeviceID: id, NodeID: "n1"}, time.Hour, 20, at(0))
		must(b, err)
		for i := range meetings {
			_, err := p.SetJoined(ctx, "alice", id, fmt.Sprintf("call_%032d", i), true, at(0))
			must(b, err)
		}
	}
	joined := false
	rm.start()
	for b.Loop() {
		joined = !joined
		_, err := p.SetJoined(ctx, "alice", "c1", "call_x", joined, at(time.Second))
		must(b, err)
	}
	rm.report()
}

// BenchmarkPresenceQuery: the status of 100 users, half of them online.
func BenchmarkPresenceQuery(b *testing.B) {
	st, rm := benchStore(b)
	ctx := context.Background()
	users := make([]string, 100)
	for i := range users {
		users[i] = fmt.Sprintf("u%d", i)
		if i%2 == 0 {
			_, err := st.Presence().Connect(ctx, state.Conn{ID: users[i], UserID: users[i], NodeID: "n1"}, time.Hour, 20, at(0))
			must(b, err)
		}
	}
	rm.start()
	for b.Loop() {
		_, err := st.Presence().Query(ctx, users, at(time.Minute))
		must(b, err)
	}
	rm.report()
}

// BenchmarkAdmission: a guest asks and is declined (two transitions per op).
func BenchmarkAdmission(b *testing.B) {
	st, rm := benchStore(b)
	ctx := context.Background()
	g := st.Guests()
	must(b, g.CreateSession(ctx, guestSession("s1", "mtg_a"), at(0)))
	now := at(0)
	rm.start()
	for b.Loop() {
		now = now.Add(10 * time.Millisecond)
		_, err := g.Request(ctx, "mtg_a", "s1", nil, now)
		must(b, err)
		_, err = g.Decide(ctx, "mtg_a", "s1", "alice", false, time.Millisecond, now)
		must(b, err)
	}
	rm.report()
}

// BenchmarkUseLink: one use of an unlimited link.
func BenchmarkUseLink(b *testing.B) {
	st, rm := benchStore(b)
	ctx := context.Background()
	must(b, st.Links().CreateLink(ctx, &state.Link{Token: "tok", MeetingID: "mtg_a", CreatedBy: "alice",
		CreatedAt: state.At(at(0)), ExpiresAt: state.At(at(time.Hour))}, at(0)))
	rm.start()
	for b.Loop() {
		_, err := st.Links().UseLink(ctx, "tok", at(time.Minute))
		must(b, err)
	}
	rm.report()
}

// BenchmarkJobs: schedule a job, claim it, finish it (three transitions).
func BenchmarkJobs(b *testing.B) {
	st, rm := benchStore(b)
	ctx := context.Background()
	j := st.Jobs()
	i := 0
	rm.start()
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
	rm.report()
}

// BenchmarkNodeRefresh: a node's lease refresh.
func BenchmarkNodeRefresh(b *testing.B) {
	st, rm := benchStore(b)
	ctx := context.Background()
	now := at(0)
	rm.start()
	for b.Loop() {
		now = now.Add(time.Millisecond)
		_, err := st.Nodes().Refresh(ctx, "n1", 10*time.Second, now)
		must(b, err)
	}
	rm.report()
}

// BenchmarkListForUser: a user with 20 meetings lists a page of 10.
func BenchmarkListForUser(b *testing.B) {
	st, rm := benchStore(b)
	ctx := context.Background()
	for i := range 20 {
		must(b, created(st.Meetings().Create(ctx, scheduled(fmt.Sprintf("mtg_%d", i), at(time.Duration(i)*time.Hour),
			at(time.Duration(i+1)*time.Hour), "bob"), 7*24*time.Hour, at(0))))
	}
	rm.start()
	for b.Loop() {
		ms, err := st.Meetings().ListForUser(ctx, "bob", true, at(0), 0, 10)
		must(b, err)
		if len(ms) != 10 {
			b.Fatalf("listed %d", len(ms))
		}
	}
	rm.report()
}
