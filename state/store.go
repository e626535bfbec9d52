package state

import (
	"context"
	"time"
)

// Store bundles every concern. A node holds one.
type Store interface {
	Meetings() Meetings
	Presence() Presence
	Guests() Guests
	Links() Links
	Jobs() Jobs
	Nodes() Nodes
	// Ping reports whether the backing store answers (readiness).
	Ping(ctx context.Context) error
	// Close releases connections.
	Close() error
}

// MeetingPatch holds the fields of meeting:update; nil means unchanged.
type MeetingPatch struct {
	Title         *string
	Description   *string
	StartTime     *Time
	EndTime       *Time
	AllowExternal *bool
}

// JoinResult reports what a Join or Accept changed.
type JoinResult struct {
	Meeting *Meeting
	// Already: the connection was in the room before; nothing changed.
	Already bool
	// UserJoined: this was the user's first connection in the room.
	UserJoined bool
	// FirstJoined: the room was empty before (active_count went 0 → 1).
	FirstJoined bool
	// Started: a scheduled meeting became live by this join.
	Started bool
	// Presence is the status transition of the user that recording the
	// meeting in the connection's presence entry caused (see Join); nil when
	// it was not recorded, and the caller should call Presence.SetJoined.
	Presence *Transition
}

// LeaveResult reports what a Leave changed.
type LeaveResult struct {
	Meeting *Meeting // the meeting after the leave (the last state if deleted)
	// UserLeft: the user's last connection left the room.
	UserLeft bool
	// Ended: the meeting or call ended by this leave.
	Ended bool
	// Deleted: the call was deleted (calls are deleted when they end).
	Deleted bool
	// Reason is the call end reason when a call ended.
	Reason string
	// Presence is the status transition of the user that forgetting the
	// meeting in the connection's presence entry caused (see Leave); nil
	// when it was not forgotten, and the caller should call
	// Presence.SetJoined.
	Presence *Transition
}

// RingResult reports what a Ring changed.
type RingResult struct {
	Meeting *Meeting
	// Ringing lists the users now ringing (this Ring rang them).
	Ringing []string
	// TimeoutErr is why the ring-timeout job could not be scheduled, when
	// the ring itself was applied; nil when the job was scheduled (or none
	// was given).
	TimeoutErr error
}

// CallResult reports what a Decline or ExpireRings changed.
type CallResult struct {
	Meeting *Meeting
	// Missed lists the users that became missed (ExpireRings).
	Missed []string
	// Ended, Deleted, Reason: as in LeaveResult.
	Ended   bool
	Deleted bool
	Reason  string
}

// Meetings holds meetings and instant calls, their participants and which
// connections are in each meeting room. Every method taking an actor applies
// the visibility rule of the contract: an actor who is not a participant gets
// ErrNotFound. Meetings whose key has expired do not exist (ErrNotFound).
type Meetings interface {
	// Create stores m (ID, participants, times and status already set by the
	// caller) with its retention TTL: calls until EndTime, scheduled meetings
	// until EndTime + retention. It indexes m for every participant's
	// ListForUser. If m.Conns is set (a call's creating socket) it is stored
	// as given. ErrConflict if the id exists.
	//
	// When m.Conns holds exactly one connection of the creator
	// (m.CreatedBy), Create also records the meeting in that connection's
	// presence entry, as Join does, and returns the status transition; nil
	// otherwise, or when it could not be recorded (the caller may call
	// Presence.SetJoined). A refused Create takes back a mark it added.
	Create(ctx context.Context, m *Meeting, retention time.Duration, now time.Time) (*Transition, error)

	// Get returns the meeting. ErrNotFound if absent.
	Get(ctx context.Context, id string) (*Meeting, error)

	// ListForUser returns the meetings user is a participant of, upcoming
	// (EndTime >= now and not ended) or past (the others), ordered by
	// StartTime (upcoming ascending, past descending), skipping offset and
	// returning at most limit. Deleted meetings are dropped from the index.
	ListForUser(ctx context.Context, user string, upcoming bool, now time.Time, offset, limit int) ([]*Meeting, error)

	// Update applies p. Only the owner (else ErrForbidden); not on an ended
	// meeting (ErrConflict); the resulting EndTime must be after StartTime
	// (else ErrInvalid). Bumps Version and UpdatedAt; extends the TTL to the
	// new EndTime + retention.
	Update(ctx context.Context, id, actor string, p MeetingPatch, retention time.Duration, now time.Time) (*Meeting, error)

	// Start makes a scheduled meeting live (StartedAt = now). Only the
	// owner (ErrForbidden); a live meeting is ErrConflict, an ended one
	// ErrGone.
	Start(ctx context.Context, id, actor string, now time.Time) (*Meeting, error)

	// Join puts connection conn of actor in the meeting room: the
	// participant's status becomes joined and JoinedAt is set on the user's
	// first connection. A scheduled meeting becomes live (Started). Any
	// participant whose status is not declined may join a meeting that has
	// not ended (ended: ErrGone; declined: ErrForbidden). Joining again with
	// the same conn changes nothing (Already).
	//
	// A join (Already too) also records the meeting in conn's presence
	// entry, as Presence.SetJoined(actor, conn, id, true) would, and reports
	// the transition in JoinResult.Presence, so that the busy status costs
	// no second round trip. The two are each atomic, not atomic together: a
	// store may record the meeting before it knows the join's outcome and
	// forget it again when the join is refused. An empty conn records
	// nothing (Presence nil).
	Join(ctx context.Context, id, actor, conn string, now time.Time) (*JoinResult, error)

	// Leave takes conn out of the meeting room. Not in the room: ErrConflict
	// (the actor is a participant but not joined with conn). When the user's
	// last connection leaves, the participant becomes left with LeftAt
	// (UserLeft). A call whose last present user (status joined or accepted
	// with a connection in the room) left ends and is deleted, with reason
	// completed if Answered else cancelled. A scheduled meeting whose
	// EndTime has passed ends when its room becomes empty (status ended).
	//
	// A leave also forgets the meeting in conn's presence entry, as
	// Presence.SetJoined(actor, conn, id, false) would, and reports the
	// transition in LeaveResult.Presence (a store may forget it whatever
	// the leave's outcome: a connection not in the room must not count as
	// in the meeting either). An empty conn forgets nothing.
	Leave(ctx context.Context, id, actor, conn string, now time.Time) (*LeaveResult, error)

	// InviteLive adds users as invited participants of a live meeting. The
	// actor must be joined (ErrForbidden); the meeting must be live
	// (scheduled: ErrConflict; ended: ErrGone). Users already listed with
	// status declined, left or missed are invited again; others already
	// listed are untouched. More than maxParticipants in all: ErrTooLarge,
	// nothing changes. Returns the meeting and the users whose status
	// became invited. Indexes them for ListForUser.
	InviteLive(ctx context.Context, id, actor string, users []string, maxParticipants int, now time.Time) (*Meeting, []string, error)

	// Ring marks the online recipients of call id as ringing until
	// ringDeadline. The actor must be a participant; every recipient must be
	// a participant other than the actor (else ErrInvalid, nothing changes).
	// Only recipients that are online at now, by the store's own presence
	// (not offline in Presence.Query), and whose status is invited, ringing
	// or missed ring; the others are skipped (offline ones stay invited).
	// Returns the call and the users now ringing. Not a call: ErrNotFound.
	// The presence is read in the ring's round trip where the store can (on
	// one Redis; a Redis Cluster reads it in one round trip before).
	//
	// timeout is the ring-timeout job (due at ringDeadline, normally). Ring
	// schedules it as Jobs.Schedule would, in the same round trip as the
	// ring, so that a ring never waits for a second round trip to be timed
	// out. The job is scheduled whatever the ring's outcome: also when the
	// ring rings nobody, and when it is refused. That is what lets a store
	// send the job without waiting for the ring's answer (the Redis store
	// pipelines both: the job and the call live in different Cluster
	// slots), and it is harmless: a ring-timeout job that finds nobody
	// ringing does nothing. The ring and the job are each atomic, not
	// atomic together. The error Ring returns is the ring's (a refusal, or
	// the store unreachable, in which case the job may or may not have been
	// written). When the ring was applied but the job could not be written,
	// Ring returns the ring's result with the job's error in
	// RingResult.TimeoutErr; the ring is not undone. A timeout with an empty
	// ID schedules nothing.
	Ring(ctx context.Context, id, actor string, recipients []string, ringDeadline time.Time, timeout Job, now time.Time) (*RingResult, error)

	// Accept: a ringing or invited participant of a call accepts (else
	// ErrConflict); status accepted, conn joins the room (as Join, its
	// presence entry too), Answered is set. Not a call: ErrNotFound.
	Accept(ctx context.Context, id, actor, conn string, now time.Time) (*JoinResult, error)

	// Decline: a ringing or invited participant of a call declines (else
	// ErrConflict). When every participant other than the owner is declined
	// or missed, the call ends (reason declined) and is deleted.
	Decline(ctx context.Context, id, actor string, now time.Time) (*CallResult, error)

	// ExpireRings turns every ringing participant whose ring deadline is at
	// or before now into missed (Missed). When every participant other than
	// the owner is then declined or missed, the call ends with reason
	// timeout and is deleted. A call that no longer exists: ErrNotFound.
	ExpireRings(ctx context.Context, id string, now time.Time) (*CallResult, error)

	// MarkReminded records that the reminder minutesBefore was sent and
	// reports whether this call was the first to record it. A meeting that
	// is ended or gone reports false.
	MarkReminded(ctx context.Context, id string, minutesBefore int) (*Meeting, bool, error)

	// EndIfOver ends a scheduled meeting whose EndTime has passed and whose
	// room is empty (status ended, EndedAt). Reports whether it ended now.
	EndIfOver(ctx context.Context, id string, now time.Time) (*Meeting, bool, error)

	// Delete removes the meeting. Only the owner (ErrForbidden). Returns the
	// last state.
	Delete(ctx context.Context, id, actor string) (*Meeting, error)
}

// ConnResult reports what a presence change did to the connection's user.
type ConnResult struct {
	Transition
	// Meetings the connection had joined (Disconnect), so the caller can
	// leave them.
	Meetings []string
	// LastConn: the user has no live connection left; the caller settles
	// the offline transition after the grace (SettleOffline).
	LastConn bool
}

// Presence tracks members' live connections and derives user status:
// offline with no live connection, busy when a live connection is joined in
// a meeting or call, online otherwise.
//
// The store keeps, per user, the last status it reported. Every method that
// returns a Transition reports From = that stored status and To = the status
// derived now, and stores To. One exception makes the presence grace work: a
// user whose last connection went away keeps the stored status (From == To,
// no broadcast) until SettleOffline; a reconnect before then reports only
// the difference (none, or busy → online if the user was busy before).
type Presence interface {
	// Connect registers c as live until now+ttl and indexes it under its
	// node. Returns the user's transition (offline → online on the first
	// connection; nothing when a pending offline is cancelled and the status
	// is unchanged). When the user already has maxConns live connections
	// (maxConns > 0), it refuses with ErrRateLimited and changes nothing.
	Connect(ctx context.Context, c Conn, ttl time.Duration, maxConns int, now time.Time) (ConnResult, error)

	// Heartbeat extends c's liveness to now+ttl. An unknown connection (it
	// expired) is registered again as Connect would, without a limit.
	Heartbeat(ctx context.Context, c Conn, ttl time.Duration, now time.Time) (ConnResult, error)

	// Disconnect removes connection connID of user and its node index entry.
	// Returns the meetings it had joined, the busy → online transition if
	// the user is no longer in any meeting, and LastConn when none of the
	// user's connections is left. Unknown connection: zero result, no error.
	Disconnect(ctx context.Context, user, connID string, now time.Time) (ConnResult, error)

	// SettleOffline makes user offline if no live connection is left,
	// recording last_seen = now (kept lastSeenTTL). Returns the transition
	// (online/busy → offline), or no change if a connection came back.
	SettleOffline(ctx context.Context, user string, lastSeenTTL time.Duration, now time.Time) (Transition, error)

	// SetJoined records that connection connID of user joined (or left)
	// meeting meetingID, and returns the status transition online ↔ busy.
	// Unknown connection: no change, no error.
	SetJoined(ctx context.Context, user, connID, meetingID string, joined bool, now time.Time) (Transition, error)

	// Query returns the status and last_seen of each user, in order.
	// Connections past their expiry do not count as live. A user whose
	// offline is pending (within the grace) is reported with the stored
	// status; last_seen is reported for offline users only.
	Query(ctx context.Context, users []string, now time.Time) ([]UserPresence, error)

	// NodeConns lists the connections indexed under node.
	NodeConns(ctx context.Context, node string) ([]Conn, error)
}

// Guests holds external guest sessions and admission queues. Every method
// but CreateSession and GetSession names the session's meeting too, so a
// store can keep a meeting's sessions and queue together (one Redis Cluster
// slot): a session that exists but belongs to another meeting is
// ErrNotFound, and nothing changes.
type Guests interface {
	// CreateSession stores s (ID, MeetingID, TokenHash, ExpiresAt set by the
	// caller; status registered) until s.ExpiresAt.
	CreateSession(ctx context.Context, s *Session, now time.Time) error

	// GetSession returns the session. Unknown or expired: ErrNotFound.
	GetSession(ctx context.Context, id string) (*Session, error)

	// Session returns session id of meetingID in one read (GetSession must
	// first find the meeting). Unknown, expired, or of another meeting:
	// ErrNotFound.
	Session(ctx context.Context, meetingID, id string) (*Session, error)

	// Request puts the session in its meeting's admission queue (status
	// waiting, QueuedAt = now), replacing DisplayName when name is not nil.
	// Allowed from registered and left, and once RetryAfter has passed for
	// a session that was declined (before: ErrRateLimited, even if it left
	// in between). Waiting or admitted: ErrConflict. A new request clears
	// the previous decision (DecidedAt, AdmittedBy).
	Request(ctx context.Context, meetingID, id string, name *string, now time.Time) (*Session, error)

	// Decide admits or declines a waiting session (else ErrConflict: the
	// first decision wins) and removes it from the queue. Admitted sets
	// AdmittedBy; declined sets RetryAfter = now + cooldown. DecidedAt = now.
	Decide(ctx context.Context, meetingID, id, actor string, admit bool, cooldown time.Duration, now time.Time) (*Session, error)

	// Connect records a live connection of the session.
	Connect(ctx context.Context, meetingID, id, connID string, now time.Time) (*Session, error)

	// Disconnect removes a connection and reports whether it was the last.
	Disconnect(ctx context.Context, meetingID, id, connID string, now time.Time) (*Session, bool, error)

	// SettleLeft marks a session with no live connection left (unless it
	// is already left or declined) and removes it from the queue. Reports
	// whether it changed.
	SettleLeft(ctx context.Context, meetingID, id string, now time.Time) (*Session, bool, error)

	// Leave marks the session left at the guest's request (meeting:leave),
	// whatever its connections, and removes it from the queue. Reports
	// whether it changed (false when already left).
	Leave(ctx context.Context, meetingID, id string, now time.Time) (*Session, bool, error)

	// Queue returns the waiting sessions of a meeting, oldest first.
	Queue(ctx context.Context, meetingID string) ([]*Session, error)
}

// Links holds invitation links.
type Links interface {
	// CreateLink stores l until l.ExpiresAt.
	CreateLink(ctx context.Context, l *Link, now time.Time) error
	// GetLink returns the link: unknown ErrNotFound; expired, revoked or used
	// up ErrGone (the link is returned with ErrGone too).
	GetLink(ctx context.Context, token string, now time.Time) (*Link, error)
	// UseLink counts one use atomically, under the same errors as GetLink;
	// a link with MaxUses reaching it is used up for the next caller.
	UseLink(ctx context.Context, token string, now time.Time) (*Link, error)
}

// Job is a unit of scheduled work. ID identifies it: scheduling an ID again
// moves it. Kind and Subject tell the handler what to do.
type Job struct {
	ID      string `json:"id"`
	Kind    string `json:"kind"`
	Subject string `json:"subject"`
	Arg     string `json:"arg,omitempty"`
	Due     Time   `json:"due"`
	// Lease is set by Claim: the job is invisible to other claimers until
	// then, and Done must present it.
	Lease Time `json:"lease"`
}

// Jobs is the cluster's scheduler: due times kept in the store, claimed by
// any node's poller, so a job runs even when the node that scheduled it is
// gone. A claimed job that is not Done before its lease expires is claimed
// again (at-least-once); handlers are idempotent transitions.
type Jobs interface {
	// Schedule adds each job, or moves it to its Due when its ID exists.
	// All jobs are written in one round trip.
	Schedule(ctx context.Context, jobs ...Job) error
	// Cancel removes the job if present.
	Cancel(ctx context.Context, id string) error
	// Claim returns at most limit jobs due at or before now, each hidden
	// from other claimers until now+lease. Two concurrent claimers never get
	// the same job.
	Claim(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Job, error)
	// Done removes a claimed job, unless it was rescheduled or claimed again
	// since (its lease differs).
	Done(ctx context.Context, j Job) error
}

// Nodes is the registry of gateway nodes, each held by a lease.
type Nodes interface {
	// Refresh registers node with a lease until now+lease. It reports
	// lost = true when the node was not registered (first start, or its
	// lease expired and it was reaped): the node must then re-register
	// what it holds.
	Refresh(ctx context.Context, node string, lease time.Duration, now time.Time) (lost bool, err error)
	// Deregister removes node and its connection index (clean shutdown).
	Deregister(ctx context.Context, node string) error
	// ClaimDead removes and returns the nodes whose lease expired before
	// now. Each dead node is returned to exactly one caller.
	ClaimDead(ctx context.Context, now time.Time) ([]string, error)
	// Alive lists the registered nodes.
	Alive(ctx context.Context, now time.Time) ([]string, error)
}
