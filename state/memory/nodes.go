package memory

import (
	"context"
	"slices"
	"time"
)

// nodes implements state.Nodes on the Store. A lease is over at its
// deadline: from then on the node is dead to Alive and ClaimDead, and lost
// to its own Refresh.
type nodes Store

func (x *nodes) store() *Store { return (*Store)(x) }

// Refresh implements state.Nodes.
func (x *nodes) Refresh(ctx context.Context, node string, lease time.Duration, now time.Time) (bool, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return false, err
	}
	defer s.unlock()
	deadline, ok := s.nodes[node]
	s.nodes[node] = now.Add(lease)
	return !ok || !deadline.After(now), nil
}

// Deregister implements state.Nodes.
func (x *nodes) Deregister(ctx context.Context, node string) error {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.unlock()
	delete(s.nodes, node)
	delete(s.byNode, node)
	return nil
}

// ClaimDead implements state.Nodes. The dead nodes' connection index stays
// for the reaper (Presence.NodeConns).
func (x *nodes) ClaimDead(ctx context.Context, now time.Time) ([]string, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.unlock()
	var dead []string
	for node, deadline := range s.nodes {
		if !deadline.After(now) {
			dead = append(dead, node)
			delete(s.nodes, node)
		}
	}
	slices.Sort(dead)
	return dead, nil
}

// Alive implements state.Nodes: the nodes whose lease holds at now.
func (x *nodes) Alive(ctx context.Context, now time.Time) ([]string, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.unlock()
	var alive []string
	for node, deadline := range s.nodes {
		if deadline.After(now) {
			alive = append(alive, node)
		}
	}
	slices.Sort(alive)
	return alive, nil
}
