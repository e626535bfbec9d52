package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/service"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/memory"
)

// Fixed objects the fuzz inputs may name, so that inputs reach past the
// "not found" of unknown ids into the rules.
const (
	fzMeeting = "mtg_00000000000000000000000000000001"
	fzCall    = "call_00000000000000000000000000000001"
	fzWaiting = "00000000-0000-4000-8000-000000000001" // a registered guest session
	fzGuest   = "00000000-0000-4000-8000-000000000002" // an admitted guest session
)

// fzTrace logs each rule's outcome (to see which seeds reach which rules).
var fzTrace = os.Getenv("SWITCHBOARD_FUZZ_TRACE") == "1"

var fzNow = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// fzCodes are the codes bad input may get. internal and unavailable are
// not among them: a payload that makes the gateway fail (with a store that
// cannot fail) is a bug, never the client's fault.
var fzCodes = map[string]bool{
	service.CodeUnauthorized: true, service.CodeForbidden: true, service.CodeNotFound: true,
	service.CodeInvalidPayload: true, service.CodeConflict: true, service.CodeGone: true,
	service.CodeRateLimited: true, service.CodeTooLarge: true,
}

// fzWorld is a service on a fresh memory store holding a live meeting that
// allows guests (alice joined), a live call (alice joined, bob ringing) and
// two guest sessions of the meeting, one waiting, one admitted.
type fzWorld struct {
	svc    *service.Service
	alice  service.Actor
	bob    service.Actor
	guest  service.Guest // admitted
	waiter service.Guest // registered, not yet asking
	emits  []service.Delivery
}

func newFzWorld(tb testing.TB) *fzWorld {
	tb.Helper()
	ctx := context.Background()
	clock := func() time.Time { return fzNow }
	store := memory.New(clock)
	w := &fzWorld{
		alice:  service.Actor{UserID: "alice", DeviceID: "phone", ConnID: "conn-a", Name: "Alice"},
		bob:    service.Actor{UserID: "bob", DeviceID: "phone", ConnID: "conn-b"},
		guest:  service.Guest{SessionID: fzGuest, MeetingID: fzMeeting, ConnID: "conn-g"},
		waiter: service.Guest{SessionID: fzWaiting, MeetingID: fzMeeting, ConnID: "conn-w"},
	}
	w.svc = service.New(service.DefaultConfig(), store, service.EmitterFunc(func(d service.Delivery) {
		w.emits = append(w.emits, d)
	}), clock, zerolog.Nop())
	started := state.At(fzNow.Add(-time.Minute))
	mtg := &state.Meeting{
		ID: fzMeeting, Title: "t", StartTime: state.At(fzNow.Add(-time.Minute)), EndTime: state.At(fzNow.Add(time.Hour)),
		AllowExternal: true, CreatedBy: "alice", Status: state.StatusLive, StartedAt: &started,
		CreatedAt: started, UpdatedAt: started, ActiveCount: 1, Version: 1,
		Participants: []state.Participant{
			{UserID: "alice", Role: state.RoleOwner, Status: state.PartJoined, JoinedAt: &started},
			{UserID: "bob", Role: state.RoleMember, Status: state.PartInvited},
		},
		Conns: map[string][]string{"alice": {"conn-a"}},
	}
	call := &state.Meeting{
		ID: fzCall, IsInstantCall: true, StartTime: started, EndTime: state.At(fzNow.Add(24 * time.Hour)),
		CreatedBy: "alice", Status: state.StatusLive, StartedAt: &started, CreatedAt: started, UpdatedAt: started,
		ActiveCount: 1, Version: 1,
		Participants: []state.Participant{
			{UserID: "alice", Role: state.RoleOwner, Status: state.PartJoined, JoinedAt: &started},
			{UserID: "bob", Role: state.RoleMember, Status: state.PartInvited},
			{UserID: "carol", Role: state.RoleMember, Status: state.PartInvited},
		},
		Conns: map[string][]string{"alice": {"conn-a"}},
	}
	for _, m := range []*state.Meeting{mtg, call} {
		if _, err := store.Meetings().Create(ctx, m, time.Hour, fzNow); err != nil {
			tb.Fatal(err)
		}
	}
	for _, s := range []*state.Session{
		{ID: fzWaiting, MeetingID: fzMeeting, DisplayName: "w", Status: state.SessionRegistered, CreatedAt: started, ExpiresAt: state.At(fzNow.Add(time.Hour))},
		{ID: fzGuest, MeetingID: fzMeeting, DisplayName: "g", Status: state.SessionRegistered, CreatedAt: started, ExpiresAt: state.At(fzNow.Add(time.Hour))},
	} {
		if err := store.Guests().CreateSession(ctx, s, fzNow); err != nil {
			tb.Fatal(err)
		}
	}
	for _, a := range []service.Actor{w.alice, w.bob} {
		if err := w.svc.Connect(ctx, a); err != nil {
			tb.Fatal(err)
		}
	}
	for _, g := range []service.Guest{w.guest, w.waiter} {
		if err := w.svc.GuestConnect(ctx, g); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.svc.GuestJoin(ctx, w.guest, service.GuestJoinRequest{MeetingID: fzMeeting, SessionID: fzGuest}); err != nil {
		tb.Fatal(err)
	}
	if err := w.svc.Decide(ctx, w.alice, service.DecisionRequest{MeetingID: fzMeeting, SessionID: fzGuest}, true); err != nil {
		tb.Fatal(err)
	}
	w.emits = nil
	return w
}

// fzCheck fails unless err is nil or a *service.Error with a code bad input
// may get and a human sentence.
func fzCheck(t *testing.T, what string, input []byte, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var e *service.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s(%q): error %T %v is not a *service.Error", what, input, err, err)
	}
	if !fzCodes[e.Code] {
		t.Fatalf("%s(%q): code %q (%v)", what, input, e.Code, err)
	}
	if strings.TrimSpace(e.Message) == "" {
		t.Fatalf("%s(%q): code %q without a message", what, input, e.Code)
	}
}

// fzDecode decodes raw into a new T as a handler does and, when that
// succeeds, runs each of the rules that take a T.
func fzDecode[T any](t *testing.T, name string, raw []byte, rules ...func(context.Context, T) (any, error)) {
	t.Helper()
	var r T
	err := decode(raw, &r)
	fzCheck(t, "decode "+name, raw, err)
	if err != nil {
		if e := service.AsError(err); e.Code != service.CodeInvalidPayload {
			t.Fatalf("decode %s(%q): %q, want invalid_payload", name, raw, e.Code)
		}
		return
	}
	for i, rule := range rules {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		fields, err := rule(ctx, r)
		cancel()
		fzCheck(t, name+" rule "+string(rune('0'+i)), raw, err)
		if fzTrace {
			t.Logf("%s rule %d: %v", name, i, err)
		}
		if err == nil && fields != nil {
			// The ack is encoded as the gateway does.
			if _, err := plain(map[string]any{"success": true, "result": fields}); err != nil {
				t.Fatalf("%s(%q): ack does not encode: %v", name, raw, err)
			}
		}
	}
}

// fzRun feeds one input through the gateway's payload path into every
// request type and the rules that use it.
func fzRun(t *testing.T, data []byte) {
	w := newFzWorld(t)
	var raws [][]byte
	// As a Socket.IO client sends it: the node's parser
	// (internal/sioparser) hands the handler each argument as the JSON it
	// came as, once the packet is valid JSON, which dispatch bounds.
	if json.Valid(data) {
		raw, err := encodePayload(json.RawMessage(bytes.TrimSpace(data)), 64<<10)
		fzCheck(t, "encodePayload", data, err)
		if err == nil {
			raws = append(raws, raw)
		}
	}
	// A decoded JSON value, as the library's parser hands one over, which
	// dispatch bounds and encodes again.
	var v any
	if json.Unmarshal(data, &v) == nil {
		raw, err := encodePayload(v, 64<<10)
		fzCheck(t, "encodePayload", data, err)
		if err == nil {
			raws = append(raws, raw)
		}
	}
	// And the raw bytes themselves, whatever they are.
	raws = append(raws, data)
	a, g := w.alice, w.guest
	for _, raw := range raws {
		fzDecode(t, "CreateMeetingRequest", raw, func(ctx context.Context, r service.CreateMeetingRequest) (any, error) {
			return w.svc.CreateMeeting(ctx, a, r)
		})
		fzDecode(t, "UpdateMeetingRequest", raw, func(ctx context.Context, r service.UpdateMeetingRequest) (any, error) {
			return w.svc.UpdateMeeting(ctx, a, r)
		})
		fzDecode(t, "MeetingRef", raw,
			func(ctx context.Context, r service.MeetingRef) (any, error) {
				return nil, w.svc.StartMeeting(ctx, a, r)
			},
			func(ctx context.Context, r service.MeetingRef) (any, error) {
				res, err := w.svc.RegisterParticipant(ctx, w.bob, r)
				if err != nil {
					return nil, err
				}
				return res.Meeting.Public(), nil
			},
			func(ctx context.Context, r service.MeetingRef) (any, error) { return w.svc.GenerateLink(ctx, a, r) },
			func(ctx context.Context, r service.MeetingRef) (any, error) {
				return nil, w.svc.GuestLeave(ctx, w.waiter, r)
			},
			func(ctx context.Context, r service.MeetingRef) (any, error) { return nil, w.svc.Leave(ctx, w.bob, r) },
		)
		fzDecode(t, "InviteLiveRequest", raw, func(ctx context.Context, r service.InviteLiveRequest) (any, error) {
			return w.svc.InviteLive(ctx, a, r)
		})
		fzDecode(t, "CreateCallRequest", raw, func(ctx context.Context, r service.CreateCallRequest) (any, error) {
			return w.svc.CreateCall(ctx, a, r)
		})
		fzDecode(t, "NotifyRequest", raw, func(ctx context.Context, r service.NotifyRequest) (any, error) {
			return w.svc.Notify(ctx, a, r)
		})
		fzDecode(t, "CallRef", raw,
			func(ctx context.Context, r service.CallRef) (any, error) {
				res, err := w.svc.Accept(ctx, w.bob, r)
				if err != nil {
					return nil, err
				}
				return res.Meeting.Public(), nil
			},
			func(ctx context.Context, r service.CallRef) (any, error) {
				return nil, w.svc.Decline(ctx, service.Actor{UserID: "carol", ConnID: "conn-c"}, r)
			},
		)
		fzDecode(t, "GuestJoinRequest", raw, func(ctx context.Context, r service.GuestJoinRequest) (any, error) {
			return nil, w.svc.GuestJoin(ctx, w.waiter, r)
		})
		fzDecode(t, "DecisionRequest", raw,
			func(ctx context.Context, r service.DecisionRequest) (any, error) {
				return nil, w.svc.Decide(ctx, a, r, false)
			},
			func(ctx context.Context, r service.DecisionRequest) (any, error) {
				return nil, w.svc.Decide(ctx, a, r, true)
			},
		)
		fzDecode(t, "SignalRequest", raw,
			func(ctx context.Context, r service.SignalRequest) (any, error) {
				return nil, w.svc.MemberSignal(ctx, a, r)
			},
			func(ctx context.Context, r service.SignalRequest) (any, error) {
				return nil, w.svc.GuestSignal(ctx, g, r)
			},
		)
	}
	// Every broadcast the inputs caused encodes as the emitter does.
	for _, d := range w.emits {
		if _, err := plain(d.Data); err != nil {
			t.Fatalf("broadcast %s after %q does not encode: %v", d.Event, data, err)
		}
	}
}

var fzSeeds = []string{
	``, `null`, `[]`, `"x"`, `1`, `{}`, `{"meeting_id":1}`, `{"participants":"bob"}`, `{"to":[]}`,
	`{"title":"t","description":"d","startTime":"2026-11-25T11:00:00+01:00","endTime":"2026-11-25T12:00:00Z","participants":["bob","bob","alice"],"allowExternal":true}`,
	`{"title":"t","start_time":"2026-11-25T11:00:00Z","end_time":"2026-11-25T10:00:00Z"}`,
	`{"title":"t","startTime":"not a time","endTime":"2026-11-25T12:00:00Z","envelopes":{"bob":{"title":"x"}}}`,
	`{"meeting_id":"` + fzMeeting + `","title":"n","startTime":"2026-11-25T11:00:00Z"}`,
	`{"meeting_id":"` + fzMeeting + `","user_ids":["dave","erin","alice"]}`,
	`{"meeting_id":"` + fzCall + `"}`,
	`{"meeting_id":"mtg_x\u0000"}`,
	`{"participants":["bob","carol"],"title":"c","allowExternal":true}`,
	`{"call_id":"` + fzCall + `","recipients":["bob","carol"],"caller":{"display_name":"A","avatar":"x"},"envelopes":{"bob":{"display_name":"b"}}}`,
	`{"call_id":"` + fzCall + `","recipients":["zed"]}`,
	`{"call_id":"` + fzCall + `"}`,
	`{"meeting_id":"` + fzMeeting + `","session_id":"` + fzWaiting + `","display_name":"new"}`,
	`{"meeting_id":"` + fzMeeting + `","session_id":"` + fzGuest + `"}`,
	`{"meeting_id":"` + fzMeeting + `","to":{"session_id":"` + fzGuest + `"},"envelope":{"k":"v"}}`,
	`{"meeting_id":"` + fzMeeting + `","to":{"user_id":"alice","device_id":"phone"},"envelope":"e"}`,
	`{"meeting_id":"` + fzMeeting + `","to":{"user_id":"alice"},"envelope":null}`,
	`{"meeting_id":"` + fzMeeting + `","title":` + `"` + strings.Repeat("x", 5000) + `"}`,
	`{"a":{"b":{"c":[1,2,{"d":1e999}]}}}`,
	`{"meeting_id":"` + fzMeeting + `","meeting_id":"` + fzCall + `"}`,
	`{"title":"\ud800","participants":["\u0007"]}`,
}

// FuzzDecode feeds arbitrary bytes through the gateway's payload path
// (encodePayload, decode) into every request type and then through the
// rules that take it, on a memory store holding a meeting, a call and guest
// sessions the inputs may name: nothing panics, and every refusal is a
// *service.Error with a code bad input may get.
//
//	go test -run '^$' -fuzz FuzzDecode -fuzztime 60s ./gateway/
func FuzzDecode(f *testing.F) {
	for _, s := range fzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 128<<10 {
			return
		}
		fzRun(t, data)
	})
}

// benchDecodeAndRule measures what a handler does with a payload as the
// node's Socket.IO parser hands it over (the JSON it came as): bound it,
// decode it into the request, and run the rule on a memory store
// (validation, then the store's transition, which on the memory store is
// a map update).
func benchDecodeAndRule[T any](b *testing.B, payload string, rule func(*fzWorld, context.Context, T) error) {
	v := json.RawMessage(payload)
	if !json.Valid(v) {
		b.Fatal("payload is not JSON")
	}
	w := newFzWorld(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%10000 == 9999 { // keep the store (and the recorded broadcasts) small
			b.StopTimer()
			w = newFzWorld(b)
			b.StartTimer()
		}
		w.emits = w.emits[:0]
		raw, err := encodePayload(v, 64<<10)
		if err != nil {
			b.Fatal(err)
		}
		var r T
		if err := decode(raw, &r); err != nil {
			b.Fatal(err)
		}
		if err := rule(w, ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeCreateMeeting(b *testing.B) {
	b.Run("decode", func(b *testing.B) {
		benchDecodeAndRule(b, fzSeeds[9], func(*fzWorld, context.Context, service.CreateMeetingRequest) error { return nil })
	})
	b.Run("decode+rule", func(b *testing.B) {
		benchDecodeAndRule(b, fzSeeds[9], func(w *fzWorld, ctx context.Context, r service.CreateMeetingRequest) error {
			_, err := w.svc.CreateMeeting(ctx, w.alice, r)
			return err
		})
	})
}

func BenchmarkDecodeNotify(b *testing.B) {
	payload := `{"call_id":"` + fzCall + `","recipients":["bob","carol"],"caller":{"display_name":"A","avatar":"x"}}`
	b.Run("decode", func(b *testing.B) {
		benchDecodeAndRule(b, payload, func(*fzWorld, context.Context, service.NotifyRequest) error { return nil })
	})
	b.Run("decode+rule", func(b *testing.B) {
		benchDecodeAndRule(b, payload, func(w *fzWorld, ctx context.Context, r service.NotifyRequest) error {
			_, err := w.svc.Notify(ctx, w.alice, r)
			return err
		})
	})
}
