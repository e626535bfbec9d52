package loadtest

import (
	"context"
	"time"
)

// idle connects the population, holds it for the duration (answering the
// servers' pings) and reports the connect rate and the servers' resident
// memory per connection: (RSS at the end of the hold - RSS before
// connecting) / connections. Reading at the end of the hold rather than
// right after connecting lets the presence broadcasts that connecting
// causes (every new user is announced to every member) drain first; the
// RSS right after connecting is kept in the notes. It also reads each
// node's own figures from its /metrics (NodeMemory), which need no PID.
func (r *runner) idle(ctx context.Context) error {
	p := newPopulation(r.cfg, "u", r.cfg.Conns)
	r.rep.Conns, r.rep.Users = p.size(), p.users
	before := r.sampleServers()
	r.rep.Connect = r.connect(ctx, p, r.counting)
	defer closeAll(p.clients)
	connected := r.sampleServers()
	for i, pid := range r.cfg.PIDs {
		r.rep.note("pid %d: RSS right after connecting %d KiB", pid, connected[i].RSSKiB)
	}
	r.logf("holding %d connections for %v", r.rep.Connect.Connected, r.cfg.Duration)
	hold := time.NewTimer(r.cfg.Duration)
	defer hold.Stop()
	select {
	case <-hold.C:
	case <-ctx.Done():
	}
	after := r.sampleServers()
	r.rep.Nodes = r.sampleNodeMemory(context.WithoutCancel(ctx))
	// Connections that dropped during the hold, and how long after their
	// last answered ping (a drop one ping timeout after an answered ping
	// points at the server losing the pong).
	var alive int64
	sincePing := NewLatency()
	for _, c := range p.clients {
		if c == nil {
			continue
		}
		select {
		case <-c.Done():
			r.errs.Add("hold: disconnected ("+closeReason(c.Err())+")", 1)
			if d, ok := c.PingBeforeStop(); ok {
				sincePing.Add(d)
			}
		default:
			alive++
		}
	}
	if s := sincePing.Summary(); s.Count > 0 {
		r.rep.note("%d dropped connections had answered a server ping %.1f s (min), %.1f s (median), %.1f s (max) before dropping",
			s.Count, s.Min/1000, s.P50/1000, s.Max/1000)
	}
	r.rep.Servers = r.serverReport(before, after, r.rep.Connect.Connected, 0)
	r.rep.Completed = alive
	return nil
}
