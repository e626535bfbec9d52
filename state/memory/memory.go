// Package memory is the in-memory state.Store: the embedded default of a
// single node (SWITCHBOARD_REDIS_URL unset) and the reference the Redis store
// is compared with in tests.
//
// One mutex guards everything, and each method holds it for its whole body,
// so every method is one atomic transition: it checks its preconditions,
// changes state and reports what changed, or refuses and changes nothing.
// Objects go in and out as deep copies; the store never shares memory with
// its callers.
//
// Expiry works as Redis TTLs do. A write that sets a retention (a meeting
// until EndTime + retention, a session or link until its ExpiresAt, a
// last_seen for its TTL) turns it into a duration from the now passed with
// the write, and counts that duration on the store's clock. Expired entries
// are invisible at once and freed by Sweep, which also runs by itself at most
// once a minute during ordinary calls, so memory does not grow without bound.
// Times that the contract compares with an explicit now (connection expiry,
// ring deadlines, job due times and leases, node leases, link and session
// expiry) are compared with that now.
package memory

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/switchboard/switchboard/state"
)

const (
	// sweepEvery is how often ordinary calls free expired entries.
	sweepEvery = time.Minute
	// hold is how long presence keeps a connection after its expiry, and a
	// user whose offline transition is pending, so that the reaper and
	// SettleOffline still find what they must clean up. It matches the
	// Redis store's default.
	hold = 10 * time.Minute
)

// Store is the in-memory state.Store. It is safe for concurrent use.
type Store struct {
	clock func() time.Time

	mu        sync.Mutex
	nextSweep time.Time

	meetings map[string]*meetingEntry       // by meeting id
	byUser   map[string]map[string]struct{} // user → meeting ids (ListForUser)

	users  map[string]*userPresence       // presence by user id
	conns  map[string]*connEntry          // member connections by id
	byNode map[string]map[string]struct{} // node → connection ids

	sessions map[string]*sessionEntry       // guest sessions by id
	queues   map[string]map[string]struct{} // meeting → waiting session ids
	seq      uint64                         // admission order among equal QueuedAt

	links map[string]*linkEntry // by token
	jobs  map[string]state.Job  // by id
	nodes map[string]time.Time  // node → lease deadline
}

var _ state.Store = (*Store)(nil)

// New returns an empty store whose TTLs run on clock (time.Now in
// production, a fake clock in tests).
func New(clock func() time.Time) *Store {
	return &Store{
		clock:    clock,
		meetings: map[string]*meetingEntry{},
		byUser:   map[string]map[string]struct{}{},
		users:    map[string]*userPresence{},
		conns:    map[string]*connEntry{},
		byNode:   map[string]map[string]struct{}{},
		sessions: map[string]*sessionEntry{},
		queues:   map[string]map[string]struct{}{},
		links:    map[string]*linkEntry{},
		jobs:     map[string]state.Job{},
		nodes:    map[string]time.Time{},
	}
}

// Meetings implements state.Store.
func (s *Store) Meetings() state.Meetings { return (*meetings)(s) }

// Presence implements state.Store.
func (s *Store) Presence() state.Presence { return (*presence)(s) }

// Guests implements state.Store.
func (s *Store) Guests() state.Guests { return (*guests)(s) }

// Links implements state.Store.
func (s *Store) Links() state.Links { return (*links)(s) }

// Jobs implements state.Store.
func (s *Store) Jobs() state.Jobs { return (*jobs)(s) }

// Nodes implements state.Store.
func (s *Store) Nodes() state.Nodes { return (*nodes)(s) }

// Ping implements state.Store: memory always answers.
func (s *Store) Ping(ctx context.Context) error { return ctx.Err() }

// Close implements state.Store. There is nothing to release.
func (s *Store) Close() error { return nil }

// Sweep frees every expired entry now. Ordinary calls sweep by themselves
// at most once a minute; Sweep is for tests and for callers that want
// memory back at a moment of their choosing.
func (s *Store) Sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.clock()
	s.sweep(t)
	s.nextSweep = t.Add(sweepEvery)
}

// lock takes the store's mutex for one transition and sweeps when a sweep
// is due. It fails, without locking, when ctx is done.
func (s *Store) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory store: %w", err)
	}
	s.mu.Lock()
	if t := s.clock(); !t.Before(s.nextSweep) {
		s.sweep(t)
		s.nextSweep = t.Add(sweepEvery)
	}
	return nil
}

func (s *Store) unlock() { s.mu.Unlock() }

// until converts a retention that ends at end, written at now, into a
// deadline on the store's clock, as a Redis PEXPIRE of end-now would.
func (s *Store) until(end, now time.Time) time.Time {
	return s.clock().Add(end.Sub(now))
}

// live reports whether a deadline on the store's clock is still ahead.
func (s *Store) live(deadline time.Time) bool { return s.clock().Before(deadline) }

// sweep frees what expired by t (the store's clock). Callers hold mu.
func (s *Store) sweep(t time.Time) {
	for id, e := range s.meetings {
		if !t.Before(e.expires) {
			s.dropMeeting(id)
		}
	}
	for id, e := range s.sessions {
		if !t.Before(e.expires) {
			s.dropSession(id)
		}
	}
	for token, e := range s.links {
		if !t.Before(e.expires) {
			delete(s.links, token)
		}
	}
	for id, c := range s.conns {
		if !t.Before(c.gcAt) {
			s.dropConn(id)
		}
	}
	for id, u := range s.users {
		s.tidyUser(id, u, t)
	}
}

// sortedKeys returns the keys of a set in order.
func sortedKeys(set map[string]struct{}) []string {
	if len(set) == 0 {
		return nil
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// add puts v in the set at idx[k], creating it.
func add(idx map[string]map[string]struct{}, k, v string) {
	set := idx[k]
	if set == nil {
		set = map[string]struct{}{}
		idx[k] = set
	}
	set[v] = struct{}{}
}

// remove takes v out of the set at idx[k], dropping an empty set.
func remove(idx map[string]map[string]struct{}, k, v string) {
	if set := idx[k]; set != nil {
		delete(set, v)
		if len(set) == 0 {
			delete(idx, k)
		}
	}
}

// cloneTime returns a copy of an optional time.
func cloneTime(t *state.Time) *state.Time {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}

// errorf wraps a state error with context: errorf(state.ErrNotFound,
// "meeting %s", id) reads "meeting mtg_x: not found".
func errorf(kind error, format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), kind)
}
