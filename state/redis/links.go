package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/state"
)

// links implements state.Links: one JSON string per link, {link:<token>}:link.
type links Store

var _ state.Links = (*links)(nil)

func (s *links) st() *Store { return (*Store)(s) }

// CreateLink implements state.Links.
func (s *links) CreateLink(ctx context.Context, l *state.Link, now time.Time) error {
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("redis create link: %w", err)
	}
	ttl := ttlUntil(l.ExpiresAt.Time, now)
	v, err := s.st().run(ctx, s.sc.createLink, []string{s.keys.link(l.Token)}, b, ttl.Milliseconds())
	_, err = s.st().decode("create link", linkDoc, v, err)
	return err
}

// GetLink implements state.Links.
func (s *links) GetLink(ctx context.Context, token string, now time.Time) (*state.Link, error) {
	b, err := s.c.Get(ctx, s.keys.link(token)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("redis get link: %w", state.ErrNotFound)
	}
	if err != nil {
		return nil, s.st().fail("get link", err)
	}
	var l state.Link
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("redis get link: decode: %w", err)
	}
	if why := linkGone(&l, now); why != "" {
		return &l, fmt.Errorf("redis get link: %s: %w", why, state.ErrGone)
	}
	return &l, nil
}

// linkGone says why a link can no longer be used, or "". useLink.lua applies
// the same rules.
func linkGone(l *state.Link, now time.Time) string {
	switch {
	case l.Revoked:
		return "revoked"
	case !state.At(now).Before(l.ExpiresAt.Time):
		return "expired"
	case l.MaxUses > 0 && l.Uses >= l.MaxUses:
		return "used up"
	}
	return ""
}

// UseLink implements state.Links.
func (s *links) UseLink(ctx context.Context, token string, now time.Time) (*state.Link, error) {
	v, err := s.st().run(ctx, s.sc.useLink, []string{s.keys.link(token)}, stamp(now))
	r, err := s.st().decode("use link", linkDoc, v, err)
	if r != nil && r.Link != nil {
		return r.Link, err // ErrGone comes with the link
	}
	return nil, err
}
