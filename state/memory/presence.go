package memory

import (
	"context"
	"time"

	"github.com/switchboard/switchboard/state"
)

// userPresence is what presence keeps per user.
type userPresence struct {
	// status is the status last reported in a Transition.
	status string
	// pending: the last connection went away (Disconnect) and SettleOffline
	// has not run yet. The user keeps status meanwhile (the grace);
	// pendingUntil (store clock) bounds how long if the settle never comes.
	pending      bool
	pendingUntil time.Time
	conns        map[string]struct{}
	// lastSeen is recorded by SettleOffline and kept until lastSeenUntil
	// (store clock).
	lastSeen      *state.Time
	lastSeenUntil time.Time
}

// connEntry is one member connection.
type connEntry struct {
	c        state.Conn
	expires  time.Time // now+ttl of the last Connect or Heartbeat
	gcAt     time.Time // store clock: freed by sweep after expiry + hold
	meetings map[string]struct{}
}

// presence implements state.Presence on the Store.
type presence Store

func (x *presence) store() *Store { return (*Store)(x) }

// user returns the presence of id, created offline when absent.
func (s *Store) user(id string) *userPresence {
	u := s.users[id]
	if u == nil {
		u = &userPresence{status: state.Offline, conns: map[string]struct{}{}}
		s.users[id] = u
	}
	return u
}

// derive returns the status u's live connections give at now: busy when one
// is in a meeting, online otherwise; ok is false when none is live.
func (s *Store) derive(u *userPresence, now time.Time) (status string, ok bool) {
	for id := range u.conns {
		c := s.conns[id]
		if c == nil || !now.Before(c.expires) {
			continue
		}
		if len(c.meetings) > 0 {
			return state.Busy, true
		}
		status, ok = state.Online, true
	}
	return status, ok
}

// liveConns counts u's connections live at now.
func (s *Store) liveConns(u *userPresence, now time.Time) int {
	n := 0
	for id := range u.conns {
		if c := s.conns[id]; c != nil && now.Before(c.expires) {
			n++
		}
	}
	return n
}

// report moves u to the status derived at now (or keeps its status when no
// connection is live) and returns the transition.
func (s *Store) report(user string, u *userPresence, now time.Time) state.Transition {
	from := u.status
	to, ok := s.derive(u, now)
	if !ok {
		to = from
	}
	u.status = to
	return state.Transition{UserID: user, From: from, To: to, At: state.At(now)}
}

// register records c as live until now+ttl, keeping the meetings of a
// connection already known, and reports the transition. Callers hold mu.
func (s *Store) register(c state.Conn, ttl time.Duration, now time.Time) state.ConnResult {
	e := s.conns[c.ID]
	if e != nil && e.c.UserID != c.UserID {
		s.dropConn(c.ID) // a reused id: forget the other user's entry
		e = nil
	}
	if e == nil {
		e = &connEntry{} // meetings made at the first join: most sit idle
		s.conns[c.ID] = e
	} else if e.c.NodeID != c.NodeID {
		remove(s.byNode, e.c.NodeID, c.ID)
	}
	e.c = c
	e.expires = now.Add(ttl)
	e.gcAt = s.clock().Add(ttl + hold)
	add(s.byNode, c.NodeID, c.ID)
	u := s.user(c.UserID)
	u.conns[c.ID] = struct{}{}
	u.pending = false
	return state.ConnResult{Transition: s.report(c.UserID, u, now)}
}

// dropConn forgets connection id and its index entries. Callers hold mu.
func (s *Store) dropConn(id string) {
	e := s.conns[id]
	if e == nil {
		return
	}
	delete(s.conns, id)
	remove(s.byNode, e.c.NodeID, id)
	if u := s.users[e.c.UserID]; u != nil {
		delete(u.conns, id)
	}
}

// tidyUser frees or settles a user record as of t (store clock): a pending
// offline whose settle never came ends after hold; a user with no
// connection left is offline; an offline user without last_seen is
// forgotten. Callers hold mu.
func (s *Store) tidyUser(id string, u *userPresence, t time.Time) {
	if len(u.conns) > 0 {
		return
	}
	if u.pending && t.Before(u.pendingUntil) {
		return
	}
	u.pending, u.status = false, state.Offline
	if u.lastSeen != nil && !t.Before(u.lastSeenUntil) {
		u.lastSeen = nil
	}
	if u.lastSeen == nil {
		delete(s.users, id)
	}
}

// Connect implements state.Presence. A connection id already registered is
// refreshed and does not count against maxConns.
func (x *presence) Connect(ctx context.Context, c state.Conn, ttl time.Duration, maxConns int, now time.Time) (state.ConnResult, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return state.ConnResult{}, err
	}
	defer s.unlock()
	if e := s.conns[c.ID]; (e == nil || e.c.UserID != c.UserID) && maxConns > 0 {
		if u := s.users[c.UserID]; u != nil && s.liveConns(u, now) >= maxConns {
			return state.ConnResult{}, errorf(state.ErrRateLimited, "user %s has %d live connections", c.UserID, maxConns)
		}
	}
	return s.register(c, ttl, now), nil
}

// Heartbeat implements state.Presence.
func (x *presence) Heartbeat(ctx context.Context, c state.Conn, ttl time.Duration, now time.Time) (state.ConnResult, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return state.ConnResult{}, err
	}
	defer s.unlock()
	return s.register(c, ttl, now), nil
}

// Disconnect implements state.Presence. When no live connection is left the
// user keeps the stored status (no transition) until SettleOffline.
func (x *presence) Disconnect(ctx context.Context, user, connID string, now time.Time) (state.ConnResult, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return state.ConnResult{}, err
	}
	defer s.unlock()
	e := s.conns[connID]
	if e == nil || e.c.UserID != user {
		return state.ConnResult{}, nil
	}
	s.dropConn(connID)
	u := s.user(user)
	r := state.ConnResult{Meetings: sortedKeys(e.meetings), Transition: s.report(user, u, now)}
	if _, ok := s.derive(u, now); !ok {
		r.LastConn = true
		if u.status != state.Offline {
			u.pending, u.pendingUntil = true, s.clock().Add(hold)
		}
	}
	return r, nil
}

// SettleOffline implements state.Presence.
func (x *presence) SettleOffline(ctx context.Context, user string, lastSeenTTL time.Duration, now time.Time) (state.Transition, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return state.Transition{}, err
	}
	defer s.unlock()
	u := s.users[user]
	if u == nil {
		return state.Transition{UserID: user, From: state.Offline, To: state.Offline, At: state.At(now)}, nil
	}
	if _, ok := s.derive(u, now); ok || u.status == state.Offline {
		u.pending = false
		return s.report(user, u, now), nil
	}
	tr := state.Transition{UserID: user, From: u.status, To: state.Offline, At: state.At(now)}
	u.status, u.pending = state.Offline, false
	u.lastSeen, u.lastSeenUntil = state.TimePtr(now), s.until(now.Add(lastSeenTTL), now)
	return tr, nil
}

// SetJoined implements state.Presence.
func (x *presence) SetJoined(ctx context.Context, user, connID, meetingID string, joined bool, now time.Time) (state.Transition, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return state.Transition{}, err
	}
	defer s.unlock()
	return s.setJoined(user, connID, meetingID, joined, now), nil
}

// setJoined is SetJoined with s locked; Join, Accept and Leave call it too.
func (s *Store) setJoined(user, connID, meetingID string, joined bool, now time.Time) state.Transition {
	e := s.conns[connID]
	if e == nil || e.c.UserID != user {
		st := state.Offline
		if u := s.users[user]; u != nil {
			st = u.status
		}
		return state.Transition{UserID: user, From: st, To: st, At: state.At(now)}
	}
	if joined {
		if e.meetings == nil {
			e.meetings = map[string]struct{}{}
		}
		e.meetings[meetingID] = struct{}{}
	} else {
		delete(e.meetings, meetingID)
	}
	return s.report(user, s.user(user), now)
}

// markJoined is setJoined for a meeting transition's result: nil for an
// empty conn.
func (s *Store) markJoined(user, connID, meetingID string, joined bool, now time.Time) *state.Transition {
	if connID == "" {
		return nil
	}
	t := s.setJoined(user, connID, meetingID, joined, now)
	return &t
}

// Query implements state.Presence. A user in the presence grace (last
// connection gone, SettleOffline not run) is reported with the status last
// broadcast; last_seen is reported for offline users only.
func (x *presence) Query(ctx context.Context, users []string, now time.Time) ([]state.UserPresence, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.unlock()
	out := make([]state.UserPresence, len(users))
	for i, id := range users {
		out[i] = s.presenceOf(id, now)
	}
	return out, nil
}

// presenceOf is what Query reports for user id at now. Locked.
func (s *Store) presenceOf(id string, now time.Time) state.UserPresence {
	up := state.UserPresence{UserID: id, Status: state.Offline}
	u := s.users[id]
	if u == nil {
		return up
	}
	if st, ok := s.derive(u, now); ok {
		up.Status = st
	} else if u.pending && u.status != state.Offline {
		up.Status = u.status
	} else if u.lastSeen != nil && s.live(u.lastSeenUntil) {
		up.LastSeen = cloneTime(u.lastSeen)
	}
	return up
}

// NodeConns implements state.Presence, in connection id order.
func (x *presence) NodeConns(ctx context.Context, node string) ([]state.Conn, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.unlock()
	ids := sortedKeys(s.byNode[node])
	out := make([]state.Conn, 0, len(ids))
	for _, id := range ids {
		if e := s.conns[id]; e != nil {
			out = append(out, e.c)
		}
	}
	return out, nil
}
