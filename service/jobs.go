package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/switchboard/switchboard/state"
)

// RunJob runs one scheduled job. Every handler is an idempotent transition,
// so a job that runs twice (its node died before Done) changes nothing more.
func (s *Service) RunJob(ctx context.Context, j state.Job) error {
	switch j.Kind {
	case JobReminder:
		if j.Arg != reminderLead && j.Arg != reminderStart {
			return fmt.Errorf("reminder job %s: unknown kind %q", j.ID, j.Arg)
		}
		return ignoreGone(s.remind(ctx, j.Subject, j.Arg))
	case JobMeetingEnd:
		return ignoreGone(s.endMeeting(ctx, j.Subject))
	case JobRingTimeout:
		return s.expireRings(ctx, j.Subject)
	case JobSettleOffline:
		return s.settleOffline(ctx, j.Subject)
	case JobGuestLeft:
		return s.settleGuest(ctx, j.Arg, j.Subject)
	case JobReapNode:
		return s.Reap(ctx, j.Subject)
	}
	return fmt.Errorf("unknown job kind %q", j.Kind)
}

func ignoreGone(err error) error {
	if errors.Is(err, state.ErrNotFound) || errors.Is(err, state.ErrGone) {
		return nil
	}
	return err
}

// RunDue claims the jobs due now and runs them; it returns how many ran.
func (s *Service) RunDue(ctx context.Context, limit int) (int, error) {
	jobs, err := s.store.Jobs().Claim(ctx, s.now(), s.cfg.JobLease, limit)
	if err != nil {
		return 0, err
	}
	for _, j := range jobs {
		if err := s.RunJob(ctx, j); err != nil {
			// Left claimed: it runs again when the lease expires.
			s.log.Warn().Err(err).Str("job", j.ID).Str("kind", j.Kind).Msg("job failed")
			continue
		}
		if err := s.store.Jobs().Done(ctx, j); err != nil {
			s.log.Warn().Err(err).Str("job", j.ID).Msg("job done")
		}
	}
	return len(jobs), nil
}

// ClaimDeadNodes turns every node whose lease expired into a reaping job,
// so exactly one node reaps it and a reaper that dies is replaced.
func (s *Service) ClaimDeadNodes(ctx context.Context) ([]string, error) {
	dead, err := s.store.Nodes().ClaimDead(ctx, s.now())
	if err != nil || len(dead) == 0 {
		return dead, err
	}
	jobs := make([]state.Job, len(dead))
	for i, n := range dead {
		jobs[i] = state.Job{ID: "reap:" + n, Kind: JobReapNode, Subject: n, Due: state.At(s.now())}
	}
	return dead, s.store.Jobs().Schedule(ctx, jobs...)
}

// Reap removes every connection a dead node held: the users leave their
// meetings and calls, and go offline at once (their clients had the lease
// time to reconnect elsewhere).
func (s *Service) Reap(ctx context.Context, node string) error {
	conns, err := s.store.Presence().NodeConns(ctx, node)
	if err != nil {
		return err
	}
	for _, c := range conns {
		if mid, sid, ok := parseGuestConnUser(c.UserID); ok {
			if err := s.GuestDisconnect(ctx, Guest{SessionID: sid, MeetingID: mid, ConnID: c.ID}, 0); err != nil {
				return err
			}
			continue
		}
		if err := s.Disconnect(ctx, Actor{UserID: c.UserID, DeviceID: c.DeviceID, ConnID: c.ID}, nil, 0); err != nil {
			return err
		}
	}
	s.log.Info().Str("dead_node", node).Int("conns", len(conns)).Msg("reaped node")
	return nil
}
