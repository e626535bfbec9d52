package gateway

import (
	"context"
	"encoding/json"

	"github.com/switchboard/switchboard/service"
)

func (g *Gateway) meetingHandlers(on func(string, handler)) {
	on("meeting:create", func(ctx context.Context, c *conn, raw json.RawMessage) (map[string]any, error) {
		var r service.CreateMeetingRequest
		if err := decode(raw, &r); err != nil {
			return nil, err
		}
		m, err := g.svc.CreateMeeting(ctx, c.actor, r)
		if err != nil {
			return nil, err
		}
		return map[string]any{"meeting": m}, nil
	})
	on("meeting:update", func(ctx context.Context, c *conn, raw json.RawMessage) (map[string]any, error) {
		var r service.UpdateMeetingRequest
		if err := decode(raw, &r); err != nil {
			return nil, err
		}
		m, err := g.svc.UpdateMeeting(ctx, c.actor, r)
		if err != nil {
			return nil, err
		}
		return map[string]any{"meeting": m}, nil
	})
	on("meeting:start", func(ctx context.Context, c *conn, raw json.RawMessage) (map[string]any, error) {
		var r service.MeetingRef
		if err := decode(raw, &r); err != nil {
			return nil, err
		}
		return nil, g.svc.StartMeeting(ctx, c.actor, r)
	})
	on("meeting:register-participant", func(ctx context.Context, c *conn, raw json.RawMessage) (map[string]any, error) {
		var r service.MeetingRef
		if err := decode(raw, &r); err != nil {
			return nil, err
		}
		res, err := g.svc.RegisterParticipant(ctx, c.actor, r)
		if err != nil {
			return nil, err
		}
		g.joinMeeting(ctx, c, r.MeetingID)
		return map[string]any{"meeting": res.Meeting.Public()}, nil
	})
	on("meeting:leave", func(ctx context.Context, c *conn, raw json.RawMessage) (map[string]any, error) {
		var r service.MeetingRef
		if err := decode(raw, &r); err != nil {
			return nil, err
		}
		if err := g.svc.Leave(ctx, c.actor, r); err != nil {
			return nil, err
		}
		c.leaveMeeting(r.MeetingID)
		return nil, nil
	})
	on("meeting:invite-live", func(ctx context.Context, c *conn, raw json.RawMessage) (map[string]any, error) {
		var r service.InviteLiveRequest
		if err := decode(raw, &r); err != nil {
			return nil, err
		}
		invited, err := g.svc.InviteLive(ctx, c.actor, r)
		if err != nil {
			return nil, err
		}
		return map[string]any{"invited": invited}, nil
	})
	on("meeting:generate_link", func(ctx context.Context, c *conn, raw json.RawMessage) (map[string]any, error) {
		var r service.MeetingRef
		if err := decode(raw, &r); err != nil {
			return nil, err
		}
		l, err := g.svc.GenerateLink(ctx, c.actor, r)
		if err != nil {
			return nil, err
		}
		return map[string]any{"token": l.Token, "expires_at": l.ExpiresAt}, nil
	})
}
