package redis

import (
	"context"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/state"
)

// nodes implements state.Nodes with one sorted set owned by the registry,
// {nodes}:leases (node id scored by lease deadline, Unix ms); ClaimDead and
// Deregister remove its members.
type nodes Store

var _ state.Nodes = (*nodes)(nil)

func (s *nodes) st() *Store { return (*Store)(s) }

// Refresh implements state.Nodes.
func (s *nodes) Refresh(ctx context.Context, node string, lease time.Duration, now time.Time) (bool, error) {
	v, err := s.st().run(ctx, s.sc.refreshNode, []string{s.keys.nodes()}, node, millis(now), millis(now.Add(lease)))
	r, err := s.st().decode("refresh node", noDoc, v, err)
	if err != nil {
		return false, err
	}
	return r.Lost, nil
}

// Deregister implements state.Nodes: the registry entry and the node's
// connection index, in one pipeline (two slots, both idempotent).
func (s *nodes) Deregister(ctx context.Context, node string) error {
	_, err := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		p.ZRem(ctx, s.keys.nodes(), node)
		p.Del(ctx, s.keys.nodeConns(node))
		return nil
	})
	return s.st().fail("deregister node", err)
}

// ClaimDead implements state.Nodes.
func (s *nodes) ClaimDead(ctx context.Context, now time.Time) ([]string, error) {
	dead, err := s.sc.claimDeadNodes.Run(ctx, s.c, []string{s.keys.nodes()}, millis(now)).StringSlice()
	if err != nil {
		return nil, s.st().fail("claim dead nodes", err)
	}
	return dead, nil
}

// Alive implements state.Nodes: the nodes whose lease runs past now.
func (s *nodes) Alive(ctx context.Context, now time.Time) ([]string, error) {
	out, err := s.c.ZRangeByScore(ctx, s.keys.nodes(), &goredis.ZRangeBy{
		Min: "(" + strconv.FormatInt(millis(now), 10), Max: "+inf",
	}).Result()
	if err != nil {
		return nil, s.st().fail("alive nodes", err)
	}
	return out, nil
}
