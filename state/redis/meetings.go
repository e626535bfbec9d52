package redis

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/state"
)

// meetings implements state.Meetings. A meeting is one JSON string at
// {<id>}:meeting; each participant's {u:<user>}:meetings set indexes it for
// ListForUser.
type meetings Store

var _ state.Meetings = (*meetings)(nil)

func (s *meetings) st() *Store { return (*Store)(s) }

// Create implements state.Meetings.
func (s *meetings) Create(ctx context.Context, m *state.Meeting, retention time.Duration, now time.Time) (*state.Transition, error) {
	expiry := m.EndTime.Time
	if !m.IsInstantCall {
		expiry = expiry.Add(retention)
	}
	ttl := ttlUntil(expiry, now)
	doc := m.Clone()
	for u, cs := range doc.Conns {
		if len(cs) == 0 {
			delete(doc.Conns, u) // an empty list would come back from Lua as {}
		}
	}
	doc.ActiveCount = len(doc.Conns)
	b, err := encodeMeeting(doc)
	if err != nil {
		return nil, fmt.Errorf("redis create meeting: %w", err)
	}
	users := m.Everyone()
	index := func(p goredis.Pipeliner) { s.st().indexMeeting(ctx, p, m.ID, users, ttl) }
	// A call's creator is marked busy in the same pipeline (another slot).
	mk := busyMark{user: m.CreatedBy, meeting: m.ID, joined: true}
	var also []scriptCall
	if conns := doc.Conns[m.CreatedBy]; len(conns) == 1 && len(doc.Conns) == 1 {
		mk.conn = conns[0]
		also = append(also, s.markCall(mk, now))
	}
	v, marks, err := s.st().runAlso(ctx, s.sc.createMeeting, []string{s.keys.meeting(m.ID)}, []any{b, ttl.Milliseconds()}, index, also...)
	_, err = s.st().decode("create meeting", meetingDoc, v, err)
	var tr *state.Transition
	if len(also) > 0 {
		tr = s.settleMark(ctx, mk, marks[0], nil, err != nil, now)
	}
	if err != nil {
		return nil, err
	}
	return tr, nil
}

// Get implements state.Meetings.
func (s *meetings) Get(ctx context.Context, id string) (*state.Meeting, error) {
	doc, err := s.c.Get(ctx, s.keys.meeting(id)).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("redis get meeting %s: %w", id, state.ErrNotFound)
	}
	if err != nil {
		return nil, s.st().fail("get meeting", err)
	}
	return decodeMeeting(doc)
}

// ListForUser implements state.Meetings (a limit of 0 or less is no limit;
// equal start times are ordered by id). It reads the user's index, then
// every indexed meeting in one pipeline, and drops the index entries of
// meetings that are gone or do not list the user (an index write whose
// transition was refused).
func (s *meetings) ListForUser(ctx context.Context, user string, upcoming bool, now time.Time, offset, limit int) ([]*state.Meeting, error) {
	idx := s.keys.userMeetings(user)
	ids, err := s.c.SMembers(ctx, idx).Result()
	if err != nil {
		return nil, s.st().fail("list meetings", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	gets := make([]*goredis.StringCmd, len(ids))
	_, err = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range ids {
			gets[i] = p.Get(ctx, s.keys.meeting(id))
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, s.st().fail("list meetings", err)
	}
	var (
		stale []any
		out   []*state.Meeting
		nowT  = state.At(now)
	)
	for i, g := range gets {
		doc, err := g.Result()
		if errors.Is(err, goredis.Nil) {
			stale = append(stale, ids[i])
			continue
		}
		if err != nil {
			return nil, s.st().fail("list meetings", err)
		}
		m, err := decodeMeeting(doc)
		if err != nil {
			return nil, err
		}
		if m.Participant(user) == nil {
			stale = append(stale, ids[i])
			continue
		}
		isUpcoming := !m.EndTime.Before(nowT.Time) && m.Status != state.StatusEnded
		if isUpcoming == upcoming {
			out = append(out, m)
		}
	}
	if len(stale) > 0 {
		// Repair the index; a failure only leaves work for the next read.
		_ = s.c.SRem(ctx, idx, stale...).Err()
	}
	slices.SortFunc(out, func(a, b *state.Meeting) int {
		c := a.StartTime.Compare(b.StartTime.Time)
		if !upcoming {
			c = -c
		}
		return cmp.Or(c, cmp.Compare(a.ID, b.ID))
	})
	offset = max(offset, 0)
	if offset >= len(out) {
		return nil, nil
	}
	out = out[offset:]
	if limit > 0 && limit < len(out) {
		out = out[:limit]
	}
	return out, nil
}

// Update implements state.Meetings. When the new end time moves the
// meeting's expiry later, the participants' indexes are extended to match
// in a second, idempotent round trip.
func (s *meetings) Update(ctx context.Context, id, actor string, p state.MeetingPatch, retention time.Duration, now time.Time) (*state.Meeting, error) {
	patch := map[string]any{}
	raw := map[string]string{}
	if p.Title != nil {
		patch["title"] = *p.Title
		raw["title"] = *p.Title
	}
	if p.Description != nil {
		patch["description"] = *p.Description
		raw["description"] = *p.Description
	}
	if r := rawOf(raw); r != nil {
		patch["_raw"] = r
	}
	for name, t := range map[string]*state.Time{"start_time": p.StartTime, "end_time": p.EndTime} {
		if t == nil {
			continue
		}
		if t.IsZero() {
			return nil, fmt.Errorf("redis update meeting: %s is zero: %w", name, state.ErrInvalid)
		}
		patch[name] = t.String()
	}
	if p.AllowExternal != nil {
		patch["allow_external"] = *p.AllowExternal
	}
	b, err := json.Marshal(patch)
	if err != nil {
		return nil, fmt.Errorf("redis update meeting: %w", err)
	}
	v, err := s.st().run(ctx, s.sc.updateMeeting, []string{s.keys.meeting(id)},
		stamp(now), millis(now), actor, retention.Milliseconds(), b)
	r, err := s.st().decode("update meeting", meetingDoc, v, err)
	if err != nil {
		return nil, err
	}
	if r.Grew && r.PTTL > 0 {
		ttl := time.Duration(r.PTTL) * time.Millisecond
		users := r.Meeting.Everyone()
		_, _ = s.c.Pipelined(ctx, func(pp goredis.Pipeliner) error {
			s.st().indexMeeting(ctx, pp, id, users, ttl)
			return nil
		})
	}
	return r.Meeting, nil
}

// Start implements state.Meetings.
func (s *meetings) Start(ctx context.Context, id, actor string, now time.Time) (*state.Meeting, error) {
	v, err := s.st().run(ctx, s.sc.startMeeting, []string{s.keys.meeting(id)}, stamp(now), actor)
	r, err := s.st().decode("start meeting", meetingDoc, v, err)
	if err != nil {
		return nil, err
	}
	return r.Meeting, nil
}

// Join implements state.Meetings.
func (s *meetings) Join(ctx context.Context, id, actor, conn string, now time.Time) (*state.JoinResult, error) {
	r, tr, err := s.marked(ctx, "join meeting", s.sc.joinMeeting, []string{s.keys.meeting(id)},
		[]any{stamp(now), actor, conn}, id, actor, conn, true, now)
	if err != nil {
		return nil, err
	}
	res := r.joinResult()
	res.Presence = tr
	return res, nil
}

// marked runs the meeting transition sc and, in the same pipeline (one
// round trip; the presence hash is in another slot), the setJoined script
// that records (joined) or forgets meeting id in conn's presence entry, as
// Join, Accept and Leave promise. It returns the transition's reply, and
// the presence transition or nil when setJoined failed.
func (s *meetings) marked(ctx context.Context, what string, sc *goredis.Script, keys []string, args []any,
	id, actor, conn string, joined bool, now time.Time) (*reply, *state.Transition, error) {
	if conn == "" {
		v, err := s.st().run(ctx, sc, keys, args...)
		r, err := s.st().decode(what, meetingDoc, v, err)
		return r, nil, err
	}
	mk := busyMark{user: actor, conn: conn, meeting: id, joined: joined}
	vs, errs := s.st().runEach(ctx, scriptCall{sc: sc, keys: keys, args: args}, s.markCall(mk, now))
	r, err := s.st().decode(what, meetingDoc, vs[0], errs[0])
	tr := s.settleMark(ctx, mk, vs[1], errs[1], err != nil, now)
	if err != nil {
		return nil, nil, err
	}
	return r, tr, nil
}

// busyMark is a setJoined sent in the pipeline of a meeting transition:
// conn of user joined (or left) meeting.
type busyMark struct {
	user, conn, meeting string
	joined              bool
}

// markCall is the setJoined script call of mk.
func (s *meetings) markCall(mk busyMark, now time.Time) scriptCall {
	return scriptCall{sc: s.sc.setJoined, keys: s.keys.presenceOf(mk.user),
		args: []any{millis(now), mk.conn, mk.meeting, joinedFlag(mk.joined)}}
}

// settleMark reads the reply of mk's script (v and err; v nil when it did
// not run) and returns the presence transition it caused, nil when it
// failed or when the transition it rode with was refused. A refused
// transition has a mark that mk added taken back (a second round trip, on
// that path only); a mark that was there before stays.
func (s *meetings) settleMark(ctx context.Context, mk busyMark, v any, err error, refused bool, now time.Time) *state.Transition {
	if v == nil || err != nil {
		return nil
	}
	pr, err := s.st().decode("set joined", noDoc, v, nil)
	if err != nil {
		return nil
	}
	if refused {
		if mk.joined && pr.Changed {
			_, _ = s.st().Presence().SetJoined(ctx, mk.user, mk.conn, mk.meeting, false, now)
		}
		return nil
	}
	t := pr.transition(mk.user, now)
	return &t
}

func (r *reply) joinResult() *state.JoinResult {
	return &state.JoinResult{Meeting: r.Meeting, Already: r.Already, UserJoined: r.UserJoined,
		FirstJoined: r.FirstJoined, Started: r.Started}
}

func (r *reply) callResult() *state.CallResult {
	return &state.CallResult{Meeting: r.Meeting, Missed: r.Users, Ended: r.Ended, Deleted: r.Deleted, Reason: r.Reason}
}

// Leave implements state.Meetings.
func (s *meetings) Leave(ctx context.Context, id, actor, conn string, now time.Time) (*state.LeaveResult, error) {
	r, tr, err := s.marked(ctx, "leave meeting", s.sc.leaveMeeting, []string{s.keys.meeting(id), s.keys.queue(id)},
		[]any{stamp(now), actor, conn}, id, actor, conn, false, now)
	if err != nil {
		return nil, err
	}
	return &state.LeaveResult{Meeting: r.Meeting, UserLeft: r.UserLeft, Ended: r.Ended, Deleted: r.Deleted, Reason: r.Reason, Presence: tr}, nil
}

// InviteLive implements state.Meetings. The invitees are indexed in the same
// pipeline for at least Options.IndexTTL; a meeting that lives longer gets
// the index extended in a second round trip.
func (s *meetings) InviteLive(ctx context.Context, id, actor string, users []string, maxParticipants int, now time.Time) (*state.Meeting, []string, error) {
	users = dedupe(users)
	args := make([]any, 0, 3+len(users))
	args = append(args, stamp(now), actor, maxParticipants)
	for _, u := range users {
		args = append(args, u)
	}
	v, err := s.st().runWith(ctx, s.sc.inviteLive, []string{s.keys.meeting(id)}, args,
		func(p goredis.Pipeliner) { s.st().indexMeeting(ctx, p, id, users, s.opts.IndexTTL) })
	r, err := s.st().decode("invite live", meetingDoc, v, err)
	if err != nil {
		return nil, nil, err
	}
	if ttl := time.Duration(r.PTTL) * time.Millisecond; ttl > s.opts.IndexTTL && len(r.Users) > 0 {
		_, _ = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
			s.st().indexMeeting(ctx, p, id, r.Users, ttl)
			return nil
		})
	}
	return r.Meeting, r.Users, nil
}

// Ring implements state.Meetings. The ringCall script and the timeout's
// scheduleJobs script go in one pipeline: one round trip, two transitions
// (the call's slot and the {jobs} slot differ, so one script cannot do
// both on Redis Cluster). The job is therefore written whatever the ring's
// answer, as the contract allows. On one Redis the script reads the
// recipients' presence itself; on a Cluster, whose slots part the presence
// hashes from the call, one round trip reads them first.
func (s *meetings) Ring(ctx context.Context, id, actor string, recipients []string, ringDeadline time.Time, timeout state.Job, now time.Time) (*state.RingResult, error) {
	keys := []string{s.keys.meeting(id)}
	args := make([]any, 0, 5+2*len(recipients))
	args = append(args, stamp(now), actor, stamp(ringDeadline), len(recipients))
	for _, u := range recipients {
		args = append(args, u)
	}
	if s.st().cluster() {
		pres, err := (*presence)(s).Query(ctx, recipients, now)
		if err != nil {
			return nil, err
		}
		for _, p := range pres {
			if p.Status != state.Offline {
				args = append(args, p.UserID)
			}
		}
	} else {
		args = append(args, millis(now))
		for _, u := range recipients {
			keys = append(keys, s.keys.presence(u))
		}
	}
	ring := scriptCall{sc: s.sc.ringCall, keys: keys, args: args}
	var r *reply
	var jobErr error
	if timeout.ID == "" {
		v, err := s.st().run(ctx, ring.sc, ring.keys, ring.args...)
		if r, err = s.st().decode("ring", meetingDoc, v, err); err != nil {
			return nil, err
		}
	} else {
		job, err := (*jobs)(s).scheduleCall(timeout)
		if err != nil {
			return nil, fmt.Errorf("redis ring: ring timeout: %w", err)
		}
		vs, errs := s.st().runEach(ctx, ring, job)
		if r, err = s.st().decode("ring", meetingDoc, vs[0], errs[0]); err != nil {
			return nil, err
		}
		_, jobErr = s.st().decode("ring: schedule ring timeout", noDoc, vs[1], errs[1])
	}
	return &state.RingResult{Meeting: r.Meeting, Ringing: r.Users, TimeoutErr: jobErr}, nil
}

// Accept implements state.Meetings.
func (s *meetings) Accept(ctx context.Context, id, actor, conn string, now time.Time) (*state.JoinResult, error) {
	r, tr, err := s.marked(ctx, "accept call", s.sc.acceptCall, []string{s.keys.meeting(id)},
		[]any{stamp(now), actor, conn}, id, actor, conn, true, now)
	if err != nil {
		return nil, err
	}
	res := r.joinResult()
	res.Presence = tr
	return res, nil
}

// Decline implements state.Meetings.
func (s *meetings) Decline(ctx context.Context, id, actor string, now time.Time) (*state.CallResult, error) {
	v, err := s.st().run(ctx, s.sc.declineCall, []string{s.keys.meeting(id), s.keys.queue(id)}, stamp(now), actor)
	r, err := s.st().decode("decline call", meetingDoc, v, err)
	if err != nil {
		return nil, err
	}
	return r.callResult(), nil
}

// ExpireRings implements state.Meetings.
func (s *meetings) ExpireRings(ctx context.Context, id string, now time.Time) (*state.CallResult, error) {
	v, err := s.st().run(ctx, s.sc.expireRings, []string{s.keys.meeting(id), s.keys.queue(id)}, stamp(now))
	r, err := s.st().decode("expire rings", meetingDoc, v, err)
	if err != nil {
		return nil, err
	}
	return r.callResult(), nil
}

// MarkReminded implements state.Meetings. A meeting that is gone reports
// (nil, false, nil).
func (s *meetings) MarkReminded(ctx context.Context, id string, minutesBefore int) (*state.Meeting, bool, error) {
	v, err := s.st().run(ctx, s.sc.markReminded, []string{s.keys.meeting(id)}, strconv.Itoa(minutesBefore))
	r, err := s.st().decode("mark reminded", meetingDoc, v, err)
	if err != nil {
		return nil, false, err
	}
	return r.Meeting, r.First, nil
}

// EndIfOver implements state.Meetings.
func (s *meetings) EndIfOver(ctx context.Context, id string, now time.Time) (*state.Meeting, bool, error) {
	v, err := s.st().run(ctx, s.sc.endIfOver, []string{s.keys.meeting(id)}, stamp(now))
	r, err := s.st().decode("end if over", meetingDoc, v, err)
	if err != nil {
		return nil, false, err
	}
	return r.Meeting, r.Ended, nil
}

// Delete implements state.Meetings. The participants' index entries are
// dropped by their next ListForUser.
func (s *meetings) Delete(ctx context.Context, id, actor string) (*state.Meeting, error) {
	v, err := s.st().run(ctx, s.sc.deleteMeeting, []string{s.keys.meeting(id), s.keys.queue(id)}, actor)
	r, err := s.st().decode("delete meeting", meetingDoc, v, err)
	if err != nil {
		return nil, err
	}
	return r.Meeting, nil
}

// dedupe returns xs without repeats, in first-seen order.
func dedupe(xs []string) []string {
	seen := make(map[string]bool, len(xs))
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
