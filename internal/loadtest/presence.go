package loadtest

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	json "github.com/goccy/go-json"
)

// churnState is one connect → heartbeat → disconnect cycle of a fresh user,
// with the presence broadcasts every watcher must receive once.
type churnState struct {
	connected    *stage // slot = watcher index
	disconnected *stage
	// skip: the handshake failed, so no transition was announced.
	skip atomic.Bool
}

// presence churns users at the offered rate while watchers count the
// presence broadcasts. Each cycle is a user id never seen before (so each
// connect is an offline → online transition): connect one device, send
// presence:heartbeat, hold it for --hold, disconnect. Every watcher must
// receive presence:user_connected once (latency from the Socket.IO connect
// packet, after which the server authenticates and announces) and
// presence:user_disconnected once (latency from the disconnect, which
// includes the server's presence grace, default 5 s).
func (r *runner) presence(ctx context.Context) error {
	cfg := r.cfg
	// Watchers are devices of watcher users (--devices each): connecting
	// W watchers as W/D users costs the node W²/2D presence deliveries
	// instead of W²/2.
	watchers := newPopulation(cfg, "w", cfg.Watchers)
	r.rep.Conns, r.rep.Users = watchers.size(), watchers.users

	var reg registry[*churnState]
	var unexpected Counter
	var badStatus atomic.Int64
	h := func(c *Client, ev Event) {
		r.events.add(ev.Name)
		name := string(ev.Name)
		if name != "presence:user_connected" && name != "presence:user_disconnected" {
			return
		}
		var d struct {
			UserID string `json:"user_id"`
			Status string `json:"status"`
		}
		_ = json.Unmarshal(ev.Data, &d)
		st, ok := reg.get(d.UserID)
		if !ok {
			return // a watcher coming online, or someone else's user
		}
		sg := st.disconnected
		if name == "presence:user_connected" {
			sg = st.connected
			if d.Status != "online" {
				badStatus.Add(1)
			}
		}
		if !sg.arrive(c.Tag(), ev.At) {
			unexpected.Add(name, 1)
		}
	}
	r.rep.Connect = r.connect(ctx, watchers, h)
	defer closeAll(watchers.clients)
	if r.rep.Connect.Connected == 0 {
		return fmt.Errorf("no watcher connected: %s", r.rep.Connect.FirstError)
	}
	// Watchers that failed to connect cannot receive: exclude them.
	var missing []int
	for k, c := range watchers.clients {
		if c == nil {
			missing = append(missing, k)
		}
	}
	r.settle(ctx)

	var (
		dialLat, hbLat = NewLatency(), NewLatency()
		lag            = NewLatency()
		// open bounds the churning connections open at once.
		open = make(chan struct{}, max(1, MaxConns-cfg.Watchers))
		W    = watchers.size()
		// The disconnect broadcast waits for the grace first.
		discTimeout = cfg.PresenceGrace + cfg.DeliveryTimeout
	)
	op := func(i int) {
		select {
		case open <- struct{}{}:
		default:
			r.errs.Add("churn: too many open connections", 1)
			return
		}
		release := func() { <-open }
		user := userID(cfg.RunID, "c", i)
		st := &churnState{connected: newStage(W), disconnected: newStage(W)}
		for _, k := range missing {
			st.connected.exclude(k)
			st.disconnected.exclude(k)
		}
		reg.put(user, st)
		a, err := r.authFor(user, "d0")
		if err != nil {
			st.skip.Store(true)
			release()
			r.errs.Add("churn: token", 1)
			return
		}
		st.connected.arm(time.Now())
		c, err := Dial(ctx, DialOptions{URL: cfg.URLs[i%len(cfg.URLs)], Auth: a, Timeout: cfg.ConnectTimeout, Handler: r.counting, Header: cfg.handshakeHeader()})
		if err != nil {
			st.skip.Store(true)
			release()
			r.errs.Add("churn "+dialCode(err), 1)
			return
		}
		// Measure from the Socket.IO connect packet: the server
		// authenticates and announces after reading it. Read only by the
		// accounting, after this goroutine ends.
		st.connected.sent = mono(c.SentConnect)
		dialLat.Add(c.Connected.Sub(c.Started))
		t0 := time.Now()
		a2, err := c.EmitAck("presence:heartbeat", nil, cfg.AckTimeout)
		if r.ok("presence:heartbeat", a2, err) {
			hbLat.Add(time.Since(t0))
		}
		sleepCtx(ctx, cfg.Hold)
		st.disconnected.arm(time.Now())
		c.Close()
		release()
		st.connected.wait(cfg.DeliveryTimeout)
		st.disconnected.wait(discTimeout)
	}
	before := r.sampleServers()
	sched := r.schedule(ctx, cfg.Ops(), lag, op)
	after := r.sampleServers()
	sleepCtx(ctx, cfg.Quiet)

	dc, dd := r.rep.deliveries("presence:user_connected"), r.rep.deliveries("presence:user_disconnected")
	connLat, discLat, lastLat := NewLatency(), NewLatency(), NewLatency()
	for _, st := range reg.list() {
		if st.skip.Load() {
			continue
		}
		var a, b Deliveries
		st.connected.account(&a, cfg.DeliveryTimeout, connLat, nil)
		st.disconnected.account(&b, discTimeout, discLat, nil)
		if d, ok := st.connected.last(); ok {
			lastLat.Add(d)
		}
		if a.Lost+b.Lost == 0 {
			r.rep.Completed++
		}
		dc.add(a)
		dd.add(b)
	}
	u := unexpected.Map()
	dc.Unexpected, dd.Unexpected = u["presence:user_connected"], u["presence:user_disconnected"]
	if n := badStatus.Load(); n > 0 {
		r.errs.Add("presence:user_connected: status not online", n)
	}
	r.rep.Schedule = &sched
	if sched.ElapsedSeconds > 0 {
		r.rep.CompletedPerSecond = float64(r.rep.Completed) / sched.ElapsedSeconds
	}
	r.rep.step("churn connect (handshake)", dialLat)
	r.rep.step("presence:heartbeat ack", hbLat)
	r.rep.step("connect→user_connected (per watcher)", connLat)
	r.rep.step("connect→user_connected (last watcher)", lastLat)
	r.rep.step(fmt.Sprintf("disconnect→user_disconnected (per watcher, incl. %v grace)", cfg.PresenceGrace), discLat)
	r.rep.Servers = r.serverReport(before, after, 0, r.rep.Completed)
	if n := dc.OnTime + dc.Late + dd.OnTime + dd.Late; n > 0 {
		var cpu float64
		for _, s := range r.rep.Servers {
			cpu += s.CPUSeconds
		}
		r.rep.ServerCPUPerDeliveryUs = cpu * 1e6 / float64(n)
	}
	return nil
}
