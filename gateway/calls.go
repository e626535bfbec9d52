package gateway

import (
	"context"
	"encoding/json"

	"github.com/switchboard/switchboard/service"
)

func (g *Gateway) callHandlers(on func(string, handler)) {
	on("call:create", func(ctx context.Context, c *conn, raw json.RawMessage) (map[string]any, error) {
		var r service.CreateCallRequest
		if err := decode(raw, &r); err != nil {
			return nil, err
		}
		m, err := g.svc.CreateCall(ctx, c.actor, r)
		if err != nil {
			return nil, err
		}
		g.joinMeeting(ctx, c, m.ID)
		return map[string]any{"call": m}, nil
	})
	on("call:notify", func(ctx context.Context, c *conn, raw json.RawMessage) (map[string]any, error) {
		var r service.NotifyRequest
		if err := decode(raw, &r); err != nil {
			return nil, err
		}
		n, err := g.svc.Notify(ctx, c.actor, r)
		if err != nil {
			return nil, err
		}
		return map[string]any{"notified_count": n}, nil
	})
	on("call:accept", func(ctx context.Context, c *conn, raw json.RawMessage) (map[string]any, error) {
		var r service.CallRef
		if err := decode(raw, &r); err != nil {
			return nil, err
		}
		res, err := g.svc.Accept(ctx, c.actor, r)
		if err != nil {
			return nil, err
		}
		g.joinMeeting(ctx, c, r.CallID)
		return map[string]any{"call": res.Meeting.Public()}, nil
	})
	on("call:decline", func(ctx context.Context, c *conn, raw json.RawMessage) (map[string]any, error) {
		var r service.CallRef
		if err := decode(raw, &r); err != nil {
			return nil, err
		}
		return nil, g.svc.Decline(ctx, c.actor, r)
	})
}
