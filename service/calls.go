package service

import (
	"context"
	"errors"
	"sort"
	"strings"

	"github.com/switchboard/switchboard/state"
)

// CreateCallRequest is the payload of call:create.
type CreateCallRequest struct {
	Title            *string  `json:"title"`
	Participants     []string `json:"participants"`
	AllowExternal    *bool    `json:"allowExternal"`
	AllowExternalAlt *bool    `json:"allow_external"`
}

// CallerInfo is the opaque caller data of call:incoming (SPEC 3).
type CallerInfo struct {
	DisplayName *string `json:"display_name"`
	Avatar      *string `json:"avatar"`
}

// NotifyRequest is the payload of call:notify.
type NotifyRequest struct {
	CallID     string                `json:"call_id"`
	Recipients []string              `json:"recipients"`
	Caller     *CallerInfo           `json:"caller"`
	Envelopes  map[string]CallerInfo `json:"envelopes"`
}

// CallRef is the payload of call:accept and call:decline.
type CallRef struct {
	CallID string `json:"call_id"`
}

func (s *Service) checkCallID(v string) error {
	if err := s.checkID("call_id", v); err != nil {
		return err
	}
	if !strings.HasPrefix(v, "call_") {
		return Errorf(CodeNotFound, "call not found")
	}
	return nil
}

// CreateCall handles call:create: a live instant call whose owner is joined
// with the creating socket; the caller puts that socket in MeetingRoom(id).
// Nothing is broadcast (seed).
func (s *Service) CreateCall(ctx context.Context, a Actor, r CreateCallRequest) (*state.Meeting, error) {
	title := ""
	if r.Title != nil {
		title = *r.Title
	}
	if err := checkOpaque("title", title, s.cfg.MaxTitleBytes); err != nil {
		return nil, err
	}
	if len(r.Participants) == 0 {
		return nil, Errorf(CodeInvalidPayload, "participants must name 1 to %d users", s.cfg.MaxRecipients)
	}
	others, err := s.userList("participants", r.Participants, s.cfg.MaxRecipients, a.UserID)
	if err != nil {
		return nil, err
	}
	if len(others) == 0 {
		return nil, Errorf(CodeInvalidPayload, "participants must name someone other than the caller")
	}
	now := s.now()
	allow := firstBool(r.AllowExternal, r.AllowExternalAlt)
	m := &state.Meeting{
		ID:            newID("call_"),
		IsInstantCall: true,
		Title:         title,
		StartTime:     state.At(now),
		EndTime:       state.At(now.Add(s.cfg.MaxCallLength)),
		AllowExternal: allow != nil && *allow,
		CreatedBy:     a.UserID,
		Status:        state.StatusLive,
		StartedAt:     state.TimePtr(now),
		CreatedAt:     state.At(now),
		UpdatedAt:     state.At(now),
		ActiveCount:   1,
		Version:       1,
		Conns:         map[string][]string{a.UserID: {a.ConnID}},
	}
	m.Participants = append(m.Participants, state.Participant{UserID: a.UserID, Role: state.RoleOwner, Status: state.PartJoined, JoinedAt: state.TimePtr(now)})
	for _, u := range others {
		m.Participants = append(m.Participants, state.Participant{UserID: u, Role: state.RoleMember, Status: state.PartInvited})
	}
	tr, err := s.store.Meetings().Create(ctx, m, 0, now)
	if err != nil {
		return nil, wrap(err, "call")
	}
	s.joined(ctx, a, m.ID, true, tr, now)
	return m.Public(), nil
}

// Notify handles call:notify: every recipient with a live device rings on
// all of them. It returns how many users were reached.
func (s *Service) Notify(ctx context.Context, a Actor, r NotifyRequest) (int, error) {
	if err := s.checkCallID(r.CallID); err != nil {
		return 0, err
	}
	if len(r.Recipients) == 0 {
		return 0, Errorf(CodeInvalidPayload, "recipients must name 1 to %d users", s.cfg.MaxRecipients)
	}
	recipients, err := s.userList("recipients", r.Recipients, s.cfg.MaxRecipients, "")
	if err != nil {
		return 0, err
	}
	if err := s.checkCaller("caller", r.Caller); err != nil {
		return 0, err
	}
	if len(r.Envelopes) > s.cfg.MaxRecipients {
		return 0, Errorf(CodeTooLarge, "envelopes has more than %d entries", s.cfg.MaxRecipients)
	}
	for u, e := range r.Envelopes {
		if err := s.checkCaller("envelopes["+u+"]", &e); err != nil {
			return 0, err
		}
	}
	now := s.now()
	deadline := now.Add(s.cfg.RingTimeout)

	// The store rings the recipients its presence has online, and takes
	// the ring-timeout job with the ring, in the same round trip; the job
	// is scheduled even when the ring rings nobody or is refused (a job
	// that finds nobody ringing does nothing).
	timeout := state.Job{ID: "ring:" + r.CallID + ":" + ts(deadline), Kind: JobRingTimeout, Subject: r.CallID, Due: state.At(deadline)}
	res, err := s.store.Meetings().Ring(ctx, r.CallID, a.UserID, recipients, deadline, timeout, now)
	if err != nil {
		if errors.Is(err, state.ErrInvalid) {
			return 0, s.notParticipants(ctx, r.CallID, a.UserID, recipients)
		}
		return 0, wrap(err, "call")
	}
	if res.TimeoutErr != nil {
		// The ring stands: the recipients are told, but nothing will time
		// their ring out (they still can accept or decline).
		s.log.Warn().Err(res.TimeoutErr).Str("call_id", r.CallID).Msg("schedule ring timeout")
	}
	m, ringing := res.Meeting, res.Ringing
	pub := m.Public()
	caller := map[string]any{"user_id": a.UserID, "display_name": a.Name, "avatar": ""}
	if r.Caller != nil {
		applyCaller(caller, *r.Caller)
	}
	for _, u := range ringing {
		c := caller
		if e, ok := r.Envelopes[u]; ok {
			c = map[string]any{"user_id": a.UserID, "display_name": a.Name, "avatar": ""}
			applyCaller(c, e)
		}
		s.emitToUsers([]string{u}, nil, "call:incoming", map[string]any{"call": pub, "caller": c})
	}
	return len(ringing), nil
}

func applyCaller(dst map[string]any, c CallerInfo) {
	if c.DisplayName != nil {
		dst["display_name"] = *c.DisplayName
	}
	if c.Avatar != nil {
		dst["avatar"] = *c.Avatar
	}
}

func (s *Service) checkCaller(field string, c *CallerInfo) error {
	if c == nil {
		return nil
	}
	if c.DisplayName != nil {
		if err := checkOpaque(field+".display_name", *c.DisplayName, s.cfg.MaxDisplayNameBytes); err != nil {
			return err
		}
	}
	if c.Avatar != nil {
		return checkOpaque(field+".avatar", *c.Avatar, s.cfg.MaxEnvelopeBytes)
	}
	return nil
}

// notParticipants builds the invalid_payload refusal that names the
// recipients who are not participants of the call.
func (s *Service) notParticipants(ctx context.Context, id, actor string, recipients []string) error {
	m, err := s.store.Meetings().Get(ctx, id)
	if err != nil {
		return wrap(err, "call")
	}
	var bad []string
	for _, u := range recipients {
		if u == actor || m.Participant(u) == nil {
			bad = append(bad, u)
		}
	}
	sort.Strings(bad)
	return Errorf(CodeInvalidPayload, "recipients are not participants of the call: %s", strings.Join(bad, ", "))
}

// Accept handles call:accept; the caller puts the socket in
// MeetingRoom(call_id).
func (s *Service) Accept(ctx context.Context, a Actor, r CallRef) (*state.JoinResult, error) {
	if err := s.checkCallID(r.CallID); err != nil {
		return nil, err
	}
	now := s.now()
	res, err := s.store.Meetings().Accept(ctx, r.CallID, a.UserID, a.ConnID, now)
	if err != nil {
		return nil, wrap(err, "call")
	}
	m := res.Meeting
	s.emitToUsers(m.Audience(), a.except(), "call:accepted", map[string]any{"call_id": m.ID, "user_id": a.UserID, "timestamp": ts(now)})
	s.afterJoin(ctx, a, res, now)
	return res, nil
}

// Decline handles call:decline.
func (s *Service) Decline(ctx context.Context, a Actor, r CallRef) error {
	if err := s.checkCallID(r.CallID); err != nil {
		return err
	}
	now := s.now()
	res, err := s.store.Meetings().Decline(ctx, r.CallID, a.UserID, now)
	if err != nil {
		return wrap(err, "call")
	}
	m := res.Meeting
	s.emitToUsers(uniq(m.CreatedBy, a.UserID), a.except(), "call:declined", map[string]any{"call_id": m.ID, "user_id": a.UserID, "timestamp": ts(now)})
	if res.Ended {
		s.callEnded(ctx, m, res.Reason)
	}
	return nil
}

// expireRings runs the ring timeout of a call.
func (s *Service) expireRings(ctx context.Context, id string) error {
	now := s.now()
	res, err := s.store.Meetings().ExpireRings(ctx, id, now)
	if errors.Is(err, state.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	m := res.Meeting
	for _, u := range res.Missed {
		s.emitToUsers([]string{m.CreatedBy}, nil, "call:declined", map[string]any{"call_id": m.ID, "user_id": u, "timestamp": ts(now), "reason": state.ReasonTimeout})
		s.emitToUsers([]string{u}, nil, "call:ended", map[string]any{"call_id": m.ID, "reason": state.ReasonTimeout})
	}
	if res.Ended {
		s.callEnded(ctx, m, res.Reason)
	}
	return nil
}

// callEnded tells every user ever listed in the call that it ended, except
// the missed ones (they were told when their ring timed out), and clears the
// busy status of the connections that were still in it.
func (s *Service) callEnded(ctx context.Context, m *state.Meeting, reason string) {
	var users []string
	for _, p := range m.Participants {
		if p.Status != state.PartMissed {
			users = append(users, p.UserID)
		}
	}
	s.emitToUsers(users, nil, "call:ended", map[string]any{"call_id": m.ID, "reason": reason})
	now := s.now()
	for u, conns := range m.Conns {
		for _, c := range conns {
			s.setJoined(ctx, Actor{UserID: u, ConnID: c}, m.ID, false, now)
		}
	}
}

func uniq(vs ...string) []string {
	out := vs[:0:0]
	seen := map[string]bool{}
	for _, v := range vs {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
