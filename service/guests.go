package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard/switchboard/state"
)

// RegisterRequest is the body of POST /api/meetings/external/register.
type RegisterRequest struct {
	Token       string          `json:"token"`
	DisplayName *string         `json:"display_name"`
	Keys        json.RawMessage `json:"keys"`
}

// Registration is what a guest receives from registering.
type Registration struct {
	SessionID    string     `json:"session_id"`
	SessionToken string     `json:"session_token"`
	MeetingID    string     `json:"meeting_id"`
	ExpiresAt    state.Time `json:"expires_at"`
}

// LinkInfo is what GET /api/meetings/external/join/:token shows a guest.
type LinkInfo struct {
	MeetingID             string     `json:"meeting_id"`
	Title                 string     `json:"title"`
	Description           string     `json:"description"`
	StartTime             state.Time `json:"start_time"`
	EndTime               state.Time `json:"end_time"`
	AllowExternal         bool       `json:"allow_external"`
	HasActiveParticipants bool       `json:"has_active_participants"`
}

// GuestJoinRequest is the payload of meeting:guest_join.
type GuestJoinRequest struct {
	MeetingID   string  `json:"meeting_id"`
	SessionID   string  `json:"session_id"`
	DisplayName *string `json:"display_name"`
}

// DecisionRequest is the payload of meeting:admit_guest and
// meeting:decline_guest.
type DecisionRequest struct {
	MeetingID string `json:"meeting_id"`
	SessionID string `json:"session_id"`
}

func newUUID() string { return uuid.NewString() }

// newSessionToken returns a secret of 256 random bits and its stored hash.
func newSessionToken() (token, hash string) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Errorf("crypto/rand: %w", err))
	}
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, hashToken(token)
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func (s *Service) checkToken(token string) error {
	if _, err := uuid.Parse(token); err != nil || len(token) != 36 {
		return Errorf(CodeNotFound, "invitation link not found")
	}
	return nil
}

// LinkInfo answers GET /api/meetings/external/join/:token.
func (s *Service) LinkInfo(ctx context.Context, token string) (*LinkInfo, error) {
	if err := s.checkToken(token); err != nil {
		return nil, err
	}
	l, err := s.store.Links().GetLink(ctx, token, s.now())
	if err != nil {
		return nil, linkErr(err)
	}
	m, err := s.store.Meetings().Get(ctx, l.MeetingID)
	if err != nil {
		return nil, linkErr(err)
	}
	if m.Status == state.StatusEnded {
		return nil, Errorf(CodeGone, "the meeting has ended")
	}
	return &LinkInfo{MeetingID: m.ID, Title: m.Title, Description: m.Description, StartTime: m.StartTime,
		EndTime: m.EndTime, AllowExternal: m.AllowExternal, HasActiveParticipants: m.ActiveCount > 0}, nil
}

func linkErr(err error) error {
	switch {
	case errors.Is(err, state.ErrNotFound):
		return Errorf(CodeNotFound, "invitation link not found")
	case errors.Is(err, state.ErrGone):
		return Errorf(CodeGone, "invitation link expired, revoked or used up")
	}
	return AsError(err)
}

// Register answers POST /api/meetings/external/register: it counts one use
// of the link and creates a guest session.
func (s *Service) Register(ctx context.Context, r RegisterRequest) (*Registration, error) {
	if err := s.checkToken(r.Token); err != nil {
		return nil, err
	}
	name := ""
	if r.DisplayName != nil {
		name = *r.DisplayName
	}
	if name == "" {
		return nil, Errorf(CodeInvalidPayload, "display_name is required")
	}
	if err := checkOpaque("display_name", name, s.cfg.MaxDisplayNameBytes); err != nil {
		return nil, err
	}
	if err := checkRaw("keys", r.Keys, s.cfg.MaxEnvelopeBytes); err != nil {
		return nil, err
	}
	now := s.now()
	l, err := s.store.Links().UseLink(ctx, r.Token, now)
	if err != nil {
		return nil, linkErr(err)
	}
	token, hash := newSessionToken()
	exp := now.Add(s.cfg.GuestSessionTTL)
	sess := &state.Session{ID: newUUID(), MeetingID: l.MeetingID, DisplayName: name, Status: state.SessionRegistered,
		CreatedAt: state.At(now), ExpiresAt: state.At(exp), TokenHash: hash}
	if len(r.Keys) > 0 && string(r.Keys) != "null" {
		sess.Keys = r.Keys
	}
	if err := s.store.Guests().CreateSession(ctx, sess, now); err != nil {
		return nil, wrap(err, "session")
	}
	return &Registration{SessionID: sess.ID, SessionToken: token, MeetingID: sess.MeetingID, ExpiresAt: sess.ExpiresAt}, nil
}

// AuthenticateGuest checks the credentials of an /external handshake and
// returns the session. Every failure is unauthorized.
func (s *Service) AuthenticateGuest(ctx context.Context, sessionID, token string) (*state.Session, error) {
	if sessionID == "" || token == "" || len(sessionID) > s.cfg.MaxIDBytes || len(token) > 512 {
		return nil, Errorf(CodeUnauthorized, "session_id and session_token are required")
	}
	sess, err := s.store.Guests().GetSession(ctx, sessionID)
	if err != nil {
		if errors.Is(err, state.ErrNotFound) {
			return nil, Errorf(CodeUnauthorized, "unknown or expired session")
		}
		return nil, AsError(err)
	}
	if subtle.ConstantTimeCompare([]byte(hashToken(token)), []byte(sess.TokenHash)) != 1 {
		return nil, Errorf(CodeUnauthorized, "invalid session credentials")
	}
	if !sess.ExpiresAt.After(s.now()) {
		return nil, Errorf(CodeUnauthorized, "session expired")
	}
	return sess, nil
}

// GuestConnect records a guest socket. A reconnect within the grace keeps
// the session's status. The socket is also indexed under this node (as a
// presence connection of a pseudo-user that is never announced), so a
// survivor that reaps this node finds and releases it.
func (s *Service) GuestConnect(ctx context.Context, g Guest) error {
	now := s.now()
	if _, err := s.store.Guests().Connect(ctx, g.MeetingID, g.SessionID, g.ConnID, now); err != nil {
		return wrap(err, "session")
	}
	c := state.Conn{ID: g.ConnID, UserID: guestConnUser(g.MeetingID, g.SessionID), NodeID: s.cfg.NodeID}
	if _, err := s.store.Presence().Connect(ctx, c, s.cfg.GuestSessionTTL, 0, now); err != nil {
		return wrap(err, "presence")
	}
	return nil
}

// guestPrefix marks the pseudo-users under which guest sockets are indexed.
const guestPrefix = "guest\x00"

func guestConnUser(meetingID, sessionID string) string {
	return guestPrefix + meetingID + "\x00" + sessionID
}

// parseGuestConnUser reverses guestConnUser.
func parseGuestConnUser(user string) (meetingID, sessionID string, ok bool) {
	rest, ok := strings.CutPrefix(user, guestPrefix)
	if !ok {
		return "", "", false
	}
	meetingID, sessionID, ok = strings.Cut(rest, "\x00")
	return meetingID, sessionID, ok
}

// GuestDisconnect handles a guest socket that went away: after the grace
// without a new socket the session is left (grace 0: now).
func (s *Service) GuestDisconnect(ctx context.Context, g Guest, grace time.Duration) error {
	now := s.now()
	pseudo := guestConnUser(g.MeetingID, g.SessionID)
	if res, err := s.store.Presence().Disconnect(ctx, pseudo, g.ConnID, now); err != nil {
		s.log.Warn().Err(err).Msg("unindex guest socket")
	} else if res.LastConn {
		if _, err := s.store.Presence().SettleOffline(ctx, pseudo, time.Minute, now); err != nil {
			s.log.Warn().Err(err).Msg("unindex guest socket")
		}
	}
	_, last, err := s.store.Guests().Disconnect(ctx, g.MeetingID, g.SessionID, g.ConnID, now)
	if err != nil {
		if errors.Is(err, state.ErrNotFound) {
			return nil
		}
		return wrap(err, "session")
	}
	if !last {
		return nil
	}
	if grace <= 0 {
		return s.settleGuest(ctx, g.MeetingID, g.SessionID)
	}
	job := state.Job{ID: "guestleft:" + g.SessionID, Kind: JobGuestLeft, Subject: g.SessionID, Arg: g.MeetingID, Due: state.At(now.Add(grace))}
	return wrap(s.store.Jobs().Schedule(ctx, job), "jobs")
}

func (s *Service) settleGuest(ctx context.Context, meetingID, sessionID string) error {
	sess, changed, err := s.store.Guests().SettleLeft(ctx, meetingID, sessionID, s.now())
	if errors.Is(err, state.ErrNotFound) {
		return nil
	}
	if err != nil || !changed {
		return err
	}
	s.emitToRoom(sess.MeetingID, nil, "meeting:guest_left", map[string]any{"meeting_id": sess.MeetingID, "session_id": sess.ID})
	return nil
}

// GuestJoin handles meeting:guest_join: the guest asks to be admitted.
func (s *Service) GuestJoin(ctx context.Context, g Guest, r GuestJoinRequest) error {
	if r.MeetingID == "" || r.SessionID == "" {
		return Errorf(CodeInvalidPayload, "meeting_id and session_id are required")
	}
	if r.MeetingID != g.MeetingID || r.SessionID != g.SessionID {
		return Errorf(CodeForbidden, "meeting_id and session_id must be those of this guest session")
	}
	if r.DisplayName != nil {
		if *r.DisplayName == "" {
			return Errorf(CodeInvalidPayload, "display_name must not be empty")
		}
		if err := checkOpaque("display_name", *r.DisplayName, s.cfg.MaxDisplayNameBytes); err != nil {
			return err
		}
	}
	m, err := s.store.Meetings().Get(ctx, g.MeetingID)
	if err != nil {
		return wrap(err, "meeting")
	}
	switch {
	case m.Status == state.StatusEnded:
		return Errorf(CodeGone, "the meeting has ended")
	case !m.AllowExternal:
		return Errorf(CodeForbidden, "the meeting does not allow external guests")
	case m.ActiveCount == 0:
		return Errorf(CodeConflict, "the host has not joined yet; wait for meeting:first_participant_joined")
	}
	now := s.now()
	sess, err := s.store.Guests().Request(ctx, g.MeetingID, g.SessionID, r.DisplayName, now)
	if err != nil {
		if errors.Is(err, state.ErrRateLimited) {
			return Errorf(CodeRateLimited, "declined recently; ask again after the cooldown")
		}
		if errors.Is(err, state.ErrConflict) {
			return Errorf(CodeConflict, "this session already asked to join")
		}
		return wrap(err, "session")
	}
	s.emitToRoom(m.ID, nil, "meeting:guest_join", map[string]any{
		"meeting_id": m.ID, "session_id": sess.ID, "display_name": sess.DisplayName, "timestamp": ts(now),
	})
	return nil
}

// GuestLeave handles meeting:leave from a guest.
func (s *Service) GuestLeave(ctx context.Context, g Guest, r MeetingRef) error {
	if r.MeetingID != g.MeetingID {
		return Errorf(CodeNotFound, "meeting not found")
	}
	sess, changed, err := s.store.Guests().Leave(ctx, g.MeetingID, g.SessionID, s.now())
	if err != nil {
		return wrap(err, "session")
	}
	if changed {
		s.emitToRoom(sess.MeetingID, nil, "meeting:guest_left", map[string]any{"meeting_id": sess.MeetingID, "session_id": sess.ID})
	}
	return nil
}

// Decide handles meeting:admit_guest (admit) and meeting:decline_guest.
func (s *Service) Decide(ctx context.Context, a Actor, r DecisionRequest, admit bool) error {
	if err := s.checkMeetingID("meeting_id", r.MeetingID); err != nil {
		return err
	}
	if err := s.checkID("session_id", r.SessionID); err != nil {
		return err
	}
	m, err := s.joinedMeeting(ctx, a, r.MeetingID, "admit or decline guests")
	if err != nil {
		return err
	}
	sess, err := s.store.Guests().Decide(ctx, r.MeetingID, r.SessionID, a.UserID, admit, s.cfg.AdmissionCooldown, s.now())
	if err != nil {
		if errors.Is(err, state.ErrConflict) {
			return Errorf(CodeConflict, "the guest is not waiting: the first decision wins")
		}
		return wrap(err, "session")
	}
	data := map[string]any{"meeting_id": m.ID, "session_id": sess.ID, "status": sess.Status}
	if admit {
		data["admitted_by"] = a.UserID
	}
	s.emitToRoom(m.ID, a.except(), "meeting:admission_status", data)
	s.emit.Emit(Delivery{Namespace: GuestsNamespace, Rooms: []string{SessionRoom(sess.ID)}, Event: "meeting:admission_status", Data: data})
	return nil
}
