// Package state defines Switchboard's shared state: the objects of the
// contract (meetings, guest sessions, invitation links, presence) and the store
// interfaces that hold them. Each store method is one atomic transition: it
// checks its preconditions, changes state and reports what changed, so that
// the caller decides what to broadcast without reading again.
//
// Two implementations live side by side: state/memory (one node, embedded
// default) and state/redis (a cluster). Both pass the suite in state/statetest.
package state

import (
	"encoding/json"
	"errors"
)

// Errors returned by stores. Implementations wrap them with context; callers
// compare with errors.Is. Each maps to one ack code of the contract.
var (
	// ErrNotFound: the object does not exist, or the actor may not see it.
	ErrNotFound = errors.New("not found")
	// ErrForbidden: the actor sees the object but lacks the role or state.
	ErrForbidden = errors.New("forbidden")
	// ErrConflict: the transition was already taken or does not apply now.
	ErrConflict = errors.New("conflict")
	// ErrGone: the meeting has ended, or the link or session has expired.
	ErrGone = errors.New("gone")
	// ErrInvalid: the transition would leave invalid data (end before start).
	ErrInvalid = errors.New("invalid")
	// ErrTooLarge: a list would grow past its configured limit.
	ErrTooLarge = errors.New("too large")
	// ErrRateLimited: the transition is refused inside a cooldown.
	ErrRateLimited = errors.New("rate limited")
	// ErrUnavailable: the store could not be reached.
	ErrUnavailable = errors.New("unavailable")
)

// Meeting statuses.
const (
	StatusScheduled = "scheduled"
	StatusLive      = "live"
	StatusEnded     = "ended"
)

// Participant roles.
const (
	RoleOwner  = "owner"
	RoleMember = "member"
)

// Participant statuses.
const (
	PartInvited  = "invited"
	PartRinging  = "ringing"
	PartAccepted = "accepted"
	PartDeclined = "declined"
	PartJoined   = "joined"
	PartLeft     = "left"
	PartMissed   = "missed"
)

// Call end reasons.
const (
	ReasonCompleted = "completed"
	ReasonDeclined  = "declined"
	ReasonTimeout   = "timeout"
	ReasonCancelled = "cancelled"
)

// Guest session statuses.
const (
	SessionRegistered = "registered"
	SessionWaiting    = "waiting"
	SessionAdmitted   = "admitted"
	SessionDeclined   = "declined"
	SessionLeft       = "left"
)

// Meeting is a scheduled meeting or an instant call (SPEC 2.1). Fields whose
// JSON name starts with an underscore are internal bookkeeping: stores keep
// them, Public drops them before anything is sent to a client.
type Meeting struct {
	ID            string        `json:"meeting_id"`
	IsInstantCall bool          `json:"is_instant_call"`
	Title         string        `json:"title"`
	Description   string        `json:"description"`
	StartTime     Time          `json:"start_time"`
	EndTime       Time          `json:"end_time"`
	AllowExternal bool          `json:"allow_external"`
	CreatedBy     string        `json:"created_by"`
	Status        string        `json:"status"`
	StartedAt     *Time         `json:"started_at"`
	EndedAt       *Time         `json:"ended_at"`
	CreatedAt     Time          `json:"created_at"`
	UpdatedAt     Time          `json:"updated_at"`
	Participants  []Participant `json:"participants"`
	ActiveCount   int           `json:"active_count"`
	Version       int64         `json:"version"`

	// Conns maps a user id to the connection ids (socket ids) of that user
	// that are in the meeting room. A user is joined while the list is not
	// empty; ActiveCount is the number of users with a non-empty list.
	Conns map[string][]string `json:"_conns,omitempty"`
	// Answered is set once a participant other than the owner accepted a
	// call; it decides between the end reasons completed and cancelled.
	Answered bool `json:"_answered,omitempty"`
	// Reminded records the reminders already sent, by minutes before start
	// ("15", "0"), so that each is sent once.
	Reminded map[string]bool `json:"_reminded,omitempty"`
}

// Participant is one user listed in a meeting.
type Participant struct {
	UserID   string `json:"user_id"`
	Role     string `json:"role"`
	Status   string `json:"status"`
	JoinedAt *Time  `json:"joined_at"`
	LeftAt   *Time  `json:"left_at"`
	// RingDeadline is when a ringing participant becomes missed.
	RingDeadline *Time `json:"_ring_deadline,omitempty"`
}

// Participant returns the entry of user, or nil.
func (m *Meeting) Participant(user string) *Participant {
	for i := range m.Participants {
		if m.Participants[i].UserID == user {
			return &m.Participants[i]
		}
	}
	return nil
}

// Joined reports whether user has at least one connection in the meeting room.
func (m *Meeting) Joined(user string) bool { return len(m.Conns[user]) > 0 }

// Public returns a deep copy of m without the internal fields, as sent to
// clients.
func (m *Meeting) Public() *Meeting {
	c := m.Clone()
	if c == nil {
		return nil
	}
	c.Conns, c.Answered, c.Reminded = nil, false, nil
	for i := range c.Participants {
		c.Participants[i].RingDeadline = nil
	}
	return c
}

func cloneTime(t *Time) *Time {
	if t == nil {
		return nil
	}
	v := *t
	return &v
}

// Clone returns a deep copy of m, internal fields included.
func (m *Meeting) Clone() *Meeting {
	if m == nil {
		return nil
	}
	c := *m
	c.StartedAt, c.EndedAt = cloneTime(m.StartedAt), cloneTime(m.EndedAt)
	c.Participants = make([]Participant, len(m.Participants))
	copy(c.Participants, m.Participants)
	for i := range c.Participants {
		p := &c.Participants[i]
		p.JoinedAt, p.LeftAt, p.RingDeadline = cloneTime(p.JoinedAt), cloneTime(p.LeftAt), cloneTime(p.RingDeadline)
	}
	if m.Conns != nil {
		c.Conns = make(map[string][]string, len(m.Conns))
		for u, cs := range m.Conns {
			c.Conns[u] = append([]string(nil), cs...)
		}
	}
	if m.Reminded != nil {
		c.Reminded = make(map[string]bool, len(m.Reminded))
		for k, v := range m.Reminded {
			c.Reminded[k] = v
		}
	}
	return &c
}

// Audience returns the user ids that hear broadcasts to "participants": every
// participant whose status is not declined or left (SPEC 4).
func (m *Meeting) Audience() []string {
	out := make([]string, 0, len(m.Participants))
	for _, p := range m.Participants {
		if p.Status != PartDeclined && p.Status != PartLeft {
			out = append(out, p.UserID)
		}
	}
	return out
}

// Everyone returns every user id ever listed in the meeting.
func (m *Meeting) Everyone() []string {
	out := make([]string, 0, len(m.Participants))
	for _, p := range m.Participants {
		out = append(out, p.UserID)
	}
	return out
}

// Session is an external guest's session (SPEC 2.2).
type Session struct {
	ID          string          `json:"session_id"`
	MeetingID   string          `json:"meeting_id"`
	DisplayName string          `json:"display_name"`
	Status      string          `json:"status"`
	CreatedAt   Time            `json:"created_at"`
	ExpiresAt   Time            `json:"expires_at"`
	AdmittedBy  string          `json:"admitted_by,omitempty"`
	DecidedAt   *Time           `json:"decided_at"`
	Keys        json.RawMessage `json:"keys,omitempty"`

	// TokenHash is the hex SHA-256 of the session token; the token itself is
	// never stored.
	TokenHash string `json:"_token_hash,omitempty"`
	// Conns are the guest's live connection ids.
	Conns []string `json:"_conns,omitempty"`
	// RetryAfter is when a declined guest may ask again.
	RetryAfter *Time `json:"_retry_after,omitempty"`
	// QueuedAt is when the guest entered the admission queue.
	QueuedAt *Time `json:"_queued_at,omitempty"`
}

// Public returns a copy of s without the internal fields.
func (s *Session) Public() *Session {
	if s == nil {
		return nil
	}
	c := *s
	c.TokenHash, c.Conns, c.RetryAfter, c.QueuedAt = "", nil, nil, nil
	return &c
}

// Link is an external invitation link (SPEC 2.3).
type Link struct {
	Token     string `json:"token"`
	MeetingID string `json:"meeting_id"`
	CreatedBy string `json:"created_by"`
	CreatedAt Time   `json:"created_at"`
	ExpiresAt Time   `json:"expires_at"`
	MaxUses   int    `json:"max_uses,omitempty"`
	Uses      int    `json:"uses"`
	Revoked   bool   `json:"revoked"`
}

// Presence statuses of a user.
const (
	Online  = "online"
	Busy    = "busy"
	Offline = "offline"
)

// Conn is one live socket of a member.
type Conn struct {
	ID       string `json:"id"`     // socket id, unique in the cluster
	UserID   string `json:"user"`   // JWT sub
	DeviceID string `json:"device"` // JWT did, may be empty
	NodeID   string `json:"node"`   // node that holds the socket
}

// UserPresence is what the presence query returns for one user.
type UserPresence struct {
	UserID   string `json:"user_id"`
	Status   string `json:"status"`
	LastSeen *Time  `json:"last_seen"`
}

// Transition is a change of a user's presence status. From == To means
// nothing changed and nothing is broadcast.
type Transition struct {
	UserID string
	From   string
	To     string
	At     Time
}

// Changed reports whether the status changed.
func (t Transition) Changed() bool { return t.From != t.To }
