package state

import (
	"bytes"
	"fmt"
	"time"
)

// TimeLayout is the wire and storage form of every time Switchboard writes:
// RFC 3339, UTC, milliseconds. Strings in this layout sort in time order, which
// the Redis scripts rely on when they compare times.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// Time is a UTC instant with millisecond precision that encodes as TimeLayout.
// The zero Time encodes as null.
type Time struct{ time.Time }

// At returns t truncated to milliseconds in UTC.
func At(t time.Time) Time { return Time{t.UTC().Truncate(time.Millisecond)} }

// TimePtr returns a pointer to At(t), for the optional time fields.
func TimePtr(t time.Time) *Time { v := At(t); return &v }

// String formats t in TimeLayout, or "" for the zero time.
func (t Time) String() string {
	if t.IsZero() {
		return ""
	}
	var b [len(TimeLayout)]byte
	return string(t.appendLayout(b[:0]))
}

// appendLayout appends t in TimeLayout, as t.UTC().AppendFormat would
// (fractions of a millisecond are cut, not rounded) without its parsing of
// the layout: every meeting written or read carries seven times.
func (t Time) appendLayout(b []byte) []byte {
	u := t.UTC()
	y, mo, d := u.Date()
	if y < 0 || y > 9999 {
		return u.AppendFormat(b, TimeLayout)
	}
	h, mi, s := u.Clock()
	ms := u.Nanosecond() / 1e6
	return append(b,
		byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+int(mo)/10), byte('0'+int(mo)%10), '-', byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':',
		byte('0'+s/10), byte('0'+s%10), '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	b := make([]byte, 0, len(TimeLayout)+2)
	b = append(b, '"')
	b = t.appendLayout(b)
	return append(b, '"'), nil
}

// UnmarshalJSON accepts null, "" and any RFC 3339 string.
func (t *Time) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) || bytes.Equal(b, []byte(`""`)) {
		*t = Time{}
		return nil
	}
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("time: want a string, got %s", b)
	}
	p, err := ParseTime(string(b[1 : len(b)-1]))
	if err != nil {
		return err
	}
	*t = p
	return nil
}

// ParseTime parses any RFC 3339 time (with or without fractional seconds and in
// any offset) and returns it in UTC with millisecond precision.
func ParseTime(s string) (Time, error) {
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return Time{}, fmt.Errorf("time %q is not RFC 3339: %w", s, err)
	}
	return At(v), nil
}
