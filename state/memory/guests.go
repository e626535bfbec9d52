package memory

import (
	"bytes"
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/switchboard/switchboard/state"
)

// sessionEntry is a stored guest session.
type sessionEntry struct {
	s       *state.Session
	expires time.Time // store clock
	seq     uint64    // order of the last Request, among equal QueuedAt
}

// guests implements state.Guests on the Store.
type guests Store

func (x *guests) store() *Store { return (*Store)(x) }

// cloneSession returns a deep copy of s.
func cloneSession(s *state.Session) *state.Session {
	c := *s
	c.Keys = bytes.Clone(s.Keys)
	c.Conns = slices.Clone(s.Conns)
	c.DecidedAt, c.RetryAfter, c.QueuedAt = cloneTime(s.DecidedAt), cloneTime(s.RetryAfter), cloneTime(s.QueuedAt)
	return &c
}

// storedSession returns session id, or nil when absent or expired on the
// store's clock. Callers hold mu.
func (s *Store) storedSession(id string) *sessionEntry {
	e := s.sessions[id]
	if e == nil {
		return nil
	}
	if !s.live(e.expires) {
		s.dropSession(id)
		return nil
	}
	return e
}

// session returns session id of meeting, live at now, or ErrNotFound.
// Callers hold mu.
func (s *Store) session(meetingID, id string, now time.Time) (*sessionEntry, error) {
	e := s.storedSession(id)
	if e == nil || e.s.MeetingID != meetingID || !now.Before(e.s.ExpiresAt.Time) {
		return nil, errorf(state.ErrNotFound, "session %s of meeting %s", id, meetingID)
	}
	return e, nil
}

// dropSession deletes session id and its queue entry. Callers hold mu.
func (s *Store) dropSession(id string) {
	if e := s.sessions[id]; e != nil {
		delete(s.sessions, id)
		remove(s.queues, e.s.MeetingID, id)
	}
}

// dequeue takes e out of its meeting's queue.
func (s *Store) dequeue(e *sessionEntry) {
	remove(s.queues, e.s.MeetingID, e.s.ID)
	e.s.QueuedAt = nil
}

// CreateSession implements state.Guests. An existing id is ErrConflict.
func (x *guests) CreateSession(ctx context.Context, sess *state.Session, now time.Time) error {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.unlock()
	if s.storedSession(sess.ID) != nil {
		return errorf(state.ErrConflict, "session %s exists", sess.ID)
	}
	s.sessions[sess.ID] = &sessionEntry{s: cloneSession(sess), expires: s.until(sess.ExpiresAt.Time, now)}
	return nil
}

// GetSession implements state.Guests.
func (x *guests) GetSession(ctx context.Context, id string) (*state.Session, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.unlock()
	e := s.storedSession(id)
	if e == nil {
		return nil, errorf(state.ErrNotFound, "session %s", id)
	}
	return cloneSession(e.s), nil
}

// Session implements state.Guests.
func (x *guests) Session(ctx context.Context, meetingID, id string) (*state.Session, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.unlock()
	e := s.storedSession(id)
	if e == nil || e.s.MeetingID != meetingID {
		return nil, errorf(state.ErrNotFound, "session %s of meeting %s", id, meetingID)
	}
	return cloneSession(e.s), nil
}

// Request implements state.Guests. The admission cooldown holds for a
// declined guest whatever it did since (leaving does not skip it). A new
// request clears the previous decision.
func (x *guests) Request(ctx context.Context, meetingID, id string, name *string, now time.Time) (*state.Session, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.unlock()
	e, err := s.session(meetingID, id, now)
	if err != nil {
		return nil, err
	}
	g := e.s
	switch {
	case g.Status == state.SessionWaiting || g.Status == state.SessionAdmitted:
		return nil, errorf(state.ErrConflict, "session %s is %s", id, g.Status)
	case g.RetryAfter != nil && now.Before(g.RetryAfter.Time):
		return nil, errorf(state.ErrRateLimited, "session %s may ask again from %s", id, g.RetryAfter)
	}
	g.Status = state.SessionWaiting
	g.QueuedAt = state.TimePtr(now)
	g.RetryAfter, g.DecidedAt, g.AdmittedBy = nil, nil, ""
	if name != nil {
		g.DisplayName = *name
	}
	s.seq++
	e.seq = s.seq
	add(s.queues, meetingID, id)
	return cloneSession(g), nil
}

// Decide implements state.Guests.
func (x *guests) Decide(ctx context.Context, meetingID, id, actor string, admit bool, cooldown time.Duration, now time.Time) (*state.Session, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.unlock()
	e, err := s.session(meetingID, id, now)
	if err != nil {
		return nil, err
	}
	g := e.s
	if g.Status != state.SessionWaiting {
		return nil, errorf(state.ErrConflict, "session %s is %s, not waiting", id, g.Status)
	}
	if admit {
		g.Status, g.AdmittedBy = state.SessionAdmitted, actor
	} else {
		g.Status, g.RetryAfter = state.SessionDeclined, state.TimePtr(now.Add(cooldown))
	}
	g.DecidedAt = state.TimePtr(now)
	s.dequeue(e)
	return cloneSession(g), nil
}

// Connect implements state.Guests.
func (x *guests) Connect(ctx context.Context, meetingID, id, connID string, now time.Time) (*state.Session, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.unlock()
	e, err := s.session(meetingID, id, now)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(e.s.Conns, connID) {
		e.s.Conns = append(e.s.Conns, connID)
	}
	return cloneSession(e.s), nil
}

// Disconnect implements state.Guests. A connection the session does not
// hold is not its last.
func (x *guests) Disconnect(ctx context.Context, meetingID, id, connID string, now time.Time) (*state.Session, bool, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, false, err
	}
	defer s.unlock()
	e, err := s.session(meetingID, id, now)
	if err != nil {
		return nil, false, err
	}
	i := slices.Index(e.s.Conns, connID)
	if i < 0 {
		return cloneSession(e.s), false, nil
	}
	e.s.Conns = slices.Delete(e.s.Conns, i, i+1)
	if len(e.s.Conns) == 0 {
		e.s.Conns = nil
	}
	return cloneSession(e.s), len(e.s.Conns) == 0, nil
}

// SettleLeft implements state.Guests.
func (x *guests) SettleLeft(ctx context.Context, meetingID, id string, now time.Time) (*state.Session, bool, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, false, err
	}
	defer s.unlock()
	e, err := s.session(meetingID, id, now)
	if err != nil {
		return nil, false, err
	}
	g := e.s
	if len(g.Conns) > 0 || g.Status == state.SessionLeft || g.Status == state.SessionDeclined {
		return cloneSession(g), false, nil
	}
	g.Status = state.SessionLeft
	s.dequeue(e)
	return cloneSession(g), true, nil
}

// Leave implements state.Guests.
func (x *guests) Leave(ctx context.Context, meetingID, id string, now time.Time) (*state.Session, bool, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, false, err
	}
	defer s.unlock()
	e, err := s.session(meetingID, id, now)
	if err != nil {
		return nil, false, err
	}
	if e.s.Status == state.SessionLeft {
		return cloneSession(e.s), false, nil
	}
	e.s.Status = state.SessionLeft
	s.dequeue(e)
	return cloneSession(e.s), true, nil
}

// Queue implements state.Guests. Sessions queued at the same instant are in
// the order they asked.
func (x *guests) Queue(ctx context.Context, meetingID string) ([]*state.Session, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.unlock()
	var es []*sessionEntry
	for id := range s.queues[meetingID] {
		if e := s.storedSession(id); e != nil && e.s.Status == state.SessionWaiting {
			es = append(es, e)
		}
	}
	slices.SortFunc(es, func(a, b *sessionEntry) int {
		return cmp.Or(a.s.QueuedAt.Compare(b.s.QueuedAt.Time), cmp.Compare(a.seq, b.seq))
	})
	out := make([]*state.Session, len(es))
	for i, e := range es {
		out[i] = cloneSession(e.s)
	}
	return out, nil
}
