package service

import (
	"context"
	"errors"
	"time"

	"github.com/switchboard/switchboard/state"
)

// PresenceQuery is the body of POST /api/presence/query.
type PresenceQuery struct {
	UserIDs []string `json:"user_ids"`
}

// announce broadcasts a presence transition to all members: user_connected
// with the new status for online and busy, user_disconnected for offline.
func (s *Service) announce(tr state.Transition) {
	if !tr.Changed() {
		return
	}
	var d Delivery
	d.Namespace = MembersNamespace
	if tr.To == state.Offline {
		d.Event, d.Data = "presence:user_disconnected", map[string]any{"user_id": tr.UserID, "last_seen": tr.At.String()}
	} else {
		d.Event, d.Data = "presence:user_connected", map[string]any{"user_id": tr.UserID, "status": tr.To, "timestamp": tr.At.String()}
	}
	s.emit.Emit(d)
}

// Connect registers a member socket. It refuses with rate_limited when the
// user already holds the maximum number of connections.
func (s *Service) Connect(ctx context.Context, a Actor) error {
	res, err := s.store.Presence().Connect(ctx, a.Conn(s.cfg.NodeID), s.cfg.PresenceTTL, s.cfg.MaxConnsPerUser, s.now())
	if err != nil {
		if errors.Is(err, state.ErrRateLimited) {
			return Errorf(CodeRateLimited, "too many connections for this user (at most %d)", s.cfg.MaxConnsPerUser)
		}
		return wrap(err, "presence")
	}
	s.announce(res.Transition)
	return nil
}

// Heartbeat handles presence:heartbeat: it keeps the socket's device alive
// and announces only an offline → online change.
func (s *Service) Heartbeat(ctx context.Context, a Actor) error {
	res, err := s.store.Presence().Heartbeat(ctx, a.Conn(s.cfg.NodeID), s.cfg.PresenceTTL, s.now())
	if err != nil {
		return wrap(err, "presence")
	}
	s.announce(res.Transition)
	return nil
}

// Disconnect handles a member socket that went away (closed, expired, or
// held by a dead node): it leaves the meetings and calls the socket had
// joined (local lists them as the node saw them), announces busy → online,
// and when it was the user's last connection settles the offline transition
// after grace (grace 0 settles now).
func (s *Service) Disconnect(ctx context.Context, a Actor, local []string, grace time.Duration) error {
	now := s.now()
	res, err := s.store.Presence().Disconnect(ctx, a.UserID, a.ConnID, now)
	if err != nil {
		return wrap(err, "presence")
	}
	seen := map[string]bool{}
	for _, id := range append(res.Meetings, local...) {
		if seen[id] {
			continue
		}
		seen[id] = true
		lr, err := s.store.Meetings().Leave(ctx, id, a.UserID, a.ConnID, now)
		if err != nil {
			if !errors.Is(err, state.ErrNotFound) && !errors.Is(err, state.ErrConflict) {
				s.log.Warn().Err(err).Str("meeting_id", id).Str("user_id", a.UserID).Msg("leave on disconnect")
			}
			continue
		}
		s.afterLeave(ctx, a.UserID, nil, lr)
	}
	s.announce(res.Transition)
	if !res.LastConn {
		return nil
	}
	if grace <= 0 {
		return s.settleOffline(ctx, a.UserID)
	}
	job := state.Job{ID: "offline:" + a.UserID, Kind: JobSettleOffline, Subject: a.UserID, Due: state.At(now.Add(grace))}
	if err := s.store.Jobs().Schedule(ctx, job); err != nil {
		return wrap(err, "jobs")
	}
	return nil
}

func (s *Service) settleOffline(ctx context.Context, user string) error {
	tr, err := s.store.Presence().SettleOffline(ctx, user, s.cfg.LastSeenTTL, s.now())
	if err != nil {
		return err
	}
	s.announce(tr)
	return nil
}

// QueryPresence answers POST /api/presence/query.
func (s *Service) QueryPresence(ctx context.Context, q PresenceQuery) ([]state.UserPresence, error) {
	users, err := s.userList("user_ids", q.UserIDs, s.cfg.MaxPresenceQuery, "")
	if err != nil {
		return nil, err
	}
	out, err := s.store.Presence().Query(ctx, users, s.now())
	if err != nil {
		return nil, wrap(err, "presence")
	}
	return out, nil
}

// Restore registers a live socket again after its node lost its lease or
// the store lost its data: presence as a heartbeat would, and the meetings
// it had joined. It returns the meetings that no longer exist or refuse the
// socket, which the caller takes it out of.
func (s *Service) Restore(ctx context.Context, a Actor, meetings []string) (lost []string, err error) {
	if err := s.Heartbeat(ctx, a); err != nil {
		return nil, err
	}
	now := s.now()
	for _, id := range meetings {
		res, err := s.store.Meetings().Join(ctx, id, a.UserID, a.ConnID, now)
		if err != nil {
			if errors.Is(err, state.ErrUnavailable) {
				return lost, wrap(err, "meeting")
			}
			lost = append(lost, id)
			continue
		}
		s.afterJoin(ctx, a, res, now)
	}
	return lost, nil
}
