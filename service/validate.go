package service

import (
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/switchboard/switchboard/state"
)

// checkID validates an identifier (user, meeting, session, token): present,
// bounded, printable.
func (s *Service) checkID(field, v string) error {
	if v == "" {
		return Errorf(CodeInvalidPayload, "%s is required", field)
	}
	if len(v) > s.cfg.MaxIDBytes {
		return Errorf(CodeTooLarge, "%s is longer than %d bytes", field, s.cfg.MaxIDBytes)
	}
	if !utf8.ValidString(v) || strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return Errorf(CodeInvalidPayload, "%s has invalid characters", field)
	}
	return nil
}

// checkMeetingID validates a meeting or call id; anything that is not one of
// ours cannot exist, so it is not_found after the shape check.
func (s *Service) checkMeetingID(field, v string) error {
	if err := s.checkID(field, v); err != nil {
		return err
	}
	if !strings.HasPrefix(v, "mtg_") && !strings.HasPrefix(v, "call_") {
		return Errorf(CodeNotFound, "%s not found", field)
	}
	return nil
}

// checkOpaque bounds an opaque (possibly encrypted) string.
func checkOpaque(field, v string, max int) error {
	if len(v) > max {
		return Errorf(CodeTooLarge, "%s is longer than %d bytes", field, max)
	}
	return nil
}

// userList validates, trims duplicates from and bounds a list of user ids.
// skip is left out (the actor, for instance).
func (s *Service) userList(field string, ids []string, max int, skip string) ([]string, error) {
	if len(ids) > max {
		return nil, Errorf(CodeTooLarge, "%s has more than %d user ids", field, max)
	}
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if err := s.checkID(field+" entry", id); err != nil {
			return nil, err
		}
		if id == skip || seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, id)
	}
	return out, nil
}

// firstString returns the first non-nil of the spellings of one field.
func firstString(vs ...*string) *string {
	for _, v := range vs {
		if v != nil {
			return v
		}
	}
	return nil
}

func firstBool(vs ...*bool) *bool {
	for _, v := range vs {
		if v != nil {
			return v
		}
	}
	return nil
}

func parseTime(field string, v *string) (*state.Time, error) {
	if v == nil {
		return nil, nil
	}
	t, err := state.ParseTime(*v)
	if err != nil {
		return nil, Errorf(CodeInvalidPayload, "%s must be an RFC 3339 time", field)
	}
	return &t, nil
}

// checkRaw bounds an opaque JSON value (an envelope, keys).
func checkRaw(field string, v json.RawMessage, max int) error {
	if len(v) > max {
		return Errorf(CodeTooLarge, "%s is larger than %d bytes", field, max)
	}
	return nil
}
