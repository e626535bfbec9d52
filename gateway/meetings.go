package gateway

import (
	"context"
	"encoding/json"

	"github.com/switchboard/switchboard/service"
)

func (g *Gateway) meetingHandlers(c *conn) {
	g.on(c, "meeting:create", func(ctx context.Context, c *conn, raw json.RawMessage) (map[string]any, error) {
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
	g.on(c, "meeting:update", func(ctx context.Context, c *conn, raw json.RawMessage) (map[string]any, error) {
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
	g.on(c, "meeting:start", func(ctx context.Context, c *conn, raw json.RawMessage) (map[string]any, error) {
		var r service.MeetingRef
		if err := decode(raw, &r); err != nil {
			return nil, err
		}
		return nil, g.svc.StartMeeting(ctx, c.actor, r)
	})
	g.on(c, "meeting:register-participant", func(ctx context.Context, c *conn, raw json.RawMessage) (map[string]any, error) {
		var r service.MeetingRef
		if err := decode(raw, &r); err != nil {
			return nil, err
		}
		res, err := g.svc.RegisterParticipant(ctx, c.actor, r)
		if err != nil {
			return nil, err
		}
		c.joinMeeting(r.MeetingID)
		return map[string]any{"meeting": res.Meeting.Public()}, nil
	})
	g.on(c, "meeting:leave", func(ctx context.Context, c *conn, raw json.RawMessage) (map[string]any, error) {
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
	g.on(c, "meeting:invite-live", func(ctx context.Context, c *conn, raw json.RawMessage) (map[string]any, error) {
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
	g.on(c, "meeting:generate_link", func(ctx context.Context, c *conn, raw json.RawMessage) (map[string]any, error) {
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

// memberEvents are the events a member socket may emit.
var memberEvents = map[string]bool{
	"meeting:create": true, "meeting:update": true, "meeting:start": true,
	"meeting:register-participant": true, "meeting:leave": true, "meeting:invite-live": true,
	"meeting:generate_link": true, "call:create": true, "call:notify": true, "call:accept": true,
	"call:decline": true, "meeting:admit_guest": true, "meeting:decline_guest": true,
	"presence:heartbeat": true, "meeting:signal": true,
}

// guestEvents are the events a guest socket may emit (SPEC 1.2).
var guestEvents = map[string]bool{"meeting:guest_join": true, "meeting:leave": true, "meeting:signal": true}
