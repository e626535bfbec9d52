package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/switchboard/switchboard/state"
)

// jobs implements state.Jobs with two keys of one slot, owned by the
// scheduler (they have no TTL; Done and Cancel remove what they hold):
// {jobs}:due, a sorted set of job ids scored by due time, or by lease
// deadline while claimed, and {jobs}:data, a hash of job id → job JSON.
type jobs Store

var _ state.Jobs = (*jobs)(nil)

func (s *jobs) st() *Store { return (*Store)(s) }

func (s *jobs) jobKeys() []string { return []string{s.keys.jobsDue(), s.keys.jobsData()} }

// Schedule implements state.Jobs: every job in one script.
func (s *jobs) Schedule(ctx context.Context, js ...state.Job) error {
	if len(js) == 0 {
		return nil
	}
	sc, err := s.scheduleCall(js...)
	if err != nil {
		return fmt.Errorf("redis schedule: %w", err)
	}
	v, err := s.st().run(ctx, sc.sc, sc.keys, sc.args...)
	_, err = s.st().decode("schedule", noDoc, v, err)
	return err
}

// scheduleCall is the scheduleJobs script that writes js, for Schedule and
// for the pipelines that schedule a job with another transition (Ring).
func (s *jobs) scheduleCall(js ...state.Job) (scriptCall, error) {
	args := make([]any, 0, 3*len(js))
	for _, j := range js {
		j.Lease = state.Time{} // a moved job is no longer claimed
		b, err := json.Marshal(j)
		if err != nil {
			return scriptCall{}, err
		}
		args = append(args, j.ID, b, millis(j.Due.Time))
	}
	return scriptCall{sc: s.sc.scheduleJobs, keys: s.jobKeys(), args: args}, nil
}

// Cancel implements state.Jobs.
func (s *jobs) Cancel(ctx context.Context, id string) error {
	v, err := s.st().run(ctx, s.sc.cancelJob, s.jobKeys(), id)
	_, err = s.st().decode("cancel job", noDoc, v, err)
	return err
}

// Claim implements state.Jobs.
func (s *jobs) Claim(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]state.Job, error) {
	if limit <= 0 {
		return nil, nil
	}
	until := now.Add(lease)
	raws, err := s.sc.claimJobs.Run(ctx, s.c, s.jobKeys(), millis(now), stamp(until), millis(until), limit).StringSlice()
	if err != nil {
		return nil, s.st().fail("claim jobs", err)
	}
	out := make([]state.Job, 0, len(raws))
	for _, raw := range raws {
		var j state.Job
		if err := json.Unmarshal([]byte(raw), &j); err != nil {
			return nil, fmt.Errorf("redis claim jobs: decode: %w", err)
		}
		out = append(out, j)
	}
	return out, nil
}

// Done implements state.Jobs.
func (s *jobs) Done(ctx context.Context, j state.Job) error {
	v, err := s.st().run(ctx, s.sc.finishJob, s.jobKeys(), j.ID, j.Lease.String())
	_, err = s.st().decode("job done", noDoc, v, err)
	return err
}
