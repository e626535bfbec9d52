package state

import (
	"strings"
	"unicode/utf8"
)

// Plain returns m as JSON-shaped values (maps, slices, strings, float64
// numbers, booleans, nil): what decoding m's JSON encoding into an any
// gives, made without encoding it. The gateway sends meetings in this form
// (gateway.plain); TestMeetingPlain holds it to the JSON round trip.
func (m *Meeting) Plain() any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, 20)
	out["meeting_id"] = plainString(m.ID)
	out["is_instant_call"] = m.IsInstantCall
	out["title"] = plainString(m.Title)
	out["description"] = plainString(m.Description)
	out["start_time"] = m.StartTime.plain()
	out["end_time"] = m.EndTime.plain()
	out["allow_external"] = m.AllowExternal
	out["created_by"] = plainString(m.CreatedBy)
	out["status"] = plainString(m.Status)
	out["started_at"] = plainTime(m.StartedAt)
	out["ended_at"] = plainTime(m.EndedAt)
	out["created_at"] = m.CreatedAt.plain()
	out["updated_at"] = m.UpdatedAt.plain()
	out["active_count"] = float64(m.ActiveCount)
	out["version"] = float64(m.Version)
	if m.Participants == nil {
		out["participants"] = nil
	} else {
		ps := make([]any, len(m.Participants))
		for i := range m.Participants {
			ps[i] = m.Participants[i].plain()
		}
		out["participants"] = ps
	}
	if len(m.Conns) > 0 {
		cs := make(map[string]any, len(m.Conns))
		for u, ids := range m.Conns {
			cs[plainString(u)] = plainStrings(ids)
		}
		out["_conns"] = cs
	}
	if m.Answered {
		out["_answered"] = true
	}
	if len(m.Reminded) > 0 {
		rs := make(map[string]any, len(m.Reminded))
		for k, v := range m.Reminded {
			rs[plainString(k)] = v
		}
		out["_reminded"] = rs
	}
	return out
}

func (p *Participant) plain() map[string]any {
	out := map[string]any{
		"user_id":   plainString(p.UserID),
		"role":      plainString(p.Role),
		"status":    plainString(p.Status),
		"joined_at": plainTime(p.JoinedAt),
		"left_at":   plainTime(p.LeftAt),
	}
	if p.RingDeadline != nil {
		out["_ring_deadline"] = p.RingDeadline.plain()
	}
	return out
}

// plain is t as its JSON decodes: the TimeLayout string, nil for the zero
// time.
func (t Time) plain() any {
	if t.IsZero() {
		return nil
	}
	return t.String()
}

func plainTime(t *Time) any {
	if t == nil {
		return nil
	}
	return t.plain()
}

func plainStrings(s []string) any {
	if s == nil {
		return nil
	}
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = plainString(v)
	}
	return out
}

// plainString is s as its JSON decodes: each byte that is not valid UTF-8
// becomes U+FFFD, as encoding/json writes it.
func plainString(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
