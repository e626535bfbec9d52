package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/state"
)

// guests implements state.Guests. A session is one JSON string stored in its
// meeting's slot, {<meeting>}:session:<id>, next to the meeting's admission
// queue {<meeting>}:queue (a sorted set of session ids by queue time), so
// that Request, Decide, SettleLeft and Leave change both in one script.
// GetSession, which names no meeting, finds it through {s:<id>}:meeting.
type guests Store

var _ state.Guests = (*guests)(nil)

func (s *guests) st() *Store { return (*Store)(s) }

// CreateSession implements state.Guests.
func (s *guests) CreateSession(ctx context.Context, sess *state.Session, now time.Time) error {
	b, err := encodeSession(sess)
	if err != nil {
		return fmt.Errorf("redis create session: %w", err)
	}
	ttl := ttlUntil(sess.ExpiresAt.Time, now)
	key, lookup := s.keys.session(sess.MeetingID, sess.ID), s.keys.sessionMeeting(sess.ID)
	var claim *goredis.BoolCmd
	v, err := s.st().runWith(ctx, s.sc.createSession, []string{key}, []any{b, ttl.Milliseconds()},
		func(p goredis.Pipeliner) { claim = p.SetNX(ctx, lookup, sess.MeetingID, ttl) })
	if _, err := s.st().decode("create session", sessionDoc, v, err); err != nil {
		return err
	}
	// The id is unique across meetings through its lookup key, which lives
	// in another slot than the session. When the lookup was taken (by a
	// session of another meeting), the session just written is taken back.
	if taken, err := claim.Result(); err == nil && !taken {
		if owner, err := s.c.Get(ctx, lookup).Result(); err == nil && owner != sess.MeetingID {
			if err := s.c.Del(ctx, key).Err(); err != nil {
				return s.st().fail("create session", err)
			}
			return fmt.Errorf("redis create session %s: id taken by another meeting: %w", sess.ID, state.ErrConflict)
		}
	}
	return nil
}

// GetSession implements state.Guests: two reads, the meeting of the session
// then the session.
func (s *guests) GetSession(ctx context.Context, id string) (*state.Session, error) {
	mid, err := s.c.Get(ctx, s.keys.sessionMeeting(id)).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("redis get session %s: %w", id, state.ErrNotFound)
	}
	if err != nil {
		return nil, s.st().fail("get session", err)
	}
	b, err := s.c.Get(ctx, s.keys.session(mid, id)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("redis get session %s: %w", id, state.ErrNotFound)
	}
	if err != nil {
		return nil, s.st().fail("get session", err)
	}
	return decodeSession(b)
}

// Session implements state.Guests: one read, since the meeting is named.
func (s *guests) Session(ctx context.Context, meetingID, id string) (*state.Session, error) {
	b, err := s.c.Get(ctx, s.keys.session(meetingID, id)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("redis get session %s of %s: %w", id, meetingID, state.ErrNotFound)
	}
	if err != nil {
		return nil, s.st().fail("get session", err)
	}
	return decodeSession(b)
}

// sessionKeys are the keys of the session scripts: the session and its
// meeting's queue.
func (s *guests) sessionKeys(meetingID, id string) []string {
	return []string{s.keys.session(meetingID, id), s.keys.queue(meetingID)}
}

// Request implements state.Guests.
func (s *guests) Request(ctx context.Context, meetingID, id string, name *string, now time.Time) (*state.Session, error) {
	replace, n := "0", ""
	if name != nil {
		replace, n = "1", *name
	}
	v, err := s.st().run(ctx, s.sc.requestAdmission, s.sessionKeys(meetingID, id),
		stamp(now), millis(now), id, replace, n, b64IfInvalid(n))
	r, err := s.st().decode("request admission", sessionDoc, v, err)
	if err != nil {
		return nil, err
	}
	return r.Session, nil
}

// Decide implements state.Guests.
func (s *guests) Decide(ctx context.Context, meetingID, id, actor string, admit bool, cooldown time.Duration, now time.Time) (*state.Session, error) {
	flag := "0"
	if admit {
		flag = "1"
	}
	v, err := s.st().run(ctx, s.sc.decideAdmission, s.sessionKeys(meetingID, id),
		stamp(now), id, actor, flag, stamp(now.Add(cooldown)))
	r, err := s.st().decode("decide admission", sessionDoc, v, err)
	if err != nil {
		return nil, err
	}
	return r.Session, nil
}

// Connect implements state.Guests.
func (s *guests) Connect(ctx context.Context, meetingID, id, connID string, now time.Time) (*state.Session, error) {
	v, err := s.st().run(ctx, s.sc.connectGuest, []string{s.keys.session(meetingID, id)}, stamp(now), connID)
	r, err := s.st().decode("connect guest", sessionDoc, v, err)
	if err != nil {
		return nil, err
	}
	return r.Session, nil
}

// Disconnect implements state.Guests.
func (s *guests) Disconnect(ctx context.Context, meetingID, id, connID string, now time.Time) (*state.Session, bool, error) {
	v, err := s.st().run(ctx, s.sc.disconnectGuest, []string{s.keys.session(meetingID, id)}, stamp(now), connID)
	r, err := s.st().decode("disconnect guest", sessionDoc, v, err)
	if err != nil {
		return nil, false, err
	}
	return r.Session, r.Last, nil
}

// SettleLeft implements state.Guests.
func (s *guests) SettleLeft(ctx context.Context, meetingID, id string, now time.Time) (*state.Session, bool, error) {
	v, err := s.st().run(ctx, s.sc.settleGuestLeft, s.sessionKeys(meetingID, id), stamp(now), id)
	r, err := s.st().decode("settle guest", sessionDoc, v, err)
	if err != nil {
		return nil, false, err
	}
	return r.Session, r.Changed, nil
}

// Leave implements state.Guests.
func (s *guests) Leave(ctx context.Context, meetingID, id string, now time.Time) (*state.Session, bool, error) {
	v, err := s.st().run(ctx, s.sc.leaveGuest, s.sessionKeys(meetingID, id), stamp(now), id)
	r, err := s.st().decode("guest leave", sessionDoc, v, err)
	if err != nil {
		return nil, false, err
	}
	return r.Session, r.Changed, nil
}

// Queue implements state.Guests: the queue's ids, then the sessions in one
// pipeline. Entries whose session expired or is no longer waiting are
// dropped from the queue.
func (s *guests) Queue(ctx context.Context, meetingID string) ([]*state.Session, error) {
	q := s.keys.queue(meetingID)
	ids, err := s.c.ZRange(ctx, q, 0, -1).Result()
	if err != nil {
		return nil, s.st().fail("queue", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	gets := make([]*goredis.StringCmd, len(ids))
	_, err = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range ids {
			gets[i] = p.Get(ctx, s.keys.session(meetingID, id))
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, s.st().fail("queue", err)
	}
	var (
		out   []*state.Session
		stale []any
	)
	for i, g := range gets {
		b, err := g.Bytes()
		if errors.Is(err, goredis.Nil) {
			stale = append(stale, ids[i])
			continue
		}
		if err != nil {
			return nil, s.st().fail("queue", err)
		}
		sess, err := decodeSession(b)
		if err != nil {
			return nil, err
		}
		if sess.Status != state.SessionWaiting {
			stale = append(stale, ids[i])
			continue
		}
		out = append(out, sess)
	}
	if len(stale) > 0 {
		_ = s.c.ZRem(ctx, q, stale...).Err() // repair; the next read retries
	}
	return out, nil
}
