package memory

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/switchboard/switchboard/state"
)

// jobs implements state.Jobs on the Store.
type jobs Store

func (x *jobs) store() *Store { return (*Store)(x) }

// Schedule implements state.Jobs. Scheduling clears a lease: a job moved
// while it runs is not removed by that run's Done.
func (x *jobs) Schedule(ctx context.Context, js ...state.Job) error {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.unlock()
	for _, j := range js {
		s.schedule(j)
	}
	return nil
}

// schedule adds or moves j; the caller holds the lock.
func (s *Store) schedule(j state.Job) {
	j.Due, j.Lease = state.At(j.Due.Time), state.Time{}
	s.jobs[j.ID] = j
}

// Cancel implements state.Jobs.
func (x *jobs) Cancel(ctx context.Context, id string) error {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.unlock()
	delete(s.jobs, id)
	return nil
}

// Claim implements state.Jobs: the earliest due jobs first.
func (x *jobs) Claim(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]state.Job, error) {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.unlock()
	var due []state.Job
	for _, j := range s.jobs {
		if !j.Due.After(now) && (j.Lease.IsZero() || !j.Lease.After(now)) {
			due = append(due, j)
		}
	}
	slices.SortFunc(due, func(a, b state.Job) int {
		return cmp.Or(a.Due.Compare(b.Due.Time), strings.Compare(a.ID, b.ID))
	})
	if len(due) > limit {
		due = due[:max(limit, 0)]
	}
	until := state.At(now.Add(lease))
	for i := range due {
		due[i].Lease = until
		s.jobs[due[i].ID] = due[i]
	}
	return due, nil
}

// Done implements state.Jobs.
func (x *jobs) Done(ctx context.Context, j state.Job) error {
	s := x.store()
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.unlock()
	if cur, ok := s.jobs[j.ID]; ok && !cur.Lease.IsZero() && cur.Lease.Equal(j.Lease.Time) {
		delete(s.jobs, j.ID)
	}
	return nil
}
