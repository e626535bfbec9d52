package gateway

import (
	"context"
	"encoding/json"

	"github.com/switchboard/switchboard/service"
)

// memberGuestHandlers are the members' side of the guest flow: admission
// decisions and the encrypted relay.
func (g *Gateway) memberGuestHandlers(on func(string, handler)) {
	decide := func(admit bool) handler {
		return func(ctx context.Context, c *conn, raw json.RawMessage) (map[string]any, error) {
			var r service.DecisionRequest
			if err := decode(raw, &r); err != nil {
				return nil, err
			}
			return nil, g.svc.Decide(ctx, c.actor, r, admit)
		}
	}
	on("meeting:admit_guest", decide(true))
	on("meeting:decline_guest", decide(false))
	on("meeting:signal", func(ctx context.Context, c *conn, raw json.RawMessage) (map[string]any, error) {
		var r service.SignalRequest
		if err := decode(raw, &r); err != nil {
			return nil, err
		}
		return nil, g.svc.MemberSignal(ctx, c.actor, r)
	})
}

// guestHandlers are the events of /external sockets.
func (g *Gateway) guestHandlers(on func(string, handler)) {
	on("meeting:guest_join", func(ctx context.Context, c *conn, raw json.RawMessage) (map[string]any, error) {
		var r service.GuestJoinRequest
		if err := decode(raw, &r); err != nil {
			return nil, err
		}
		return nil, g.svc.GuestJoin(ctx, c.guest, r)
	})
	on("meeting:leave", func(ctx context.Context, c *conn, raw json.RawMessage) (map[string]any, error) {
		var r service.MeetingRef
		if err := decode(raw, &r); err != nil {
			return nil, err
		}
		return nil, g.svc.GuestLeave(ctx, c.guest, r)
	})
	on("meeting:signal", func(ctx context.Context, c *conn, raw json.RawMessage) (map[string]any, error) {
		var r service.SignalRequest
		if err := decode(raw, &r); err != nil {
			return nil, err
		}
		return nil, g.svc.GuestSignal(ctx, c.guest, r)
	})
}
