// Package service holds Switchboard's domain rules: who may do what, which
// state transition each client event makes, and who must hear about it. It
// knows nothing about sockets or Redis: it talks to the state interfaces and
// hands each broadcast to an Emitter as a Delivery naming rooms, so the rules
// are tested without a network.
package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/state"
)

// Namespaces of the Socket.IO server.
const (
	MembersNamespace = "/"
	GuestsNamespace  = "/external"
)

// Room names. Every member socket is in UserRoom and, with a device id, in
// DeviceRoom; sockets that joined a meeting are in MeetingRoom; every guest
// socket of a meeting's sessions is in GuestsRoom and SessionRoom.
func UserRoom(user string) string           { return "user:" + user }
func DeviceRoom(user, device string) string { return "device:" + user + ":" + device }
func MeetingRoom(id string) string          { return "meeting:" + id }
func GuestsRoom(meetingID string) string    { return "guests:" + meetingID }
func SessionRoom(sessionID string) string   { return "session:" + sessionID }

// Delivery is one broadcast: Event with Data to every socket of Namespace in
// any of Rooms (every socket of the namespace when Rooms is empty), except
// the sockets in any of Except (a socket id names the socket's own room).
type Delivery struct {
	Namespace string
	Rooms     []string
	Except    []string
	Event     string
	Data      any
}

// Emitter carries deliveries to sockets, on this node and on every other.
type Emitter interface {
	Emit(d Delivery)
}

// EmitterFunc adapts a function to Emitter.
type EmitterFunc func(Delivery)

// Emit calls f(d).
func (f EmitterFunc) Emit(d Delivery) { f(d) }

// Actor is the member behind a socket or a REST call.
type Actor struct {
	UserID   string
	DeviceID string
	// ConnID is the socket id; empty for REST calls.
	ConnID string
	// Name is the JWT name claim (opaque, may be ciphertext).
	Name string
}

// Conn returns the presence connection of the actor on node.
func (a Actor) Conn(node string) state.Conn {
	return state.Conn{ID: a.ConnID, UserID: a.UserID, DeviceID: a.DeviceID, NodeID: node}
}

func (a Actor) except() []string {
	if a.ConnID == "" {
		return nil
	}
	return []string{a.ConnID}
}

// Guest is the external guest behind an /external socket.
type Guest struct {
	SessionID string
	MeetingID string
	ConnID    string
}

// Config holds the rules' durations and limits.
type Config struct {
	NodeID            string
	RingTimeout       time.Duration
	PresenceTTL       time.Duration
	PresenceGrace     time.Duration
	AdmissionCooldown time.Duration
	MeetingRetention  time.Duration
	MaxCallLength     time.Duration
	GuestSessionTTL   time.Duration
	LastSeenTTL       time.Duration
	ReminderLead      time.Duration
	JobLease          time.Duration

	MaxParticipants     int
	MaxRecipients       int
	MaxInviteLive       int
	MaxConnsPerUser     int
	MaxTitleBytes       int
	MaxDescriptionBytes int
	MaxDisplayNameBytes int
	MaxEnvelopeBytes    int
	MaxPresenceQuery    int
	MaxIDBytes          int
}

// DefaultConfig returns the contract's defaults (SPEC 7).
func DefaultConfig() Config {
	return Config{
		NodeID:              "node",
		RingTimeout:         60 * time.Second,
		PresenceTTL:         120 * time.Second,
		PresenceGrace:       5 * time.Second,
		AdmissionCooldown:   5 * time.Second,
		MeetingRetention:    7 * 24 * time.Hour,
		MaxCallLength:       24 * time.Hour,
		GuestSessionTTL:     24 * time.Hour,
		LastSeenTTL:         30 * 24 * time.Hour,
		ReminderLead:        15 * time.Minute,
		JobLease:            30 * time.Second,
		MaxParticipants:     256,
		MaxRecipients:       64,
		MaxInviteLive:       100,
		MaxConnsPerUser:     20,
		MaxTitleBytes:       4 << 10,
		MaxDescriptionBytes: 16 << 10,
		MaxDisplayNameBytes: 1 << 10,
		MaxEnvelopeBytes:    64 << 10,
		MaxPresenceQuery:    500,
		MaxIDBytes:          256,
	}
}

// Service applies the rules. It is safe for concurrent use.
type Service struct {
	cfg   Config
	store state.Store
	emit  Emitter
	now   func() time.Time
	log   zerolog.Logger
}

// New returns a Service. now is the clock every rule reads.
func New(cfg Config, store state.Store, emit Emitter, now func() time.Time, log zerolog.Logger) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{cfg: cfg, store: store, emit: emit, now: now, log: log}
}

// Config returns the service's configuration.
func (s *Service) Config() Config { return s.cfg }

// Store returns the state store.
func (s *Service) Store() state.Store { return s.store }

// Now returns the service clock's time.
func (s *Service) Now() time.Time { return s.now() }

// Ack codes of the contract (SPEC 1).
const (
	CodeUnauthorized   = "unauthorized"
	CodeForbidden      = "forbidden"
	CodeNotFound       = "not_found"
	CodeInvalidPayload = "invalid_payload"
	CodeConflict       = "conflict"
	CodeGone           = "gone"
	CodeRateLimited    = "rate_limited"
	CodeTooLarge       = "too_large"
	CodeUnavailable    = "unavailable"
	CodeInternal       = "internal"
)

// Error is a refusal with a stable code and a human sentence.
type Error struct {
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsError maps any error to an *Error: state errors to their codes, context
// deadlines and store outages to unavailable, anything else to internal.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	code, msg := CodeInternal, "internal error"
	switch {
	case errors.Is(err, state.ErrNotFound):
		code, msg = CodeNotFound, "not found"
	case errors.Is(err, state.ErrForbidden):
		code, msg = CodeForbidden, "not allowed"
	case errors.Is(err, state.ErrConflict):
		code, msg = CodeConflict, "already decided or not applicable now"
	case errors.Is(err, state.ErrGone):
		code, msg = CodeGone, "no longer available"
	case errors.Is(err, state.ErrInvalid):
		code, msg = CodeInvalidPayload, "invalid request"
	case errors.Is(err, state.ErrTooLarge):
		code, msg = CodeTooLarge, "limit exceeded"
	case errors.Is(err, state.ErrRateLimited):
		code, msg = CodeRateLimited, "too soon, try again later"
	case errors.Is(err, state.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		code, msg = CodeUnavailable, "state store unavailable"
	}
	return &Error{Code: code, Message: msg, Err: err}
}

// wrap turns a store error into an *Error whose message names what failed.
func wrap(err error, what string) error {
	if err == nil {
		return nil
	}
	e := AsError(err)
	if e.Code == CodeNotFound {
		e.Message = what + " not found"
	}
	return e
}

func newID(prefix string) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Errorf("crypto/rand: %w", err))
	}
	return prefix + hex.EncodeToString(b[:])
}

func ts(t time.Time) string { return state.At(t).String() }

// emitTo sends event to the given users' sockets on the members namespace.
func (s *Service) emitToUsers(users []string, except []string, event string, data any) {
	if len(users) == 0 {
		return
	}
	rooms := make([]string, len(users))
	for i, u := range users {
		rooms[i] = UserRoom(u)
	}
	s.emit.Emit(Delivery{Namespace: MembersNamespace, Rooms: rooms, Except: except, Event: event, Data: data})
}

// emitToRoom sends event to the joined participants of a meeting.
func (s *Service) emitToRoom(meetingID string, except []string, event string, data any) {
	s.emit.Emit(Delivery{Namespace: MembersNamespace, Rooms: []string{MeetingRoom(meetingID)}, Except: except, Event: event, Data: data})
}

// emitToGuests sends event to every guest socket of a meeting.
func (s *Service) emitToGuests(meetingID string, event string, data any) {
	s.emit.Emit(Delivery{Namespace: GuestsNamespace, Rooms: []string{GuestsRoom(meetingID)}, Event: event, Data: data})
}
