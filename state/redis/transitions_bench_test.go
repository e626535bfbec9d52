package redis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/state"
)

// BenchmarkTransitions measures the transitions the other benchmarks do not,
// so that every script of the store has a figure. A transition that can run
// only once on its subject (Start, Delete, Decline...) runs after the ones
// that make a fresh subject, and the name lists every transition of the op
// in order ("create+start": two round trips per op, both measured).
func BenchmarkTransitions(b *testing.B) {
	const week = 7 * 24 * time.Hour
	for _, bc := range []struct {
		name string
		// setup prepares the store and returns the op; op i uses fresh ids.
		setup func(b *testing.B, st state.Store) func(i int)
	}{
		{"update", func(b *testing.B, st state.Store) func(int) {
			must(b, created(st.Meetings().Create(context.Background(), scheduled("mtg_a", at(time.Hour), at(2*time.Hour), "bob"), week, at(0))))
			return func(i int) {
				title := fmt.Sprintf("title %d", i)
				_, err := st.Meetings().Update(context.Background(), "mtg_a", "alice", state.MeetingPatch{Title: &title}, week, at(time.Minute))
				must(b, err)
			}
		}},
		{"create+start", func(b *testing.B, st state.Store) func(int) {
			return func(i int) {
				id := fmt.Sprintf("mtg_%d", i)
				must(b, created(st.Meetings().Create(context.Background(), scheduled(id, at(time.Hour), at(2*time.Hour), "bob"), week, at(0))))
				_, err := st.Meetings().Start(context.Background(), id, "alice", at(time.Hour))
				must(b, err)
			}
		}},
		{"create+delete", func(b *testing.B, st state.Store) func(int) {
			return func(i int) {
				id := fmt.Sprintf("mtg_%d", i)
				must(b, created(st.Meetings().Create(context.Background(), scheduled(id, at(time.Hour), at(2*time.Hour), "bob"), week, at(0))))
				_, err := st.Meetings().Delete(context.Background(), id, "alice")
				must(b, err)
			}
		}},
		{"create+join+invite_live", func(b *testing.B, st state.Store) func(int) {
			return func(i int) {
				ctx, id := context.Background(), fmt.Sprintf("mtg_%d", i)
				must(b, created(st.Meetings().Create(ctx, scheduled(id, at(time.Hour), at(2*time.Hour), "bob"), week, at(0))))
				_, err := st.Meetings().Join(ctx, id, "alice", "a1", at(time.Hour))
				must(b, err)
				_, invited, err := st.Meetings().InviteLive(ctx, id, "alice", []string{"carol"}, 256, at(time.Hour))
				must(b, err)
				if len(invited) != 1 {
					b.Fatalf("invited %q", invited)
				}
			}
		}},
		{"create+remind", func(b *testing.B, st state.Store) func(int) {
			return func(i int) {
				ctx, id := context.Background(), fmt.Sprintf("mtg_%d", i)
				must(b, created(st.Meetings().Create(ctx, scheduled(id, at(time.Hour), at(2*time.Hour), "bob"), week, at(0))))
				_, first, err := st.Meetings().MarkReminded(ctx, id, 15)
				must(b, err)
				if !first {
					b.Fatal("MarkReminded: not the first time")
				}
			}
		}},
		{"create+end_if_over", func(b *testing.B, st state.Store) func(int) {
			// A meeting past its end with an empty room ends.
			return func(i int) {
				ctx, id := context.Background(), fmt.Sprintf("mtg_%d", i)
				must(b, created(st.Meetings().Create(ctx, scheduled(id, at(time.Hour), at(2*time.Hour), "bob"), week, at(0))))
				_, ended, err := st.Meetings().EndIfOver(ctx, id, at(3*time.Hour))
				must(b, err)
				if !ended {
					b.Fatal("EndIfOver: not ended")
				}
			}
		}},
		{"create_call+ring+decline", func(b *testing.B, st state.Store) func(int) {
			online(b, st, "bob")
			return func(i int) {
				ctx, id := context.Background(), ringingCall(b, st, i)
				_, err := st.Meetings().Decline(ctx, id, "bob", at(time.Second))
				must(b, err)
			}
		}},
		{"create_call+ring+expire_rings", func(b *testing.B, st state.Store) func(int) {
			online(b, st, "bob")
			return func(i int) {
				ctx, id := context.Background(), ringingCall(b, st, i)
				res, err := st.Meetings().ExpireRings(ctx, id, at(2*time.Minute))
				must(b, err)
				if len(res.Missed) != 1 {
					b.Fatalf("missed %q", res.Missed)
				}
			}
		}},
		{"create_session+guest_connect+disconnect+settle_left", func(b *testing.B, st state.Store) func(int) {
			must(b, created(st.Meetings().Create(context.Background(), scheduled("mtg_a", at(time.Hour), at(2*time.Hour), "bob"), week, at(0))))
			return func(i int) {
				ctx, g, id := context.Background(), st.Guests(), fmt.Sprintf("s%d", i)
				must(b, g.CreateSession(ctx, guestSession(id, "mtg_a"), at(0)))
				_, err := g.Connect(ctx, "mtg_a", id, "g1", at(time.Hour))
				must(b, err)
				_, _, err = g.Disconnect(ctx, "mtg_a", id, "g1", at(time.Hour))
				must(b, err)
				_, _, err = g.SettleLeft(ctx, "mtg_a", id, at(time.Hour+time.Minute))
				must(b, err)
			}
		}},
		{"create_session+guest_leave", func(b *testing.B, st state.Store) func(int) {
			must(b, created(st.Meetings().Create(context.Background(), scheduled("mtg_a", at(time.Hour), at(2*time.Hour), "bob"), week, at(0))))
			return func(i int) {
				ctx, g, id := context.Background(), st.Guests(), fmt.Sprintf("s%d", i)
				must(b, g.CreateSession(ctx, guestSession(id, "mtg_a"), at(0)))
				_, _, err := g.Leave(ctx, "mtg_a", id, at(time.Hour))
				must(b, err)
			}
		}},
		{"connect+disconnect+settle_offline", func(b *testing.B, st state.Store) func(int) {
			return func(i int) {
				ctx, p, now := context.Background(), st.Presence(), at(time.Duration(i)*time.Second)
				id := fmt.Sprintf("c%d", i)
				_, err := p.Connect(ctx, state.Conn{ID: id, UserID: "alice", DeviceID: "phone", NodeID: "n1"}, 2*time.Minute, 20, now)
				must(b, err)
				_, err = p.Disconnect(ctx, "alice", id, now)
				must(b, err)
				tr, err := p.SettleOffline(ctx, "alice", week, now.Add(5*time.Second))
				must(b, err)
				if tr.To != state.Offline {
					b.Fatalf("SettleOffline went to %q", tr.To)
				}
			}
		}},
		{"create_link", func(b *testing.B, st state.Store) func(int) {
			return func(i int) {
				must(b, st.Links().CreateLink(context.Background(), &state.Link{Token: fmt.Sprintf("tok%d", i), MeetingID: "mtg_a",
					CreatedBy: "alice", CreatedAt: state.At(at(0)), ExpiresAt: state.At(at(time.Hour))}, at(0)))
			}
		}},
		{"schedule_job+cancel", func(b *testing.B, st state.Store) func(int) {
			return func(i int) {
				ctx, id := context.Background(), fmt.Sprintf("j%d", i)
				must(b, st.Jobs().Schedule(ctx, state.Job{ID: id, Kind: "k", Subject: "s", Due: state.At(at(time.Hour))}))
				must(b, st.Jobs().Cancel(ctx, id))
			}
		}},
		{"refresh_node+claim_dead", func(b *testing.B, st state.Store) func(int) {
			return func(i int) {
				ctx, now := context.Background(), at(time.Duration(i)*time.Minute)
				_, err := st.Nodes().Refresh(ctx, fmt.Sprintf("n%d", i), time.Second, now)
				must(b, err)
				dead, err := st.Nodes().ClaimDead(ctx, now.Add(2*time.Second))
				must(b, err)
				if len(dead) != 1 {
					b.Fatalf("claimed %q", dead)
				}
			}
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			st, rm := benchStore(b)
			op := bc.setup(b, st)
			i := 0
			rm.start()
			for b.Loop() {
				i++
				op(i)
			}
			rm.report()
		})
	}
}

// ringingCall creates call i of alice with bob and rings bob until a minute
// from at(0); it returns the call's id.
func ringingCall(b *testing.B, st state.Store, i int) string {
	ctx, id := context.Background(), fmt.Sprintf("call_%d", i)
	must(b, created(st.Meetings().Create(ctx, call(id, at(0), "bob"), 0, at(0))))
	r, err := st.Meetings().Ring(ctx, id, "alice", []string{"bob"}, at(time.Minute), ringTimeout(id, at(time.Minute)), at(0))
	must(b, err)
	must(b, r.TimeoutErr)
	return id
}
