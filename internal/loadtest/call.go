package loadtest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	json "github.com/goccy/go-json"
)

// callState is one instant call of the call scenario and the deliveries it
// expects. Slot layout: incoming has one slot per callee device; accepted
// and ended have the caller's devices at 0..D-1 and the callee's at D..2D-1.
type callState struct {
	caller, callee int
	incoming       *stage
	accepted       *stage
	ended          *stage
	acksOK         bool        // every step's ack succeeded (written by the op, read after it)
	aborted        atomic.Bool // the flow stopped early: ended's reason is not "completed"
}

// registry maps ids (call ids, user ids, titles) to the state that tracks
// them, for the readers.
type registry[T any] struct {
	mu sync.RWMutex
	m  map[string]T
	// all keeps every state in creation order for the accounting.
	all []T
}

func (g *registry[T]) put(id string, v T) {
	g.mu.Lock()
	if g.m == nil {
		g.m = map[string]T{}
	}
	g.m[id] = v
	g.all = append(g.all, v)
	g.mu.Unlock()
}

func (g *registry[T]) get(id string) (T, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	v, ok := g.m[id]
	return v, ok
}

func (g *registry[T]) list() []T {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return append([]T(nil), g.all...)
}

// unexpected counts deliveries nobody expected, by event.
type unexpectedCounter struct{ Counter }

// call runs the instant-call flow at the offered rate:
//
//	caller call:create (ack) → caller call:notify (ack) → call:incoming on
//	every device of the callee → callee call:accept (ack) → call:accepted
//	on every device of the caller (and the callee's other devices) →
//	(--talk) → caller and callee meeting:leave (ack) → call:ended on every
//	device.
//
// Users are paired (2p calls 2p+1); call i uses pair i mod P, and rotates
// the caller's and the accepting callee's device with each round, so the
// events spread over every socket (the gateway allows 20 events per second
// per socket).
func (r *runner) call(ctx context.Context) error {
	cfg := r.cfg
	p := newPopulation(cfg, "u", cfg.Conns)
	r.rep.Conns, r.rep.Users = p.size(), p.users
	D := p.devices
	pairs := p.users / 2
	if perSocket := 3 * cfg.Rate / float64(pairs*D); perSocket > 15 {
		r.rep.note("each caller socket emits %.1f events/s, near or over the gateway's 20/s per socket: expect rate_limited; use more --conns", perSocket)
	}
	if len(cfg.URLs) < D && len(cfg.URLs) > 1 {
		r.rep.note("%d devices per user over %d nodes: some devices of a user share a node", D, len(cfg.URLs))
	}

	var reg registry[*callState]
	var unexpected unexpectedCounter
	h := func(c *Client, ev Event) {
		r.events.add(ev.Name)
		m := p.member(c.Tag())
		switch string(ev.Name) {
		case "call:incoming":
			var d struct {
				Call struct {
					ID string `json:"meeting_id"`
				} `json:"call"`
			}
			_ = json.Unmarshal(ev.Data, &d)
			st, ok := reg.get(d.Call.ID)
			if !ok || m.User != st.callee || !st.incoming.arrive(m.Device, ev.At) {
				unexpected.Add("call:incoming", 1)
			}
		case "call:accepted", "call:ended":
			var d struct {
				CallID string `json:"call_id"`
				Reason string `json:"reason"`
			}
			_ = json.Unmarshal(ev.Data, &d)
			st, ok := reg.get(d.CallID)
			name := string(ev.Name)
			if !ok {
				unexpected.Add(name, 1)
				return
			}
			slot := -1
			switch m.User {
			case st.caller:
				slot = m.Device
			case st.callee:
				slot = D + m.Device
			}
			sg := st.accepted
			if name == "call:ended" {
				sg = st.ended
				if d.Reason != "completed" && !st.aborted.Load() {
					r.errs.Add("call:ended: reason "+d.Reason, 1)
				}
			}
			if !sg.arrive(slot, ev.At) {
				unexpected.Add(name, 1)
			}
		}
	}
	r.rep.Connect = r.connect(ctx, p, h)
	defer closeAll(p.clients)
	if r.rep.Connect.Connected == 0 {
		return fmt.Errorf("no connection succeeded: %s", r.rep.Connect.FirstError)
	}
	r.settle(ctx)

	var (
		createLat, notifyLat, incomingLat = NewLatency(), NewLatency(), NewLatency()
		acceptLat, acceptedLat, leaveLat  = NewLatency(), NewLatency(), NewLatency()
		lag                               = NewLatency()
		ackT, delT                        = cfg.AckTimeout, cfg.DeliveryTimeout
	)
	emit := func(c *Client, step string, lat *Latency, payload any) (Ack, bool) {
		if c == nil {
			r.errs.Add(step+": no connection", 1)
			return Ack{}, false
		}
		b, _ := json.Marshal(payload)
		t0 := time.Now()
		a, err := c.EmitAck(step, b, ackT)
		if !r.ok(step, a, err) {
			return a, false
		}
		lat.Add(time.Since(t0))
		return a, true
	}
	op := func(i int) {
		pair, round := i%pairs, i/pairs
		dev := round % D
		caller, callee := 2*pair, 2*pair+1
		cc, ac := p.client(caller, dev), p.client(callee, dev)
		a, ok := emit(cc, "call:create", createLat, map[string]any{"title": "load", "participants": []string{p.userID(callee)}})
		if !ok {
			return
		}
		var created struct {
			Call struct {
				ID string `json:"meeting_id"`
			} `json:"call"`
		}
		if json.Unmarshal(a.Raw, &created) != nil || created.Call.ID == "" {
			r.errs.Add("call:create: no call id", 1)
			return
		}
		id := created.Call.ID
		st := &callState{caller: caller, callee: callee, incoming: newStage(D), accepted: newStage(2 * D), ended: newStage(2 * D)}
		reg.put(id, st)
		ref := map[string]any{"call_id": id}
		leave := map[string]any{"meeting_id": id}
		abort := func(accepted bool) {
			st.aborted.Store(true)
			st.ended.arm(time.Now())
			emit(cc, "meeting:leave", leaveLat, leave)
			if accepted {
				emit(ac, "meeting:leave", leaveLat, leave)
			}
		}

		st.incoming.arm(time.Now())
		a, ok = emit(cc, "call:notify", notifyLat, map[string]any{"call_id": id, "recipients": []string{p.userID(callee)}})
		if !ok {
			abort(false)
			return
		}
		var notified struct {
			N int `json:"notified_count"`
		}
		if _ = json.Unmarshal(a.Raw, &notified); notified.N != 1 {
			r.errs.Add(fmt.Sprintf("call:notify: notified_count %d", notified.N), 1)
		}
		st.incoming.wait(delT)

		st.accepted.exclude(D + dev) // the accepting socket is left out
		st.accepted.arm(time.Now())
		if _, ok = emit(ac, "call:accept", acceptLat, ref); !ok {
			abort(false)
			return
		}
		st.accepted.wait(delT)
		sleepCtx(ctx, cfg.Talk)

		st.ended.arm(time.Now())
		_, ok1 := emit(cc, "meeting:leave", leaveLat, leave)
		_, ok2 := emit(ac, "meeting:leave", leaveLat, leave)
		st.ended.wait(delT)
		st.acksOK = ok1 && ok2
	}

	before := r.sampleServers()
	sched := r.schedule(ctx, cfg.Ops(), lag, op)
	after := r.sampleServers()
	sleepCtx(ctx, cfg.Quiet) // let duplicates show

	inc, acc, end := r.rep.deliveries("call:incoming"), r.rep.deliveries("call:accepted"), r.rep.deliveries("call:ended")
	callerSlot := func(i int) bool { return i < D }
	for _, st := range reg.list() {
		var di, da, de Deliveries
		st.incoming.account(&di, delT, incomingLat, nil)
		st.accepted.account(&da, delT, acceptedLat, callerSlot)
		st.ended.account(&de, delT, nil, nil)
		if st.acksOK && di.Lost+da.Lost+de.Lost == 0 && di.Expected > 0 {
			r.rep.Completed++
		}
		inc.add(di)
		acc.add(da)
		end.add(de)
	}
	u := unexpected.Map()
	inc.Unexpected, acc.Unexpected, end.Unexpected = u["call:incoming"], u["call:accepted"], u["call:ended"]

	r.rep.Schedule = &sched
	if sched.ElapsedSeconds > 0 {
		r.rep.CompletedPerSecond = float64(r.rep.Completed) / sched.ElapsedSeconds
	}
	r.rep.step("call:create ack", createLat)
	r.rep.step("call:notify ack", notifyLat)
	r.rep.step("notify→incoming (per device)", incomingLat)
	r.rep.step("call:accept ack", acceptLat)
	r.rep.step("accept→accepted (caller devices)", acceptedLat)
	r.rep.step("meeting:leave ack", leaveLat)
	r.rep.Servers = r.serverReport(before, after, 0, r.rep.Completed)
	return nil
}
