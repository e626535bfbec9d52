package loadtest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	json "github.com/goccy/go-json"
)

// fanout measures one broadcast reaching many sockets: user 0 creates a
// scheduled meeting with every other user as participant, every socket
// registers in it (meeting:register-participant), then user 0's first
// device sends meeting:update at the offered rate, each with a distinct
// title. meeting:updated goes to every socket of every participant except
// the emitter; the tool matches each delivery to its broadcast by title and
// measures emit → delivery per recipient.
func (r *runner) fanout(ctx context.Context) error {
	cfg := r.cfg
	p := newPopulation(cfg, "u", cfg.Conns)
	r.rep.Conns, r.rep.Users = p.size(), p.users
	if cfg.Rate > 15 {
		r.rep.note("the owner socket sends %.0f updates/s, near or over the gateway's 20 events/s per socket: expect rate_limited", cfg.Rate)
	}
	titlePrefix := "lt-" + cfg.RunID + "-"
	var mu sync.Mutex
	stages := map[int]*stage{}
	var unexpected Counter
	h := func(c *Client, ev Event) {
		r.events.add(ev.Name)
		if string(ev.Name) != "meeting:updated" {
			return
		}
		var d struct {
			Meeting struct {
				Title string `json:"title"`
			} `json:"meeting"`
		}
		_ = json.Unmarshal(ev.Data, &d)
		n, err := strconv.Atoi(strings.TrimPrefix(d.Meeting.Title, titlePrefix))
		if err != nil || !strings.HasPrefix(d.Meeting.Title, titlePrefix) {
			return // an update the tool did not make (e.g. the meeting ending)
		}
		mu.Lock()
		sg := stages[n]
		mu.Unlock()
		if !sg.arrive(c.Tag(), ev.At) {
			unexpected.Add("x", 1)
		}
	}
	r.rep.Connect = r.connect(ctx, p, h)
	defer closeAll(p.clients)
	owner := p.clients[0]
	if owner == nil {
		return fmt.Errorf("the owner's connection failed: %s", r.rep.Connect.FirstError)
	}

	// The meeting: scheduled an hour ahead so that it neither ends nor
	// sends reminders during the run.
	var participants []string
	for u := 1; u < p.users; u++ {
		participants = append(participants, p.userID(u))
	}
	now := time.Now().UTC()
	body, _ := json.Marshal(map[string]any{"title": titlePrefix + "create", "participants": participants,
		"startTime": now.Add(time.Hour).Format(time.RFC3339), "endTime": now.Add(2 * time.Hour).Format(time.RFC3339)})
	a, err := owner.EmitAck("meeting:create", body, cfg.AckTimeout)
	if !r.ok("meeting:create", a, err) {
		return fmt.Errorf("meeting:create failed: %s %s", a.Code, a.Error)
	}
	var created struct {
		Meeting struct {
			ID string `json:"meeting_id"`
		} `json:"meeting"`
	}
	if json.Unmarshal(a.Raw, &created) != nil || created.Meeting.ID == "" {
		return fmt.Errorf("meeting:create: no meeting id in %s", a.Raw)
	}
	id := created.Meeting.ID

	// Every socket joins the room, with the connect concurrency.
	regLat := NewLatency()
	ref, _ := json.Marshal(map[string]string{"meeting_id": id})
	var wg sync.WaitGroup
	sem := make(chan struct{}, cfg.ConnectConcurrency)
	for _, c := range p.clients {
		if c == nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(c *Client) {
			defer func() { <-sem; wg.Done() }()
			t0 := time.Now()
			a, err := c.EmitAck("meeting:register-participant", ref, cfg.AckTimeout)
			if r.ok("meeting:register-participant", a, err) {
				regLat.Add(time.Since(t0))
			}
		}(c)
	}
	wg.Wait()
	r.rep.step("register-participant ack", regLat)
	r.logf("%d sockets registered in %s", regLat.Summary().Count, id)
	r.settle(ctx)

	ackLat, lag := NewLatency(), NewLatency()
	var okMu sync.Mutex
	acked := map[int]bool{}
	op := func(i int) {
		sg := newStage(p.size())
		sg.exclude(0)
		mu.Lock()
		stages[i] = sg
		mu.Unlock()
		b, _ := json.Marshal(map[string]string{"meeting_id": id, "title": titlePrefix + strconv.Itoa(i)})
		t0 := time.Now()
		sg.arm(t0)
		a, err := owner.EmitAck("meeting:update", b, cfg.AckTimeout)
		if !r.ok("meeting:update", a, err) {
			return
		}
		ackLat.Add(time.Since(t0))
		okMu.Lock()
		acked[i] = true
		okMu.Unlock()
		sg.wait(cfg.DeliveryTimeout)
	}
	before := r.sampleServers()
	sched := r.schedule(ctx, cfg.Ops(), lag, op)
	after := r.sampleServers()
	sleepCtx(ctx, cfg.Quiet)

	del := r.rep.deliveries("meeting:updated")
	lat, lastLat := NewLatency(), NewLatency()
	mu.Lock()
	defer mu.Unlock()
	for i, sg := range stages {
		var d Deliveries
		if !acked[i] {
			continue // refused: nothing was broadcast
		}
		sg.account(&d, cfg.DeliveryTimeout, lat, nil)
		if l, ok := sg.last(); ok {
			lastLat.Add(l)
		}
		if d.Lost == 0 {
			r.rep.Completed++
		}
		del.add(d)
	}
	del.Unexpected = unexpected.Total()
	r.rep.Schedule = &sched
	if sched.ElapsedSeconds > 0 {
		r.rep.CompletedPerSecond = float64(r.rep.Completed) / sched.ElapsedSeconds
	}
	r.rep.step("meeting:update ack", ackLat)
	r.rep.step("update→updated (per recipient)", lat)
	r.rep.step("update→updated (last recipient)", lastLat)
	r.rep.Servers = r.serverReport(before, after, 0, r.rep.Completed)
	return nil
}
