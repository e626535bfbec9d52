package redis

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"

	"github.com/switchboard/switchboard/state"
)

// Opaque fields (a meeting's title and description, a guest's display name
// and keys) are stored byte for byte, but JSON strings carry only valid
// UTF-8: encoding/json replaces anything else. A stored document therefore
// keeps, in its internal field _raw, the base64 of each opaque field that is
// not valid UTF-8; decoding puts those bytes back. Valid fields, the usual
// case, cost nothing.

// rawOf returns the base64 of the values that are not valid UTF-8, by field
// name, or nil.
func rawOf(fields map[string]string) map[string]string {
	var out map[string]string
	for name, v := range fields {
		if !utf8.ValidString(v) {
			if out == nil {
				out = map[string]string{}
			}
			out[name] = base64.StdEncoding.EncodeToString([]byte(v))
		}
	}
	return out
}

// b64IfInvalid is the base64 of v when v is not valid UTF-8, else "".
func b64IfInvalid(v string) string {
	if utf8.ValidString(v) {
		return ""
	}
	return base64.StdEncoding.EncodeToString([]byte(v))
}

// restore sets *dst to the bytes recorded for name, if any.
func restore(raw map[string]string, name string, dst *string) error {
	v, ok := raw[name]
	if !ok {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return fmt.Errorf("redis: stored bytes of %s: %w", name, err)
	}
	*dst = string(b)
	return nil
}

// storedMeeting is the stored form of a meeting.
type storedMeeting struct {
	*state.Meeting
	Raw map[string]string `json:"_raw,omitempty"`
}

// encodeMeeting and decodeMeeting use github.com/goccy/go-json, a drop-in
// for encoding/json that decodes a call's document about three times as
// fast (every transition answers one): same field names, same shapes, so
// nodes of either encoder read each other's documents
// (TestMeetingCodecAgreesWithEncodingJSON).
func encodeMeeting(m *state.Meeting) ([]byte, error) {
	return gojson.Marshal(storedMeeting{Meeting: m,
		Raw: rawOf(map[string]string{"title": m.Title, "description": m.Description})})
}

// decodeMeeting decodes a stored meeting; "null" or nothing is nil.
func decodeMeeting(doc string) (*state.Meeting, error) {
	if len(doc) == 0 || doc == "null" {
		return nil, nil
	}
	d := storedMeeting{Meeting: &state.Meeting{}}
	if err := gojson.Unmarshal([]byte(doc), &d); err != nil {
		return nil, fmt.Errorf("redis: decode meeting: %w", err)
	}
	return restoreMeeting(d.Meeting, d.Raw)
}

// restoreMeeting puts back the opaque fields recorded in raw.
func restoreMeeting(m *state.Meeting, raw map[string]string) (*state.Meeting, error) {
	if err := restore(raw, "title", &m.Title); err != nil {
		return nil, err
	}
	if err := restore(raw, "description", &m.Description); err != nil {
		return nil, err
	}
	return m, nil
}

// storedSession is the stored form of a session. Keys is opaque client data
// kept as a JSON string, so that Lua never re-encodes it (cjson would turn
// [] into {} and round numbers).
type storedSession struct {
	*state.Session
	Keys string            `json:"keys,omitempty"`
	Raw  map[string]string `json:"_raw,omitempty"`
}

func encodeSession(s *state.Session) ([]byte, error) {
	c := *s
	c.Keys = nil
	return json.Marshal(storedSession{Session: &c, Keys: string(s.Keys),
		Raw: rawOf(map[string]string{"display_name": s.DisplayName, "keys": string(s.Keys)})})
}

// decodeSession decodes a stored session; "null" or nothing is nil.
func decodeSession(b []byte) (*state.Session, error) {
	if len(b) == 0 || string(b) == "null" {
		return nil, nil
	}
	d := storedSession{Session: &state.Session{}}
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("redis: decode session: %w", err)
	}
	if err := restore(d.Raw, "display_name", &d.DisplayName); err != nil {
		return nil, err
	}
	if err := restore(d.Raw, "keys", &d.Keys); err != nil {
		return nil, err
	}
	s := d.Session
	s.Keys = nil
	if d.Keys != "" {
		s.Keys = json.RawMessage(d.Keys)
	}
	return s, nil
}
