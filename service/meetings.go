package service

import (
	"context"
	"math"
	"time"

	"github.com/switchboard/switchboard/state"
)

// Job kinds run by RunJob.
const (
	JobReminder      = "reminder"       // Subject meeting, Arg minutes before start
	JobMeetingEnd    = "meeting_end"    // Subject meeting
	JobRingTimeout   = "ring_timeout"   // Subject call
	JobSettleOffline = "settle_offline" // Subject user
	JobGuestLeft     = "guest_left"     // Subject session
	JobReapNode      = "reap_node"      // Subject node
)

// EncryptedData is the opaque per-meeting data of meeting:created (SPEC 3).
type EncryptedData struct {
	Title       string `json:"title"`
	Description string `json:"description"`
	Avatar      string `json:"avatar,omitempty"`
}

// CreateMeetingRequest is the payload of meeting:create. The seed's camelCase
// names and the snake_case spellings are both accepted.
type CreateMeetingRequest struct {
	Title            *string                  `json:"title"`
	Description      *string                  `json:"description"`
	StartTime        *string                  `json:"startTime"`
	StartTimeAlt     *string                  `json:"start_time"`
	EndTime          *string                  `json:"endTime"`
	EndTimeAlt       *string                  `json:"end_time"`
	Participants     []string                 `json:"participants"`
	AllowExternal    *bool                    `json:"allowExternal"`
	AllowExternalAlt *bool                    `json:"allow_external"`
	EncryptedData    *EncryptedData           `json:"encrypted_data"`
	Envelopes        map[string]EncryptedData `json:"envelopes"`
}

// UpdateMeetingRequest is the payload of meeting:update.
type UpdateMeetingRequest struct {
	MeetingID        string  `json:"meeting_id"`
	Title            *string `json:"title"`
	Description      *string `json:"description"`
	StartTime        *string `json:"startTime"`
	StartTimeAlt     *string `json:"start_time"`
	EndTime          *string `json:"endTime"`
	EndTimeAlt       *string `json:"end_time"`
	AllowExternal    *bool   `json:"allowExternal"`
	AllowExternalAlt *bool   `json:"allow_external"`
}

// MeetingRef is the payload of the events that name one meeting.
type MeetingRef struct {
	MeetingID string `json:"meeting_id"`
}

// InviteLiveRequest is the payload of meeting:invite-live.
type InviteLiveRequest struct {
	MeetingID string   `json:"meeting_id"`
	UserIDs   []string `json:"user_ids"`
}

func (s *Service) checkEncrypted(field string, e *EncryptedData) error {
	if e == nil {
		return nil
	}
	if err := checkOpaque(field+".title", e.Title, s.cfg.MaxTitleBytes); err != nil {
		return err
	}
	if err := checkOpaque(field+".description", e.Description, s.cfg.MaxDescriptionBytes); err != nil {
		return err
	}
	return checkOpaque(field+".avatar", e.Avatar, s.cfg.MaxEnvelopeBytes)
}

// CreateMeeting handles meeting:create: a scheduled meeting owned by the
// actor; meeting:created reaches every participant's sockets but the
// creating one, each with its own envelope when envelopes are given.
func (s *Service) CreateMeeting(ctx context.Context, a Actor, r CreateMeetingRequest) (*state.Meeting, error) {
	if r.Title == nil {
		return nil, Errorf(CodeInvalidPayload, "title is required")
	}
	if err := checkOpaque("title", *r.Title, s.cfg.MaxTitleBytes); err != nil {
		return nil, err
	}
	desc := ""
	if r.Description != nil {
		desc = *r.Description
	}
	if err := checkOpaque("description", desc, s.cfg.MaxDescriptionBytes); err != nil {
		return nil, err
	}
	start, err := parseTime("startTime", firstString(r.StartTime, r.StartTimeAlt))
	if err != nil {
		return nil, err
	}
	end, err := parseTime("endTime", firstString(r.EndTime, r.EndTimeAlt))
	if err != nil {
		return nil, err
	}
	if start == nil || end == nil {
		return nil, Errorf(CodeInvalidPayload, "startTime and endTime are required")
	}
	if !end.After(start.Time) {
		return nil, Errorf(CodeInvalidPayload, "endTime must be after startTime")
	}
	others, err := s.userList("participants", r.Participants, s.cfg.MaxParticipants-1, a.UserID)
	if err != nil {
		return nil, err
	}
	if err := s.checkEncrypted("encrypted_data", r.EncryptedData); err != nil {
		return nil, err
	}
	if len(r.Envelopes) > s.cfg.MaxParticipants {
		return nil, Errorf(CodeTooLarge, "envelopes has more than %d entries", s.cfg.MaxParticipants)
	}
	for u, e := range r.Envelopes {
		if err := s.checkEncrypted("envelopes["+u+"]", &e); err != nil {
			return nil, err
		}
	}
	now := s.now()
	allow := firstBool(r.AllowExternal, r.AllowExternalAlt)
	m := &state.Meeting{
		ID:            newID("mtg_"),
		Title:         *r.Title,
		Description:   desc,
		StartTime:     *start,
		EndTime:       *end,
		AllowExternal: allow != nil && *allow,
		CreatedBy:     a.UserID,
		Status:        state.StatusScheduled,
		CreatedAt:     state.At(now),
		UpdatedAt:     state.At(now),
		Version:       1,
	}
	m.Participants = append(m.Participants, state.Participant{UserID: a.UserID, Role: state.RoleOwner, Status: state.PartInvited})
	for _, u := range others {
		m.Participants = append(m.Participants, state.Participant{UserID: u, Role: state.RoleMember, Status: state.PartInvited})
	}
	if _, err := s.store.Meetings().Create(ctx, m, s.cfg.MeetingRetention, now); err != nil {
		return nil, wrap(err, "meeting")
	}
	s.scheduleMeetingJobs(ctx, m, now)

	pub := m.Public()
	if len(r.Envelopes) == 0 {
		data := r.EncryptedData
		if data == nil {
			data = &EncryptedData{Title: m.Title, Description: m.Description}
		}
		s.emitToUsers(m.Audience(), a.except(), "meeting:created", map[string]any{"meeting": pub, "encrypted_data": data})
	} else {
		for _, u := range m.Audience() {
			payload := map[string]any{"meeting": pub}
			if e, ok := r.Envelopes[u]; ok {
				payload["encrypted_data"] = e
			}
			s.emitToUsers([]string{u}, a.except(), "meeting:created", payload)
		}
	}
	return pub, nil
}

// Reminder kinds (the Arg of a reminder job).
const (
	reminderLead  = "lead"  // ReminderLead before the start
	reminderStart = "start" // at the start
)

// leadMinutes is the minutes_before of the lead reminder (15 by default).
func (s *Service) leadMinutes() int { return int(math.Round(s.cfg.ReminderLead.Minutes())) }

// scheduleMeetingJobs (re)schedules the reminders and the end of a scheduled
// meeting. A reminder whose time has passed is not scheduled.
func (s *Service) scheduleMeetingJobs(ctx context.Context, m *state.Meeting, now time.Time) {
	var jobs []state.Job
	for _, r := range []struct {
		kind string
		due  time.Time
	}{{reminderLead, m.StartTime.Add(-s.cfg.ReminderLead)}, {reminderStart, m.StartTime.Time}} {
		if r.due.Before(now) {
			continue
		}
		jobs = append(jobs, state.Job{ID: "remind:" + r.kind + ":" + m.ID, Kind: JobReminder, Subject: m.ID, Arg: r.kind, Due: state.At(r.due)})
	}
	jobs = append(jobs, state.Job{ID: "end:" + m.ID, Kind: JobMeetingEnd, Subject: m.ID, Due: m.EndTime})
	if err := s.store.Jobs().Schedule(ctx, jobs...); err != nil {
		s.log.Error().Err(err).Str("meeting_id", m.ID).Msg("schedule meeting jobs")
	}
}

// UpdateMeeting handles meeting:update (owner only).
func (s *Service) UpdateMeeting(ctx context.Context, a Actor, r UpdateMeetingRequest) (*state.Meeting, error) {
	if err := s.checkMeetingID("meeting_id", r.MeetingID); err != nil {
		return nil, err
	}
	var p state.MeetingPatch
	if r.Title != nil {
		if err := checkOpaque("title", *r.Title, s.cfg.MaxTitleBytes); err != nil {
			return nil, err
		}
		p.Title = r.Title
	}
	if r.Description != nil {
		if err := checkOpaque("description", *r.Description, s.cfg.MaxDescriptionBytes); err != nil {
			return nil, err
		}
		p.Description = r.Description
	}
	var err error
	if p.StartTime, err = parseTime("startTime", firstString(r.StartTime, r.StartTimeAlt)); err != nil {
		return nil, err
	}
	if p.EndTime, err = parseTime("endTime", firstString(r.EndTime, r.EndTimeAlt)); err != nil {
		return nil, err
	}
	p.AllowExternal = firstBool(r.AllowExternal, r.AllowExternalAlt)
	if p == (state.MeetingPatch{}) {
		return nil, Errorf(CodeInvalidPayload, "nothing to update: give title, description, startTime, endTime or allowExternal")
	}
	now := s.now()
	m, err := s.store.Meetings().Update(ctx, r.MeetingID, a.UserID, p, s.cfg.MeetingRetention, now)
	if err != nil {
		if AsError(err).Code == CodeInvalidPayload {
			return nil, Errorf(CodeInvalidPayload, "endTime must be after startTime")
		}
		return nil, wrap(err, "meeting")
	}
	if !m.IsInstantCall && (p.StartTime != nil || p.EndTime != nil) {
		s.scheduleMeetingJobs(ctx, m, now)
	}
	pub := m.Public()
	s.emitToUsers(m.Audience(), a.except(), "meeting:updated", map[string]any{"meeting": pub})
	return pub, nil
}

// StartMeeting handles meeting:start (owner only).
func (s *Service) StartMeeting(ctx context.Context, a Actor, r MeetingRef) error {
	if err := s.checkMeetingID("meeting_id", r.MeetingID); err != nil {
		return err
	}
	m, err := s.store.Meetings().Start(ctx, r.MeetingID, a.UserID, s.now())
	if err != nil {
		return wrap(err, "meeting")
	}
	s.emitToUsers(m.Audience(), a.except(), "meeting:started", map[string]any{"meeting_id": m.ID})
	return nil
}

// RegisterParticipant handles meeting:register-participant: the actor's
// socket joins the meeting room. The caller puts the socket in
// MeetingRoom(id) when this returns without error.
func (s *Service) RegisterParticipant(ctx context.Context, a Actor, r MeetingRef) (*state.JoinResult, error) {
	if err := s.checkMeetingID("meeting_id", r.MeetingID); err != nil {
		return nil, err
	}
	now := s.now()
	res, err := s.store.Meetings().Join(ctx, r.MeetingID, a.UserID, a.ConnID, now)
	if err != nil {
		return nil, wrap(err, "meeting")
	}
	s.afterJoin(ctx, a, res, now)
	return res, nil
}

// afterJoin announces what a join (register or accept) changed.
func (s *Service) afterJoin(ctx context.Context, a Actor, res *state.JoinResult, now time.Time) {
	if res.Already {
		if res.Presence != nil {
			s.announce(*res.Presence)
		}
		return
	}
	m := res.Meeting
	s.joined(ctx, a, m.ID, true, res.Presence, now)
	if res.Started {
		s.emitToUsers(m.Audience(), a.except(), "meeting:started", map[string]any{"meeting_id": m.ID})
	}
	if res.FirstJoined {
		data := map[string]any{"meeting_id": m.ID}
		s.emitToUsers(m.Audience(), a.except(), "meeting:first_participant_joined", data)
		s.emitToGuests(m.ID, "meeting:first_participant_joined", data)
	}
	if res.UserJoined {
		s.emitToRoom(m.ID, a.except(), "meeting:participant_joined", map[string]any{"meeting_id": m.ID, "user_id": a.UserID})
	}
}

// joined announces the busy transition that a join or leave recorded in
// presence (tr, from JoinResult or LeaveResult), or records it now when the
// store could not (tr nil).
func (s *Service) joined(ctx context.Context, a Actor, meetingID string, joined bool, tr *state.Transition, now time.Time) {
	if tr != nil {
		s.announce(*tr)
		return
	}
	s.setJoined(ctx, a, meetingID, joined, now)
}

// setJoined records the connection's meeting in presence and announces the
// busy transition.
func (s *Service) setJoined(ctx context.Context, a Actor, meetingID string, joined bool, now time.Time) {
	if a.ConnID == "" {
		return
	}
	tr, err := s.store.Presence().SetJoined(ctx, a.UserID, a.ConnID, meetingID, joined, now)
	if err != nil {
		s.log.Warn().Err(err).Str("user_id", a.UserID).Msg("presence set joined")
		return
	}
	s.announce(tr)
}

// Leave handles meeting:leave by a member. The caller takes the socket out
// of MeetingRoom(id).
func (s *Service) Leave(ctx context.Context, a Actor, r MeetingRef) error {
	if err := s.checkMeetingID("meeting_id", r.MeetingID); err != nil {
		return err
	}
	now := s.now()
	res, err := s.store.Meetings().Leave(ctx, r.MeetingID, a.UserID, a.ConnID, now)
	if err != nil {
		return wrap(err, "meeting")
	}
	s.joined(ctx, a, r.MeetingID, false, res.Presence, now)
	s.afterLeave(ctx, a.UserID, a.except(), res)
	return nil
}

// afterLeave announces what a leave changed.
func (s *Service) afterLeave(ctx context.Context, user string, except []string, res *state.LeaveResult) {
	m := res.Meeting
	if res.UserLeft && !res.Deleted {
		s.emitToRoom(m.ID, except, "meeting:participant_left", map[string]any{"meeting_id": m.ID, "user_id": user})
	}
	if res.Ended {
		if m.IsInstantCall {
			s.callEnded(ctx, m, res.Reason)
		} else {
			s.emitToUsers(m.Audience(), nil, "meeting:updated", map[string]any{"meeting": m.Public()})
		}
	}
}

// InviteLive handles meeting:invite-live.
func (s *Service) InviteLive(ctx context.Context, a Actor, r InviteLiveRequest) ([]string, error) {
	if err := s.checkMeetingID("meeting_id", r.MeetingID); err != nil {
		return nil, err
	}
	if len(r.UserIDs) == 0 {
		return nil, Errorf(CodeInvalidPayload, "user_ids must name at least one user")
	}
	users, err := s.userList("user_ids", r.UserIDs, s.cfg.MaxInviteLive, a.UserID)
	if err != nil {
		return nil, err
	}
	m, invited, err := s.store.Meetings().InviteLive(ctx, r.MeetingID, a.UserID, users, s.cfg.MaxParticipants, s.now())
	if err != nil {
		if AsError(err).Code == CodeTooLarge {
			return nil, Errorf(CodeTooLarge, "a meeting has at most %d participants", s.cfg.MaxParticipants)
		}
		return nil, wrap(err, "meeting")
	}
	s.emitToUsers(invited, nil, "meeting:live_invite_sent", map[string]any{"meeting": m.Public(), "invited_by": a.UserID})
	return invited, nil
}

// GenerateLink handles meeting:generate_link (owner, allow_external).
func (s *Service) GenerateLink(ctx context.Context, a Actor, r MeetingRef) (*state.Link, error) {
	if err := s.checkMeetingID("meeting_id", r.MeetingID); err != nil {
		return nil, err
	}
	m, err := s.store.Meetings().Get(ctx, r.MeetingID)
	if err != nil {
		return nil, wrap(err, "meeting")
	}
	p := m.Participant(a.UserID)
	switch {
	case p == nil:
		return nil, Errorf(CodeNotFound, "meeting not found")
	case p.Role != state.RoleOwner:
		return nil, Errorf(CodeForbidden, "only the owner may generate a link")
	case !m.AllowExternal:
		return nil, Errorf(CodeForbidden, "the meeting does not allow external guests")
	case m.Status == state.StatusEnded:
		return nil, Errorf(CodeGone, "the meeting has ended")
	}
	now := s.now()
	exp := m.EndTime.Time
	if m.IsInstantCall {
		exp = now.Add(s.cfg.GuestSessionTTL)
	}
	l := &state.Link{Token: newUUID(), MeetingID: m.ID, CreatedBy: a.UserID, CreatedAt: state.At(now), ExpiresAt: state.At(exp)}
	if err := s.store.Links().CreateLink(ctx, l, now); err != nil {
		return nil, wrap(err, "link")
	}
	s.emitToRoom(m.ID, a.except(), "meeting:link_generated", map[string]any{"meeting_id": m.ID, "token": l.Token})
	return l, nil
}

// GetMeeting returns a meeting the actor participates in (REST).
func (s *Service) GetMeeting(ctx context.Context, a Actor, id string) (*state.Meeting, error) {
	if err := s.checkMeetingID("id", id); err != nil {
		return nil, err
	}
	m, err := s.store.Meetings().Get(ctx, id)
	if err != nil {
		return nil, wrap(err, "meeting")
	}
	if m.Participant(a.UserID) == nil {
		return nil, Errorf(CodeNotFound, "meeting not found")
	}
	return m.Public(), nil
}

// ListMeetings returns the actor's upcoming or past meetings (REST).
func (s *Service) ListMeetings(ctx context.Context, a Actor, upcoming bool, offset, limit int) ([]*state.Meeting, error) {
	ms, err := s.store.Meetings().ListForUser(ctx, a.UserID, upcoming, s.now(), offset, limit)
	if err != nil {
		return nil, wrap(err, "meetings")
	}
	out := make([]*state.Meeting, len(ms))
	for i, m := range ms {
		out[i] = m.Public()
	}
	return out, nil
}

// DeleteMeeting deletes a meeting (REST, owner only): meeting:cancelled to
// participants and guests.
func (s *Service) DeleteMeeting(ctx context.Context, a Actor, id string) error {
	if err := s.checkMeetingID("id", id); err != nil {
		return err
	}
	m, err := s.store.Meetings().Delete(ctx, id, a.UserID)
	if err != nil {
		return wrap(err, "meeting")
	}
	data := map[string]any{"meeting_id": id}
	if m.IsInstantCall {
		s.callEnded(ctx, m, state.ReasonCancelled)
	}
	s.emitToUsers(m.Audience(), nil, "meeting:cancelled", data)
	s.emitToGuests(id, "meeting:cancelled", data)
	return nil
}

// remind sends a reminder once per meeting across the cluster: the store
// records it (under the minutes before start; -1 marks a lead reminder that
// rounds to 0 minutes) and only the first caller broadcasts.
func (s *Service) remind(ctx context.Context, id, kind string) error {
	minutes, key := 0, 0
	if kind == reminderLead {
		minutes = s.leadMinutes()
		key = minutes
		if key == 0 {
			key = -1
		}
	}
	m, first, err := s.store.Meetings().MarkReminded(ctx, id, key)
	if err != nil {
		return err
	}
	if !first {
		return nil
	}
	s.emitToUsers(m.Audience(), nil, "meeting:reminder", map[string]any{
		"meeting_id": m.ID, "starts_at": m.StartTime, "minutes_before": minutes,
	})
	return nil
}

// endMeeting ends a scheduled meeting whose time is over and room empty.
func (s *Service) endMeeting(ctx context.Context, id string) error {
	m, ended, err := s.store.Meetings().EndIfOver(ctx, id, s.now())
	if err != nil || !ended {
		return err
	}
	s.emitToUsers(m.Audience(), nil, "meeting:updated", map[string]any{"meeting": m.Public()})
	return nil
}
