package gateway

import (
	"context"
	"encoding/json"
	"time"
)

func (g *Gateway) presenceHandlers(on func(string, handler)) {
	on("presence:heartbeat", func(ctx context.Context, c *conn, _ json.RawMessage) (map[string]any, error) {
		c.mu.Lock()
		c.lastHeartbeat = g.svc.Now()
		c.expired = false
		c.mu.Unlock()
		return nil, g.svc.Heartbeat(ctx, c.actor)
	})
}

// Sweep runs until ctx ends. Each tick it retries the cleanups of sockets
// that closed while the store was unreachable, (1) expires the presence of member
// sockets that sent no heartbeat for the presence TTL (the socket stays open;
// a later heartbeat brings the user back online), and (2) works around a
// defect of the socket.io library, where a connect/close race can leave a
// socket whose transport is closed but which never fired disconnect: such
// sockets, found so by two sweeps in a row, are disconnected so their
// cleanup runs.
func (g *Gateway) Sweep(ctx context.Context) {
	t := time.NewTicker(g.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.SweepOnce(ctx)
		}
	}
}

// SweepOnce runs one sweep (exported for tests with a fake clock).
func (g *Gateway) SweepOnce(ctx context.Context) {
	g.retryCleanups(ctx)
	now := g.svc.Now()
	g.mu.Lock()
	all := make([]*conn, 0, len(g.conns))
	for _, c := range g.conns {
		all = append(all, c)
	}
	g.mu.Unlock()
	for _, c := range all {
		if c.sock.Conn() != nil && c.sock.Conn().ReadyState() == "closed" {
			// One sighting may be a close on its way to the socket (a ping
			// timeout, whose reason the client and the logs should see).
			c.mu.Lock()
			again := c.staleEngine
			c.staleEngine = true
			c.mu.Unlock()
			if again {
				c.sock.Disconnect(false)
				g.closed(c)
			}
			continue
		}
		if c.isGst {
			continue
		}
		c.mu.Lock()
		stale := !c.expired && !c.closed && now.Sub(c.lastHeartbeat) >= g.cfg.PresenceTTL
		if stale {
			c.expired = true
		}
		c.mu.Unlock()
		if !stale {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, g.cfg.RequestTimeout)
		if err := g.svc.Disconnect(cctx, c.actor, c.joined(), g.cfg.PresenceGrace); err != nil {
			g.log.Warn().Err(err).Str("event", "presence_expire").Msg("expire presence")
		}
		cancel()
		c.mu.Lock()
		c.meetings = nil
		c.mu.Unlock()
	}
}

// Conns returns the number of sockets this node holds.
func (g *Gateway) Conns() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.conns)
}
