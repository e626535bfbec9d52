package memory

import (
	"context"
	"time"

	"github.com/switchboard/switchboard/state"
)

// linkEntry is a stored invitation link.
type linkEntry struct {
	l       state.Link
	expires time.Time // store clock
}

// links implements state.Links on the Store.
type links Store

func (x *links) store() *Store { return (*Store)(x) }

// link returns link token, or nil when absent or expired on the store's
// clock. Callers hold mu.
func (s *Store) link(token string) *linkEntry {
	e := s.links[token]
	if e == nil {
		return nil
	}
	if !s.live(e.expires) {
		delete(s.links, token)
		return nil
	}
	return e
}

// usable returns nil when l may be used at now, else the ErrGone that says
// why not.
func usable(l *state.Link, now time.Time) error {
	switch {
	case !now.Before(l.ExpiresAt.Time):
		return errorf(state.ErrGone, "link expired at %s", l.ExpiresAt)
	case l.Revoked:
		return errorf(state.ErrGone, "link revoked")
	case l.MaxUses > 0 && l.Uses >= l.MaxUses:
		return errorf(state.ErrGone, "link used up (%d uses)", l.MaxUses)
	}
	return nil
}

// CreateLink implements state.Links. An existing token is ErrConflict.
func (x *links) CreateLink(ctx context.Context, l *state.Link, now time.Time) error {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.unlock()
	if s.link(l.Token) != nil {
		return errorf(state.ErrConflict, "link exists")
	}
	s.links[l.Token] = &linkEntry{l: *l, expires: s.until(l.ExpiresAt.Time, now)}
	return nil
}

// GetLink implements state.Links.
func (x *links) GetLink(ctx context.Context, token string, now time.Time) (*state.Link, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.unlock()
	e := s.link(token)
	if e == nil {
		return nil, errorf(state.ErrNotFound, "link")
	}
	l := e.l
	return &l, usable(&l, now)
}

// UseLink implements state.Links.
func (x *links) UseLink(ctx context.Context, token string, now time.Time) (*state.Link, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.unlock()
	e := s.link(token)
	if e == nil {
		return nil, errorf(state.ErrNotFound, "link")
	}
	if err := usable(&e.l, now); err != nil {
		l := e.l
		return &l, err
	}
	e.l.Uses++
	l := e.l
	return &l, nil
}
