package gateway

import (
	"context"
	"encoding/json"

	"github.com/switchboard/switchboard/service"
)

// memberGuestHandlers are the members' side of the guest flow: admission
// decisions and the encrypted relay.
func (g *Gateway) memberGuestHandlers(c *conn) {
	decide := func(admit bool) handler {
		return func(ctx context.Context, c *conn, raw json.RawMessage) (map[string]any, error) {
			var r service.DecisionRequest
			if err := decode(raw, &r); err != nil {
				return nil, err
			}
			return nil, g.svc.Decide(ctx, c.actor, r, admit)
		}
	}
	g.on(c, "meeting:admit_guest", decide(true))
	g.on(c, "meeting:decline_guest", decide(false))
	g.on(c, "meeting:signal", func(ctx context.Context, c *conn, raw json.RawMessage) (map[string]any, error) {
		var r service.SignalRequest
		if err := decode(raw, &r); err != nil {
			return nil, err
		}
		return nil, g.svc.MemberSignal(ctx, c.actor, r)
	})
}

// guestHandlers are the events of /external sockets.
func (g *Gateway) guestHandlers(c *conn) {
	g.on(c, "meeting:guest_join", func(ctx context.Context, c *conn, raw json.RawMessage) (map[string]any, error) {
		var r service.GuestJoinRequest
		if err := decode(raw, &r); err != nil {
			return nil, err
		}
		return nil, g.svc.GuestJoin(ctx, c.guest, r)
	})
	g.on(c, "meeting:leave", func(ctx context.Context, c *conn, raw json.RawMessage) (map[string]any, error) {
		var r service.MeetingRef
		if err := decode(raw, &r); err != nil {
			return nil, err
		}
		return nil, g.svc.GuestLeave(ctx, c.guest, r)
	})
	g.on(c, "meeting:signal", func(ctx context.Context, c *conn, raw json.RawMessage) (map[string]any, error) {
		var r service.SignalRequest
		if err := decode(raw, &r); err != nil {
			return nil, err
		}
		return nil, g.svc.GuestSignal(ctx, c.guest, r)
	})
}
