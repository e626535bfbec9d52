package redis

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/state"
)

var t0 = time.Date(2026, time.November, 25, 10, 0, 0, 0, time.UTC)

// meetingDocs are stored meetings as the store writes them, Go's encoder
// (Create) and cjson (every script), with the shapes each produces, and
// malformed ones.
func meetingDocs(t testing.TB) map[string]string {
	docs := map[string]string{
		// cjson: keys in hash order, "\/" escaped, empty tables dropped.
		"cjson call":    `{"description":"","is_instant_call":true,"created_by":"alice","ended_at":null,"status":"live","participants":[{"role":"owner","joined_at":"2026-11-25T10:00:00.000Z","status":"joined","left_at":null,"user_id":"alice"},{"role":"member","joined_at":"2026-11-25T10:00:01.000Z","status":"accepted","left_at":null,"user_id":"bob"}],"end_time":"2026-11-26T10:00:00.000Z","_conns":{"bob":["b1"],"alice":["a1"]},"created_at":"2026-11-25T10:00:00.000Z","_answered":true,"meeting_id":"call_1","version":3,"title":"","allow_external":false,"updated_at":"2026-11-25T10:00:01.000Z","start_time":"2026-11-25T10:00:00.000Z","started_at":"2026-11-25T10:00:00.000Z","active_count":2}`,
		"cjson ringing": `{"meeting_id":"c","participants":[{"user_id":"bob","role":"member","status":"ringing","joined_at":null,"left_at":null,"_ring_deadline":"2026-11-25T10:01:00.000Z"}],"version":2}`,
		"cjson raw":     `{"meeting_id":"m","title":"\ufffd","_raw":{"title":"\/w==","description":"+\/8="},"description":"\ufffd\ufffd","version":1}`,
		"reminded":      `{"meeting_id":"m","_reminded":{"15":true,"0":false},"status":"scheduled"}`,
		"escapes":       `{"meeting_id":"a\"b\\c\/d\u00e9\ud83d\ude00","title":"line\nbreak\ttab","created_by":"é"}`,
		"white space":   " \t\r\n{ \"meeting_id\" : \"x\" , \"participants\" : [ ] , \"_conns\" : { \"u\" : [ ] } , \"version\" : -7 } \n",
		"empty":         `{}`,
		"nulls":         `{"meeting_id":null,"participants":null,"_conns":null,"_reminded":null,"_raw":null,"started_at":null,"start_time":null,"version":null,"_answered":null}`,
		"empty times":   `{"started_at":"","start_time":"","participants":[{"user_id":"u","joined_at":""}]}`,
		"other times":   `{"start_time":"2026-11-25T11:00:00+01:00","end_time":"2026-11-25T10:00:00.123456789Z","started_at":"2024-02-29T23:59:59.999Z"}`,

		// Unusual or malformed.
		"bad date":            `{"start_time":"2026-02-29T10:00:00.000Z"}`,
		"bad hour":            `{"start_time":"2026-02-20T24:00:00.000Z"}`,
		"not a time":          `{"start_time":5}`,
		"float version":       `{"version":1e+14}`,
		"leading zero":        `{"version":01}`,
		"unknown key":         `{"meeting_id":"x","extra":[1,{"a":null}]}`,
		"case folded key":     `{"Meeting_ID":"x"}`,
		"repeated key":        `{"meeting_id":"x","meeting_id":"y"}`,
		"escaped key":         `{"meeting\u005fid":"x"}`,
		"invalid utf8":        "{\"title\":\"a\xffb\"}",
		"bad type":            `{"title":true,"version":2}`,
		"empty object list":   `{"participants":{}}`,
		"null participant":    `{"participants":[null]}`,
		"null conn list":      `{"_conns":{"u":null}}`,
		"null reminder":       `{"_reminded":{"15":null}}`,
		"bad raw":             `{"title":"x","_raw":{"title":"%%%"}}`,
		"trailing":            `{"meeting_id":"x"}x`,
		"trailing nul":        "{\"meeting_id\":\"x\"}\x00",
		"truncated":           `{"meeting_id":"x"`,
		"control in string":   "{\"title\":\"a\nb\"}",
		"bad escape":          `{"title":"a\qb"}`,
		"array":               `[]`,
		"literal":             `nullx`,
		"true prefix":         `{"_answered":truex}`,
		"participant unknown": `{"participants":[{"user_id":"u","x":1}]}`,
		"participant repeat":  `{"participants":[{"user_id":"u","user_id":"v"}]}`,
	}
	full := &state.Meeting{
		ID: "mtg_1", IsInstantCall: false, Title: "Weekly <sync> & \u2028 \"plan\"", Description: "a\xffb",
		StartTime: state.At(t0), EndTime: state.At(t0.Add(time.Hour)), AllowExternal: true, CreatedBy: "alice",
		Status: state.StatusLive, StartedAt: state.TimePtr(t0.Add(time.Minute)), CreatedAt: state.At(t0),
		UpdatedAt: state.At(t0.Add(2 * time.Minute)), ActiveCount: 2, Version: 12,
		Participants: []state.Participant{
			{UserID: "alice", Role: state.RoleOwner, Status: state.PartJoined, JoinedAt: state.TimePtr(t0)},
			{UserID: "bob", Role: state.RoleMember, Status: state.PartRinging, RingDeadline: state.TimePtr(t0.Add(time.Minute))},
			{UserID: "carol", Role: state.RoleMember, Status: state.PartLeft, JoinedAt: state.TimePtr(t0), LeftAt: state.TimePtr(t0.Add(time.Second))},
		},
		Conns:    map[string][]string{"alice": {"a1", "a2"}, "dave": {}},
		Answered: true,
		Reminded: map[string]bool{"15": true},
	}
	b, err := stdEncodeMeeting(full)
	if err != nil {
		t.Fatal(err)
	}
	docs["go encoder"] = string(b)
	b, err = stdEncodeMeeting(&state.Meeting{ID: "bare"})
	if err != nil {
		t.Fatal(err)
	}
	docs["go encoder, zero"] = string(b)
	return docs
}

// stdEncodeMeeting and stdDecodeMeeting are encodeMeeting and
// decodeMeeting with encoding/json: what a node built before the switch to
// go-json writes and reads during a rolling deploy.
func stdEncodeMeeting(m *state.Meeting) ([]byte, error) {
	return json.Marshal(storedMeeting{Meeting: m,
		Raw: rawOf(map[string]string{"title": m.Title, "description": m.Description})})
}

func stdDecodeMeeting(doc []byte) (*state.Meeting, error) {
	d := storedMeeting{Meeting: &state.Meeting{}}
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("redis: decode meeting: %w", err)
	}
	return restoreMeeting(d.Meeting, d.Raw)
}

// TestMeetingCodecAgreesWithEncodingJSON: every document decodes to the
// same meeting as with encoding/json, and what one refuses the other
// refuses.
func TestMeetingCodecAgreesWithEncodingJSON(t *testing.T) {
	for name, doc := range meetingDocs(t) {
		t.Run(name, func(t *testing.T) {
			checkDecode(t, doc)
		})
	}
}

func checkDecode(t *testing.T, doc string) {
	t.Helper()
	want, wantErr := stdDecodeMeeting([]byte(doc))
	got, gotErr := decodeMeeting(doc)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("error %v, encoding/json: %v", gotErr, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded\n%#v\nencoding/json\n%#v", got, want)
	}
}

// FuzzDecodeMeeting: the decoder never disagrees with encoding/json.
func FuzzDecodeMeeting(f *testing.F) {
	for _, doc := range meetingDocs(f) {
		f.Add(doc)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		if doc == "" || doc == "null" {
			return
		}
		checkDecode(t, doc)
	})
}

func BenchmarkDecodeMeeting(b *testing.B) {
	docs := map[string]string{"call": meetingDocs(b)["cjson call"], "50-participants": bigMeetingDoc(b)}
	decoders := map[string]func(string) (*state.Meeting, error){
		"":               decodeMeeting,
		"/encoding-json": func(doc string) (*state.Meeting, error) { return stdDecodeMeeting([]byte(doc)) },
	}
	for name, doc := range docs {
		for suffix, decode := range decoders {
			b.Run(name+suffix, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := decode(doc); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func bigMeetingDoc(t testing.TB) string {
	b, err := stdEncodeMeeting(bigMeeting())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func bigMeeting() *state.Meeting {
	m := &state.Meeting{ID: "mtg_a", Title: "t", StartTime: state.At(t0), EndTime: state.At(t0.Add(time.Hour)),
		CreatedBy: "alice", Status: state.StatusLive, StartedAt: state.TimePtr(t0), CreatedAt: state.At(t0),
		UpdatedAt: state.At(t0), Version: 40, Conns: map[string][]string{}}
	for i := range 50 {
		u := "user" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + string(rune('a'+i/26))
		p := state.Participant{UserID: u, Role: state.RoleMember, Status: state.PartInvited}
		if i%2 == 0 {
			p.Status, p.JoinedAt = state.PartJoined, state.TimePtr(t0)
			m.Conns[u] = []string{"c" + u}
		}
		m.Participants = append(m.Participants, p)
	}
	return m
}

// encodeCases are meetings with every field shape the encoder meets.
func encodeCases() map[string]*state.Meeting {
	full := &state.Meeting{
		ID: "mtg_1", Title: "Weekly <sync> & \u2028 \"plan\" \\ \x01\b\f\n\r\t é", Description: "a\xffb",
		StartTime: state.At(t0), EndTime: state.At(t0.Add(time.Hour)), AllowExternal: true, CreatedBy: "alice",
		Status: state.StatusLive, StartedAt: state.TimePtr(t0.Add(time.Minute)), EndedAt: &state.Time{},
		CreatedAt: state.At(t0), UpdatedAt: state.At(t0.Add(2 * time.Minute)), ActiveCount: -2, Version: 1 << 60,
		Participants: []state.Participant{
			{UserID: "alice", Role: state.RoleOwner, Status: state.PartJoined, JoinedAt: state.TimePtr(t0)},
			{UserID: "b<o>b", Role: state.RoleMember, Status: state.PartRinging, RingDeadline: state.TimePtr(t0.Add(time.Minute))},
			{UserID: "\u2029", RingDeadline: &state.Time{}},
		},
		Conns:    map[string][]string{"alice": {"a1", "a&2"}, "dave": {}, "erin": nil, "": {""}},
		Answered: true,
		Reminded: map[string]bool{"15": true, "0": false},
	}
	sub := full.Clone()
	sub.StartTime = state.Time{Time: t0.Add(1234567 * time.Nanosecond).In(time.FixedZone("x", 3600))}
	sub.Title, sub.Description = "ok", "\xc3"
	return map[string]*state.Meeting{
		"full":              full,
		"zero":              {},
		"empty lists":       {Participants: []state.Participant{}, Conns: map[string][]string{}, Reminded: map[string]bool{}},
		"sub-ms and zone":   sub,
		"invalid title":     {ID: "x", Title: "\xff\xfe"},
		"call":              meetingDocsCall(),
		"big":               bigMeeting(),
		"unicode":           {ID: "ü", Title: "日本語", CreatedBy: "\U0001F600"},
		"control and quote": {ID: "\x7f\"", Status: "\x00"},
	}
}

func meetingDocsCall() *state.Meeting {
	m, err := decodeMeeting(`{"description":"","is_instant_call":true,"created_by":"alice","ended_at":null,"status":"live","participants":[{"role":"owner","joined_at":"2026-11-25T10:00:00.000Z","status":"joined","left_at":null,"user_id":"alice"},{"role":"member","joined_at":null,"status":"invited","left_at":null,"user_id":"bob"}],"end_time":"2026-11-26T10:00:00.000Z","_conns":{"alice":["a1"]},"created_at":"2026-11-25T10:00:00.000Z","meeting_id":"call_1","version":1,"title":"","allow_external":false,"updated_at":"2026-11-25T10:00:00.000Z","start_time":"2026-11-25T10:00:00.000Z","started_at":"2026-11-25T10:00:00.000Z","active_count":1}`)
	if err != nil {
		panic(err)
	}
	return m
}

// TestEncodeMeetingReadByEncodingJSON: what the store writes, a node with
// encoding/json reads as the same meeting, and so does the store.
func TestEncodeMeetingReadByEncodingJSON(t *testing.T) {
	for name, m := range encodeCases() {
		t.Run(name, func(t *testing.T) {
			checkEncode(t, m)
		})
	}
}

func checkEncode(t *testing.T, m *state.Meeting) {
	t.Helper()
	ref, err := stdEncodeMeeting(m)
	if err != nil {
		t.Fatal(err)
	}
	want, err := stdDecodeMeeting(ref)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := encodeMeeting(m)
	if err != nil {
		t.Fatal(err)
	}
	for reader, decode := range map[string]func([]byte) (*state.Meeting, error){
		"encoding/json": stdDecodeMeeting,
		"the store":     func(b []byte) (*state.Meeting, error) { return decodeMeeting(string(b)) },
	} {
		got, err := decode(doc)
		if err != nil {
			t.Fatalf("%s: %v\n%s", reader, err, doc)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s read\n%#v\nwant\n%#v", reader, got, want)
		}
	}
}

// FuzzEncodeMeeting: any strings, in every place a string goes.
func FuzzEncodeMeeting(f *testing.F) {
	f.Add("t", "d", "u", "c", "k", int64(0))
	f.Add("<&>", "\xff", "\u2028", "\x00", "é", int64(-1))
	f.Fuzz(func(t *testing.T, title, desc, user, conn, key string, n int64) {
		m := meetingDocsCall()
		m.Title, m.Description, m.CreatedBy, m.Status = title, desc, user, key
		m.Version, m.ActiveCount = n, int(n)
		m.Participants = append(m.Participants, state.Participant{UserID: user, Role: key, Status: conn})
		m.Conns[user] = []string{conn, key}
		m.Reminded = map[string]bool{key: true, title: false}
		checkEncode(t, m)
		checkDecode(t, string(must(encodeMeeting(m))))
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func BenchmarkEncodeMeeting(b *testing.B) {
	for name, m := range map[string]*state.Meeting{"call": meetingDocsCall(), "50-participants": bigMeeting()} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := encodeMeeting(m); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/encoding-json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := stdEncodeMeeting(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
