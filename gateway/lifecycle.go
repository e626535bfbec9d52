package gateway

import (
	"context"
	"time"
)

// Draining reports whether Drain has begun.
func (g *Gateway) Draining() bool { return g.draining.Load() }

// Drain refuses new handshakes and closes every socket's transport — not
// with a Socket.IO DISCONNECT packet, after which standard clients would not
// reconnect by themselves — spread evenly over window, so the reconnects to
// other nodes do not arrive all at once. Before closing a socket it stops
// handling its events and waits (at most the request timeout) for those
// being handled to be answered: an event that arrives after that is neither
// applied nor answered, so the client can send it again on its new
// connection, and no applied event loses its ack. It returns when all are
// closed or ctx ends.
func (g *Gateway) Drain(ctx context.Context, window time.Duration) {
	g.draining.Store(true)
	g.mu.Lock()
	all := make([]*conn, 0, len(g.conns))
	for _, c := range g.conns {
		all = append(all, c)
	}
	g.mu.Unlock()
	if len(all) == 0 {
		return
	}
	step := window / time.Duration(len(all))
	t := time.NewTimer(0)
	defer t.Stop()
	for _, c := range all {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.quiesce(time.Now().Add(g.cfg.RequestTimeout))
		if ec := c.sock.Conn(); ec != nil {
			ec.Close(false) // flush what is written, acks included
		}
		t.Reset(step)
	}
	// Wait for the disconnect handlers to record the departures.
	deadline := time.NewTicker(20 * time.Millisecond)
	defer deadline.Stop()
	for g.Conns() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
		}
	}
}

// Restore registers again everything this node holds: each member socket's
// presence and meeting rooms, each guest socket's session. A node runs it
// when it finds its lease lost (it was reaped during a long pause or a
// partition) or after the store came back empty.
func (g *Gateway) Restore(ctx context.Context) (restored int) {
	g.mu.Lock()
	all := make([]*conn, 0, len(g.conns))
	for _, c := range g.conns {
		all = append(all, c)
	}
	g.mu.Unlock()
	for _, c := range all {
		var err error
		if c.isGst {
			err = g.svc.GuestConnect(ctx, c.guest)
		} else {
			c.mu.Lock()
			expired := c.expired
			c.mu.Unlock()
			if expired {
				continue
			}
			var lost []string
			lost, err = g.svc.Restore(ctx, c.actor, c.joined())
			for _, id := range lost {
				c.leaveMeeting(id)
			}
		}
		if err != nil {
			g.log.Warn().Err(err).Str("event", "restore").Msg("restore socket")
			continue
		}
		restored++
	}
	return restored
}
