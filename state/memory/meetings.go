package memory

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/state"
)

// meetingEntry is a stored meeting and when it expires on the store's clock.
type meetingEntry struct {
	m       *state.Meeting
	expires time.Time
}

// meetings implements state.Meetings on the Store.
type meetings Store

func (x *meetings) store() *Store { return (*Store)(x) }

// cloneMeeting returns a deep copy of m: Clone, plus copies of the optional
// times that Clone shares.
func cloneMeeting(m *state.Meeting) *state.Meeting {
	c := m.Clone()
	c.StartedAt, c.EndedAt = cloneTime(c.StartedAt), cloneTime(c.EndedAt)
	for i := range c.Participants {
		p := &c.Participants[i]
		p.JoinedAt, p.LeftAt, p.RingDeadline = cloneTime(p.JoinedAt), cloneTime(p.LeftAt), cloneTime(p.RingDeadline)
	}
	return c
}

// activeCount is the number of users with a connection in the room.
func activeCount(m *state.Meeting) int {
	n := 0
	for _, cs := range m.Conns {
		if len(cs) > 0 {
			n++
		}
	}
	return n
}

// touch records one change of m at now.
func touch(m *state.Meeting, now time.Time) {
	m.Version++
	m.UpdatedAt = state.At(now)
	m.ActiveCount = activeCount(m)
}

// end ends m at now.
func end(m *state.Meeting, now time.Time) {
	m.Status = state.StatusEnded
	m.EndedAt = state.TimePtr(now)
}

// over reports whether a scheduled meeting has ended in all but name: its
// end time has passed and nobody is in the room (SPEC 4.2).
func over(m *state.Meeting, now time.Time) bool {
	return !m.IsInstantCall && !m.EndTime.After(now) && activeCount(m) == 0
}

// retentionEnd is when m's key expires: calls at EndTime, scheduled
// meetings retention later.
func retentionEnd(m *state.Meeting, retention time.Duration) time.Time {
	if m.IsInstantCall {
		return m.EndTime.Time
	}
	return m.EndTime.Add(retention)
}

// anyPresent reports whether a user of the call is present: joined or
// accepted with a connection in the room.
func anyPresent(m *state.Meeting) bool {
	for _, p := range m.Participants {
		if (p.Status == state.PartJoined || p.Status == state.PartAccepted) && m.Joined(p.UserID) {
			return true
		}
	}
	return false
}

// allRefused reports whether every participant but the owner declined or
// missed the call.
func allRefused(m *state.Meeting) bool {
	others := 0
	for _, p := range m.Participants {
		if p.Role == state.RoleOwner {
			continue
		}
		others++
		if p.Status != state.PartDeclined && p.Status != state.PartMissed {
			return false
		}
	}
	return others > 0
}

// enter puts conn of user in m's room and reports whether it was the user's
// first connection there and whether the room was empty. The caller sets the
// participant's status.
func enter(m *state.Meeting, p *state.Participant, conn string, now time.Time) (userJoined, first bool) {
	first = activeCount(m) == 0
	userJoined = !m.Joined(p.UserID)
	if m.Conns == nil {
		m.Conns = map[string][]string{}
	}
	if !slices.Contains(m.Conns[p.UserID], conn) {
		m.Conns[p.UserID] = append(m.Conns[p.UserID], conn)
	}
	if userJoined {
		p.JoinedAt = state.TimePtr(now)
		p.LeftAt = nil
	}
	p.RingDeadline = nil
	return userJoined, first
}

// meeting returns the stored meeting id, or nil when it is absent or
// expired. Callers hold mu.
func (s *Store) meeting(id string) *state.Meeting {
	e := s.meetings[id]
	if e == nil {
		return nil
	}
	if !s.live(e.expires) {
		s.dropMeeting(id)
		return nil
	}
	return e.m
}

// visible returns meeting id and actor's entry in it, or ErrNotFound when
// either is missing (the visibility rule). Callers hold mu.
func (s *Store) visible(id, actor string) (*state.Meeting, *state.Participant, error) {
	m := s.meeting(id)
	if m == nil {
		return nil, nil, errorf(state.ErrNotFound, "meeting %s", id)
	}
	p := m.Participant(actor)
	if p == nil {
		return nil, nil, errorf(state.ErrNotFound, "meeting %s", id)
	}
	return m, p, nil
}

// visibleCall is visible for instant calls only.
func (s *Store) visibleCall(id, actor string) (*state.Meeting, *state.Participant, error) {
	m, p, err := s.visible(id, actor)
	if err == nil && !m.IsInstantCall {
		return nil, nil, errorf(state.ErrNotFound, "call %s", id)
	}
	return m, p, err
}

// dropMeeting deletes meeting id and its index entries. Callers hold mu.
func (s *Store) dropMeeting(id string) {
	e := s.meetings[id]
	if e == nil {
		return
	}
	delete(s.meetings, id)
	for _, p := range e.m.Participants {
		remove(s.byUser, p.UserID, id)
	}
}

// Create implements state.Meetings.
func (x *meetings) Create(ctx context.Context, m *state.Meeting, retention time.Duration, now time.Time) (*state.Transition, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.unlock()
	if s.meeting(m.ID) != nil {
		return nil, errorf(state.ErrConflict, "meeting %s exists", m.ID)
	}
	c := cloneMeeting(m)
	for u, cs := range c.Conns {
		if len(cs) == 0 {
			delete(c.Conns, u)
		}
	}
	c.ActiveCount = activeCount(c)
	s.meetings[c.ID] = &meetingEntry{m: c, expires: s.until(retentionEnd(c, retention), now)}
	for _, p := range c.Participants {
		add(s.byUser, p.UserID, c.ID)
	}
	if cs := c.Conns[c.CreatedBy]; len(cs) == 1 && len(c.Conns) == 1 {
		return s.markJoined(c.CreatedBy, cs[0], c.ID, true, now), nil
	}
	return nil, nil
}

// Get implements state.Meetings.
func (x *meetings) Get(ctx context.Context, id string) (*state.Meeting, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.unlock()
	m := s.meeting(id)
	if m == nil {
		return nil, errorf(state.ErrNotFound, "meeting %s", id)
	}
	return cloneMeeting(m), nil
}

// ListForUser implements state.Meetings. Meetings starting at the same time
// are ordered by id.
func (x *meetings) ListForUser(ctx context.Context, user string, upcoming bool, now time.Time, offset, limit int) ([]*state.Meeting, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.unlock()
	var found []*state.Meeting
	for id := range s.byUser[user] {
		m := s.meeting(id)
		if m == nil || m.Participant(user) == nil {
			remove(s.byUser, user, id)
			continue
		}
		isUpcoming := !m.EndTime.Before(now) && m.Status != state.StatusEnded
		if isUpcoming == upcoming {
			found = append(found, m)
		}
	}
	slices.SortFunc(found, func(a, b *state.Meeting) int {
		c := a.StartTime.Compare(b.StartTime.Time)
		if !upcoming {
			c = -c
		}
		return cmp.Or(c, strings.Compare(a.ID, b.ID))
	})
	offset = max(offset, 0)
	if offset >= len(found) {
		return nil, nil
	}
	found = found[offset:]
	if limit > 0 && limit < len(found) {
		found = found[:limit]
	}
	out := make([]*state.Meeting, len(found))
	for i, m := range found {
		out[i] = cloneMeeting(m)
	}
	return out, nil
}

// Update implements state.Meetings.
func (x *meetings) Update(ctx context.Context, id, actor string, p state.MeetingPatch, retention time.Duration, now time.Time) (*state.Meeting, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.unlock()
	m, me, err := s.visible(id, actor)
	if err != nil {
		return nil, err
	}
	if me.Role != state.RoleOwner {
		return nil, errorf(state.ErrForbidden, "only the owner may update meeting %s", id)
	}
	if m.Status == state.StatusEnded {
		return nil, errorf(state.ErrConflict, "meeting %s has ended", id)
	}
	start, endTime := m.StartTime, m.EndTime
	if p.StartTime != nil {
		start = state.At(p.StartTime.Time)
	}
	if p.EndTime != nil {
		endTime = state.At(p.EndTime.Time)
	}
	if !endTime.After(start.Time) {
		return nil, errorf(state.ErrInvalid, "end time %s is not after start time %s", endTime, start)
	}
	m.StartTime, m.EndTime = start, endTime
	if p.Title != nil {
		m.Title = *p.Title
	}
	if p.Description != nil {
		m.Description = *p.Description
	}
	if p.AllowExternal != nil {
		m.AllowExternal = *p.AllowExternal
	}
	touch(m, now)
	s.meetings[id].expires = s.until(retentionEnd(m, retention), now)
	return cloneMeeting(m), nil
}

// Start implements state.Meetings.
func (x *meetings) Start(ctx context.Context, id, actor string, now time.Time) (*state.Meeting, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.unlock()
	m, me, err := s.visible(id, actor)
	if err != nil {
		return nil, err
	}
	switch {
	case me.Role != state.RoleOwner:
		return nil, errorf(state.ErrForbidden, "only the owner may start meeting %s", id)
	case m.Status == state.StatusEnded || over(m, now):
		return nil, errorf(state.ErrGone, "meeting %s has ended", id)
	case m.Status != state.StatusScheduled:
		return nil, errorf(state.ErrConflict, "meeting %s is already live", id)
	}
	m.Status = state.StatusLive
	m.StartedAt = state.TimePtr(now)
	touch(m, now)
	return cloneMeeting(m), nil
}

// Join implements state.Meetings. A meeting whose end time has passed with
// nobody in the room has ended (ErrGone) even before EndIfOver records it.
func (x *meetings) Join(ctx context.Context, id, actor, conn string, now time.Time) (*state.JoinResult, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.unlock()
	m, me, err := s.visible(id, actor)
	if err != nil {
		return nil, err
	}
	switch {
	case m.Status == state.StatusEnded || over(m, now):
		return nil, errorf(state.ErrGone, "meeting %s has ended", id)
	case me.Status == state.PartDeclined:
		return nil, errorf(state.ErrForbidden, "%s declined meeting %s", actor, id)
	case slices.Contains(m.Conns[actor], conn):
		return &state.JoinResult{Meeting: cloneMeeting(m), Already: true, Presence: s.markJoined(actor, conn, id, true, now)}, nil
	}
	r := &state.JoinResult{}
	r.UserJoined, r.FirstJoined = enter(m, me, conn, now)
	me.Status = state.PartJoined
	if m.Status == state.StatusScheduled {
		m.Status = state.StatusLive
		m.StartedAt = state.TimePtr(now)
		r.Started = true
	}
	touch(m, now)
	r.Meeting = cloneMeeting(m)
	r.Presence = s.markJoined(actor, conn, id, true, now)
	return r, nil
}

// Leave implements state.Meetings.
func (x *meetings) Leave(ctx context.Context, id, actor, conn string, now time.Time) (*state.LeaveResult, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.unlock()
	m, me, err := s.visible(id, actor)
	if err != nil {
		return nil, err
	}
	conns := m.Conns[actor]
	i := slices.Index(conns, conn)
	if i < 0 {
		return nil, errorf(state.ErrConflict, "connection %s is not in meeting %s", conn, id)
	}
	r := &state.LeaveResult{}
	if conns = slices.Delete(conns, i, i+1); len(conns) > 0 {
		m.Conns[actor] = conns
	} else {
		delete(m.Conns, actor)
		me.Status = state.PartLeft
		me.LeftAt = state.TimePtr(now)
		r.UserLeft = true
	}
	switch {
	case m.IsInstantCall && !anyPresent(m):
		end(m, now)
		r.Ended, r.Deleted, r.Reason = true, true, state.ReasonCancelled
		if m.Answered {
			r.Reason = state.ReasonCompleted
		}
	case !m.IsInstantCall && m.Status != state.StatusEnded && over(m, now):
		end(m, now)
		r.Ended = true
	}
	touch(m, now)
	if r.Deleted {
		s.dropMeeting(id)
	}
	r.Meeting = cloneMeeting(m)
	r.Presence = s.markJoined(actor, conn, id, false, now)
	return r, nil
}

// InviteLive implements state.Meetings. Users are reported in the order
// given, each once; empty ids are ignored. An invitation that changes nobody
// is not a change (Version stays).
func (x *meetings) InviteLive(ctx context.Context, id, actor string, users []string, maxParticipants int, now time.Time) (*state.Meeting, []string, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, nil, err
	}
	defer s.unlock()
	m, _, err := s.visible(id, actor)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case m.Status == state.StatusEnded:
		return nil, nil, errorf(state.ErrGone, "meeting %s has ended", id)
	case m.Status != state.StatusLive:
		return nil, nil, errorf(state.ErrConflict, "meeting %s is not live", id)
	case !m.Joined(actor):
		return nil, nil, errorf(state.ErrForbidden, "%s has not joined meeting %s", actor, id)
	}
	var invited []string
	added := 0
	seen := map[string]bool{}
	for _, u := range users {
		if u == "" || seen[u] {
			continue
		}
		seen[u] = true
		switch p := m.Participant(u); {
		case p == nil:
			added++
			invited = append(invited, u)
		case p.Status == state.PartDeclined || p.Status == state.PartLeft || p.Status == state.PartMissed:
			invited = append(invited, u)
		}
	}
	if maxParticipants > 0 && len(m.Participants)+added > maxParticipants {
		return nil, nil, errorf(state.ErrTooLarge, "meeting %s would have %d participants, more than %d", id, len(m.Participants)+added, maxParticipants)
	}
	if len(invited) == 0 {
		return cloneMeeting(m), nil, nil
	}
	for _, u := range invited {
		if p := m.Participant(u); p != nil {
			p.Status, p.RingDeadline = state.PartInvited, nil
			continue
		}
		m.Participants = append(m.Participants, state.Participant{UserID: u, Role: state.RoleMember, Status: state.PartInvited})
		add(s.byUser, u, id)
	}
	touch(m, now)
	return cloneMeeting(m), invited, nil
}

// Ring implements state.Meetings. A Ring that rings nobody is not a change.
// The timeout job is scheduled under the same lock, before the ring is
// checked, so it is scheduled whatever the ring's outcome, as the contract
// (and the Redis store's pipeline) has it; it cannot fail here.
func (x *meetings) Ring(ctx context.Context, id, actor string, recipients []string, ringDeadline time.Time, timeout state.Job, now time.Time) (*state.RingResult, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.unlock()
	if timeout.ID != "" {
		s.schedule(timeout)
	}
	m, _, err := s.visibleCall(id, actor)
	if err != nil {
		return nil, err
	}
	var bad []string
	for _, u := range recipients {
		if (u == actor || m.Participant(u) == nil) && !slices.Contains(bad, u) {
			bad = append(bad, u)
		}
	}
	if len(bad) > 0 {
		return nil, errorf(state.ErrInvalid, "not participants %s may ring in call %s: %s", actor, id, strings.Join(bad, ", "))
	}
	var ringing []string
	for _, u := range recipients {
		p := m.Participant(u)
		if slices.Contains(ringing, u) || s.presenceOf(u, now).Status == state.Offline {
			continue
		}
		if p.Status == state.PartInvited || p.Status == state.PartRinging || p.Status == state.PartMissed {
			p.Status, p.RingDeadline = state.PartRinging, state.TimePtr(ringDeadline)
			ringing = append(ringing, u)
		}
	}
	if len(ringing) > 0 {
		touch(m, now)
	}
	return &state.RingResult{Meeting: cloneMeeting(m), Ringing: ringing}, nil
}

// Accept implements state.Meetings.
func (x *meetings) Accept(ctx context.Context, id, actor, conn string, now time.Time) (*state.JoinResult, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.unlock()
	m, me, err := s.visibleCall(id, actor)
	if err != nil {
		return nil, err
	}
	if me.Status != state.PartRinging && me.Status != state.PartInvited {
		return nil, errorf(state.ErrConflict, "%s cannot accept call %s: %s", actor, id, me.Status)
	}
	r := &state.JoinResult{}
	r.UserJoined, r.FirstJoined = enter(m, me, conn, now)
	me.Status = state.PartAccepted
	m.Answered = true
	touch(m, now)
	r.Meeting = cloneMeeting(m)
	r.Presence = s.markJoined(actor, conn, id, true, now)
	return r, nil
}

// Decline implements state.Meetings. Like Ring and Accept, it does not see
// scheduled meetings (ErrNotFound).
func (x *meetings) Decline(ctx context.Context, id, actor string, now time.Time) (*state.CallResult, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.unlock()
	m, me, err := s.visibleCall(id, actor)
	if err != nil {
		return nil, err
	}
	if me.Status != state.PartRinging && me.Status != state.PartInvited {
		return nil, errorf(state.ErrConflict, "%s cannot decline call %s: %s", actor, id, me.Status)
	}
	me.Status, me.RingDeadline = state.PartDeclined, nil
	r := &state.CallResult{}
	if allRefused(m) {
		end(m, now)
		r.Ended, r.Deleted, r.Reason = true, true, state.ReasonDeclined
	}
	touch(m, now)
	if r.Deleted {
		s.dropMeeting(id)
	}
	r.Meeting = cloneMeeting(m)
	return r, nil
}

// ExpireRings implements state.Meetings. A scheduled meeting is not a call
// (ErrNotFound); a call with nothing due is not changed.
func (x *meetings) ExpireRings(ctx context.Context, id string, now time.Time) (*state.CallResult, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.unlock()
	m := s.meeting(id)
	if m == nil || !m.IsInstantCall {
		return nil, errorf(state.ErrNotFound, "call %s", id)
	}
	r := &state.CallResult{}
	for i := range m.Participants {
		p := &m.Participants[i]
		if p.Status == state.PartRinging && p.RingDeadline != nil && !p.RingDeadline.After(now) {
			p.Status, p.RingDeadline = state.PartMissed, nil
			r.Missed = append(r.Missed, p.UserID)
		}
	}
	if len(r.Missed) == 0 {
		r.Meeting = cloneMeeting(m)
		return r, nil
	}
	if allRefused(m) {
		end(m, now)
		r.Ended, r.Deleted, r.Reason = true, true, state.ReasonTimeout
	}
	touch(m, now)
	if r.Deleted {
		s.dropMeeting(id)
	}
	r.Meeting = cloneMeeting(m)
	return r, nil
}

// MarkReminded implements state.Meetings. The record is internal
// bookkeeping: it does not change Version or UpdatedAt. A meeting that does
// not exist reports false with no error.
func (x *meetings) MarkReminded(ctx context.Context, id string, minutesBefore int) (*state.Meeting, bool, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, false, err
	}
	defer s.unlock()
	m := s.meeting(id)
	if m == nil {
		return nil, false, nil
	}
	key := strconv.Itoa(minutesBefore)
	if m.Status == state.StatusEnded || m.Reminded[key] {
		return cloneMeeting(m), false, nil
	}
	if m.Reminded == nil {
		m.Reminded = map[string]bool{}
	}
	m.Reminded[key] = true
	return cloneMeeting(m), true, nil
}

// EndIfOver implements state.Meetings. Calls never end this way.
func (x *meetings) EndIfOver(ctx context.Context, id string, now time.Time) (*state.Meeting, bool, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, false, err
	}
	defer s.unlock()
	m := s.meeting(id)
	if m == nil {
		return nil, false, errorf(state.ErrNotFound, "meeting %s", id)
	}
	if m.Status == state.StatusEnded || !over(m, now) {
		return cloneMeeting(m), false, nil
	}
	end(m, now)
	touch(m, now)
	return cloneMeeting(m), true, nil
}

// Delete implements state.Meetings.
func (x *meetings) Delete(ctx context.Context, id, actor string) (*state.Meeting, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.unlock()
	m, me, err := s.visible(id, actor)
	if err != nil {
		return nil, err
	}
	if me.Role != state.RoleOwner {
		return nil, errorf(state.ErrForbidden, "only the owner may delete meeting %s", id)
	}
	s.dropMeeting(id)
	return cloneMeeting(m), nil
}
