package gateway

import (
	"math"
	"reflect"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/statetest"
)

func TestPlainAgreesWithJSONRoundTrip(t *testing.T) {
	type inner struct {
		ID    string    `json:"id"`
		Tags  []string  `json:"tags,omitempty"`
		At    time.Time `json:"at"`
		Count int       `json:"count"`
	}
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		v    any
	}{
		{"nil", nil},
		{"string", "héllo"},
		{"numbers", map[string]any{"i": 3, "f": 1.5, "u": uint32(7), "n": int64(-2)}},
		{"nested maps and slices", map[string]any{"a": []any{1, "x", nil, map[string]any{"b": true}}, "c": []string{"u1", "u2"}}},
		{"struct inside map", map[string]any{"call": inner{ID: "call_1", At: at, Count: 2}, "ok": true}},
		{"pointer to struct", &inner{ID: "m", Tags: []string{"t"}, At: at}},
		{"typed map", map[string]string{"k": "v"}},
		{"typed nested", map[string]any{"list": []inner{{ID: "a", At: at}}, "m": map[string]int{"x": 1}}},
		{"time", map[string]any{"at": at}},
		{"empty", map[string]any{"e": []any{}, "s": []string{}, "m": map[string]any{}}},
		{"meeting (its own Plain)", map[string]any{"call": (&state.Meeting{ID: "call_1", Title: "t", Status: "live",
			StartTime: state.At(at), StartedAt: state.TimePtr(at), Version: 2, ActiveCount: 1,
			Participants: []state.Participant{{UserID: "alice", Role: "owner", Status: "joined", JoinedAt: state.TimePtr(at)}}}).Public(),
			"nil meeting": (*state.Meeting)(nil)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := plain(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			// Numbers keep their Go type in plain; compare the JSON each
			// encoder writes.
			if want := statetest.JSONRoundTrip(t, tc.v); !reflect.DeepEqual(statetest.JSONRoundTrip(t, got), want) {
				t.Fatalf("plain(%#v) = %#v, JSON round trip %#v", tc.v, got, want)
			}
		})
	}
}

func TestPlainCopiesMaps(t *testing.T) {
	in := map[string]any{"a": map[string]any{"b": 1}}
	out, err := plain(in)
	if err != nil {
		t.Fatal(err)
	}
	out.(map[string]any)["a"].(map[string]any)["b"] = 2
	if in["a"].(map[string]any)["b"] != 1 {
		t.Fatal("plain shares maps with its input; a broadcast could see later changes")
	}
}

func TestPlainRefusesWhatJSONRefuses(t *testing.T) {
	for _, v := range []any{math.NaN(), map[string]any{"x": math.Inf(1)}, map[string]any{"c": make(chan int)}} {
		if _, err := plain(v); err == nil {
			t.Fatalf("plain(%v) did not fail", v)
		}
	}
}

func BenchmarkPlainCallIncoming(b *testing.B) {
	type meeting struct {
		ID           string   `json:"meeting_id"`
		Title        string   `json:"title"`
		Participants []string `json:"participants"`
		Status       string   `json:"status"`
	}
	d := map[string]any{"call": meeting{ID: "call_1", Title: "Call", Participants: []string{"alice", "bob"}, Status: "live"},
		"caller": map[string]any{"user_id": "alice", "display_name": "enc", "avatar": ""}, "timestamp": "2026-11-26T10:00:00.000Z"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := plain(d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlainMeeting: a call:incoming's meeting made plain by its own
// Plain against the JSON round trip that plain uses for other structs.
func BenchmarkPlainMeeting(b *testing.B) {
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	m := (&state.Meeting{ID: "call_39ff0b191dfc745326541beb9d3b1896", IsInstantCall: true, Title: "Call", Status: "live",
		CreatedBy: "alice", StartTime: state.At(at), EndTime: state.At(at.Add(time.Hour)), StartedAt: state.TimePtr(at),
		CreatedAt: state.At(at), UpdatedAt: state.At(at), Version: 2, ActiveCount: 1,
		Participants: []state.Participant{
			{UserID: "alice", Role: "owner", Status: "joined", JoinedAt: state.TimePtr(at)},
			{UserID: "bob", Role: "member", Status: "ringing"},
		}}).Public()
	b.Run("Plain", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := plain(m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("round trip", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			raw, err := gojson.Marshal(m)
			if err != nil {
				b.Fatal(err)
			}
			var out any
			if err := gojson.Unmarshal(raw, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
