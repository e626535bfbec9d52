package service

import (
	"context"
	"encoding/json"

	"github.com/switchboard/switchboard/state"
)

// SignalTarget names the receiver of meeting:signal: a member's device
// (user_id, optional device_id) or a guest session (session_id).
type SignalTarget struct {
	UserID    string `json:"user_id"`
	DeviceID  string `json:"device_id"`
	SessionID string `json:"session_id"`
}

// SignalRequest is the payload of meeting:signal (SPEC 4.6).
type SignalRequest struct {
	MeetingID string          `json:"meeting_id"`
	To        *SignalTarget   `json:"to"`
	Envelope  json.RawMessage `json:"envelope"`
}

func (s *Service) checkSignal(r SignalRequest) error {
	if err := s.checkMeetingID("meeting_id", r.MeetingID); err != nil {
		return err
	}
	if r.To == nil {
		return Errorf(CodeInvalidPayload, "to is required")
	}
	if len(r.Envelope) == 0 || string(r.Envelope) == "null" {
		return Errorf(CodeInvalidPayload, "envelope is required")
	}
	return checkRaw("envelope", r.Envelope, s.cfg.MaxEnvelopeBytes)
}

// MemberSignal relays an envelope from a joined participant to an admitted
// guest of the same meeting.
func (s *Service) MemberSignal(ctx context.Context, a Actor, r SignalRequest) error {
	if err := s.checkSignal(r); err != nil {
		return err
	}
	if err := s.checkID("to.session_id", r.To.SessionID); err != nil {
		return err
	}
	m, err := s.joinedMeeting(ctx, a, r.MeetingID, "signal")
	if err != nil {
		return err
	}
	sess, err := s.store.Guests().Session(ctx, m.ID, r.To.SessionID)
	if err != nil {
		return wrap(err, "session")
	}
	if sess.Status != state.SessionAdmitted {
		return Errorf(CodeForbidden, "the guest is not admitted")
	}
	s.emit.Emit(Delivery{Namespace: GuestsNamespace, Rooms: []string{SessionRoom(sess.ID)}, Event: "meeting:signal",
		Data: map[string]any{"meeting_id": m.ID, "from": map[string]any{"user_id": a.UserID, "device_id": a.DeviceID}, "envelope": r.Envelope}})
	return nil
}

// GuestSignal relays an envelope from an admitted guest to a joined
// participant's device (or all the participant's devices without
// device_id).
func (s *Service) GuestSignal(ctx context.Context, g Guest, r SignalRequest) error {
	if err := s.checkSignal(r); err != nil {
		return err
	}
	if r.MeetingID != g.MeetingID {
		return Errorf(CodeNotFound, "meeting not found")
	}
	if err := s.checkID("to.user_id", r.To.UserID); err != nil {
		return err
	}
	sess, err := s.store.Guests().Session(ctx, g.MeetingID, g.SessionID)
	if err != nil {
		return wrap(err, "session")
	}
	if sess.Status != state.SessionAdmitted {
		return Errorf(CodeForbidden, "only admitted guests may signal")
	}
	m, err := s.store.Meetings().Get(ctx, g.MeetingID)
	if err != nil {
		return wrap(err, "meeting")
	}
	if !m.Joined(r.To.UserID) {
		return Errorf(CodeNotFound, "participant not joined")
	}
	room := UserRoom(r.To.UserID)
	if r.To.DeviceID != "" {
		room = DeviceRoom(r.To.UserID, r.To.DeviceID)
	}
	s.emit.Emit(Delivery{Namespace: MembersNamespace, Rooms: []string{room}, Event: "meeting:signal",
		Data: map[string]any{"meeting_id": m.ID, "from": map[string]any{"session_id": sess.ID}, "envelope": r.Envelope}})
	return nil
}

// joinedMeeting returns the meeting when the actor's socket is in its room:
// not_found for a non-participant, forbidden for a participant whose socket
// has not joined (what names the refused action).
func (s *Service) joinedMeeting(ctx context.Context, a Actor, id, what string) (*state.Meeting, error) {
	m, err := s.store.Meetings().Get(ctx, id)
	if err != nil {
		return nil, wrap(err, "meeting")
	}
	if m.Participant(a.UserID) == nil {
		return nil, Errorf(CodeNotFound, "meeting not found")
	}
	if !joinedWith(m, a) {
		return nil, Errorf(CodeForbidden, "only joined participants may %s", what)
	}
	return m, nil
}

// joinedWith reports whether the actor's own socket is in the meeting room:
// joining is per device, so a user's other devices are not joined (SPEC 4).
// Without a socket (REST), any joined device of the user counts.
func joinedWith(m *state.Meeting, a Actor) bool {
	if a.ConnID == "" {
		return m.Joined(a.UserID)
	}
	for _, c := range m.Conns[a.UserID] {
		if c == a.ConnID {
			return true
		}
	}
	return false
}
