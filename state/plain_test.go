package state_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/statetest"
)

// fullMeeting has every field set.
func fullMeeting(s string) *state.Meeting {
	at := state.TimePtr(time.Date(2026, 11, 26, 10, 0, 0, 123e6, time.UTC))
	return &state.Meeting{
		ID: "m_" + s, IsInstantCall: true, Title: s, Description: "d " + s,
		StartTime: *at, EndTime: state.At(at.Add(time.Hour)), AllowExternal: true, CreatedBy: s, Status: "live",
		StartedAt: at, EndedAt: state.TimePtr(at.Add(2 * time.Hour)), CreatedAt: *at, UpdatedAt: *at,
		Participants: []state.Participant{
			{UserID: s, Role: "owner", Status: "joined", JoinedAt: at},
			{UserID: "bob", Role: "member", Status: "ringing", LeftAt: at, RingDeadline: at},
		},
		ActiveCount: 3, Version: 1 << 40,
		Conns:    map[string][]string{s: {"c1", s}, "bob": nil, "carol": {}},
		Answered: true,
		Reminded: map[string]bool{"15": true, s: false},
	}
}

// TestMeetingPlain: Plain gives what the JSON round trip gives, for full,
// empty and odd meetings (strings that are not UTF-8 included).
func TestMeetingPlain(t *testing.T) {
	for name, m := range map[string]*state.Meeting{
		"nil":             nil,
		"zero":            {},
		"full":            fullMeeting("alice"),
		"not utf-8":       fullMeeting("bad \xff\xed\xa0\x80 é \u2028 <&>"),
		"no participants": {ID: "m", Participants: []state.Participant{}},
	} {
		t.Run(name, func(t *testing.T) {
			var got any = m.Plain()
			if want := statetest.JSONRoundTrip(t, m); !reflect.DeepEqual(got, want) {
				t.Fatalf("Plain:\n %#v\nJSON round trip:\n %#v", got, want)
			}
		})
	}
	// Public meetings, as the gateway sends them.
	if got, want := fullMeeting("x").Public().Plain(), statetest.JSONRoundTrip(t, fullMeeting("x").Public()); !reflect.DeepEqual(got, want) {
		t.Fatalf("public: %#v vs %#v", got, want)
	}
}

// TestMeetingPlainKnowsEveryField fails when Meeting or Participant gains
// a field: Plain must then write it too (and fullMeeting set it).
func TestMeetingPlainKnowsEveryField(t *testing.T) {
	if n := reflect.TypeOf(state.Meeting{}).NumField(); n != 19 {
		t.Errorf("Meeting has %d fields, Plain knows 19", n)
	}
	if n := reflect.TypeOf(state.Participant{}).NumField(); n != 6 {
		t.Errorf("Participant has %d fields, Plain knows 6", n)
	}
}

func FuzzMeetingPlain(f *testing.F) {
	f.Add("alice", int64(3))
	f.Add("\xff<\u2028>", int64(-1<<62))
	f.Fuzz(func(t *testing.T, s string, n int64) {
		m := fullMeeting(s)
		m.Version, m.ActiveCount = n, int(n>>8)
		if got, want := m.Plain(), statetest.JSONRoundTrip(t, m); !reflect.DeepEqual(got, want) {
			t.Fatalf("%#v vs %#v", got, want)
		}
	})
}
