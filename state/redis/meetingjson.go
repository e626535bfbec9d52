package redis

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard/switchboard/state"
)

// A meeting is decoded on nearly every transition, and encoding/json (by
// reflection, with a time.Parse per time field) was the largest cost of the
// store on the Go side. parseMeeting reads the stored document directly: the
// shapes the store writes (Go's encoder at Create, cjson in the scripts),
// every field of state.Meeting and the internal _raw. Strings without
// escapes are sliced from the document rather than copied, and the times
// share one allocation.
//
// It answers ok = false for anything else (an unknown or repeated key, an
// escape in a key, a value of an unexpected type, a number that is not a
// plain integer, a syntax error); decodeMeeting then runs encoding/json,
// which gives the same result or the same error as before. So the fast path
// only ever decides the documents whose meaning is plain.

// Top-level keys of a stored meeting, as bits (a repeated key falls back).
const (
	mkID = 1 << iota
	mkInstant
	mkTitle
	mkDescription
	mkStart
	mkEnd
	mkAllowExternal
	mkCreatedBy
	mkStatus
	mkStartedAt
	mkEndedAt
	mkCreatedAt
	mkUpdatedAt
	mkParticipants
	mkActiveCount
	mkVersion
	mkConns
	mkAnswered
	mkReminded
	mkRaw
)

// Keys of a participant, as bits.
const (
	pkUser = 1 << iota
	pkRole
	pkStatus
	pkJoinedAt
	pkLeftAt
	pkRingDeadline
)

// jsonScan reads one JSON document from s.
type jsonScan struct {
	s     string
	i     int
	times []state.Time // backing store of the *Time fields
}

func (p *jsonScan) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// peek skips white space and returns the next byte, or 0 at the end.
func (p *jsonScan) peek() byte {
	p.ws()
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

// eat consumes c (after white space) and reports whether it was there.
func (p *jsonScan) eat(c byte) bool {
	if p.peek() == c {
		p.i++
		return true
	}
	return false
}

// null consumes a null literal, if that is what comes next.
func (p *jsonScan) null() bool {
	if p.peek() == 'n' && strings.HasPrefix(p.s[p.i:], "null") {
		p.i += 4
		return true
	}
	return false
}

// rawString returns the text between the quotes of the next string, as is,
// and whether it holds escapes or bytes that are not ASCII.
func (p *jsonScan) rawString() (raw string, escaped, nonASCII, ok bool) {
	if p.peek() != '"' {
		return "", false, false, false
	}
	start := p.i + 1
	for i := start; i < len(p.s); i++ {
		switch c := p.s[i]; {
		case c == '"':
			p.i = i + 1
			return p.s[start:i], escaped, nonASCII, true
		case c == '\\':
			escaped = true
			i++ // the escaped byte cannot end the string
		case c < 0x20:
			return "", false, false, false // a syntax error: let encoding/json say so
		case c >= utf8.RuneSelf:
			nonASCII = true
		}
	}
	return "", false, false, false
}

// str reads a string value as encoding/json would.
func (p *jsonScan) str() (string, bool) {
	start := p.i
	raw, escaped, nonASCII, ok := p.rawString()
	if !ok {
		return "", false
	}
	if !escaped && (!nonASCII || utf8.ValidString(raw)) {
		return raw, true
	}
	var v string
	if err := json.Unmarshal([]byte(p.s[start:p.i]), &v); err != nil {
		return "", false
	}
	return v, true
}

// key reads an object key and its colon. Keys with escapes fall back.
func (p *jsonScan) key() (string, bool) {
	raw, escaped, _, ok := p.rawString()
	if !ok || escaped || !p.eat(':') {
		return "", false
	}
	return raw, true
}

// boolean reads true or false (null leaves the zero value).
func (p *jsonScan) boolean() (v, ok bool) {
	if p.null() {
		return false, true
	}
	switch {
	case strings.HasPrefix(p.s[p.i:], "true"):
		p.i += 4
		return true, true
	case strings.HasPrefix(p.s[p.i:], "false"):
		p.i += 5
		return false, true
	}
	return false, false
}

// integer reads a plain decimal integer (null leaves zero).
func (p *jsonScan) integer() (int64, bool) {
	if p.null() {
		return 0, true
	}
	start := p.i
	if p.i < len(p.s) && p.s[p.i] == '-' {
		p.i++
	}
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	if p.i < len(p.s) {
		switch p.s[p.i] {
		case '.', 'e', 'E':
			return 0, false // a float: encoding/json decides
		}
	}
	if digits := strings.TrimPrefix(p.s[start:p.i], "-"); len(digits) > 1 && digits[0] == '0' {
		return 0, false // a leading zero is a syntax error
	}
	n, err := strconv.ParseInt(p.s[start:p.i], 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// time reads a state.Time as state.Time.UnmarshalJSON would: null and ""
// are the zero time.
func (p *jsonScan) time() (state.Time, bool) {
	if p.null() {
		return state.Time{}, true
	}
	raw, _, _, ok := p.rawString()
	if !ok {
		return state.Time{}, false
	}
	if raw == "" {
		return state.Time{}, true
	}
	if t, ok := fastTime(raw); ok {
		return t, true
	}
	t, err := state.ParseTime(raw)
	if err != nil {
		return state.Time{}, false
	}
	return t, true
}

// timePtr reads an optional time: null is nil, anything else a pointer (to
// the zero time for "", as encoding/json does).
func (p *jsonScan) timePtr() (*state.Time, bool) {
	if p.null() {
		return nil, true
	}
	t, ok := p.time()
	if !ok {
		return nil, false
	}
	if len(p.times) == cap(p.times) {
		p.times = make([]state.Time, 0, 8)
	}
	p.times = append(p.times, t)
	return &p.times[len(p.times)-1], true
}

// fastTime parses the layout every writer uses, state.TimeLayout, without
// time.Parse; any other form (or an invalid date) is left to ParseTime.
func fastTime(s string) (state.Time, bool) {
	// 2006-01-02T15:04:05.000Z
	if len(s) != 24 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
		s[16] != ':' || s[19] != '.' || s[23] != 'Z' {
		return state.Time{}, false
	}
	num := func(from, to int) (int, bool) {
		n := 0
		for i := from; i < to; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	y, ok1 := num(0, 4)
	mo, ok2 := num(5, 7)
	d, ok3 := num(8, 10)
	h, ok4 := num(11, 13)
	mi, ok5 := num(14, 16)
	sec, ok6 := num(17, 19)
	ms, ok7 := num(20, 23)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) ||
		mo < 1 || mo > 12 || d < 1 || d > daysIn(mo, y) || h > 23 || mi > 59 || sec > 59 {
		return state.Time{}, false
	}
	return state.Time{Time: time.Date(y, time.Month(mo), d, h, mi, sec, ms*int(time.Millisecond), time.UTC)}, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// object reads the members of an object (or null, which calls nothing),
// calling member with each key, which reads the value.
func (p *jsonScan) object(member func(key string) bool) bool {
	if p.null() {
		return true
	}
	if !p.eat('{') {
		return false
	}
	if p.eat('}') {
		return true
	}
	for {
		k, ok := p.key()
		if !ok || !member(k) {
			return false
		}
		if p.eat(',') {
			continue
		}
		return p.eat('}')
	}
}

// array reads the elements of an array (or null, which calls nothing).
func (p *jsonScan) array(elem func() bool) bool {
	if p.null() {
		return true
	}
	if !p.eat('[') {
		return false
	}
	if p.eat(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if p.eat(',') {
			continue
		}
		return p.eat(']')
	}
}

// parseMeeting decodes a stored meeting and its _raw, or answers ok = false
// when encoding/json must decide.
func parseMeeting(s string) (m *state.Meeting, raw map[string]string, ok bool) {
	p := &jsonScan{s: s}
	m = &state.Meeting{}
	seen := 0
	once := func(bit int) bool {
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	}
	ok = p.object(func(k string) bool {
		var ok bool
		switch k {
		case "meeting_id":
			if ok = once(mkID); ok {
				m.ID, ok = p.str()
			}
		case "is_instant_call":
			if ok = once(mkInstant); ok {
				m.IsInstantCall, ok = p.boolean()
			}
		case "title":
			if ok = once(mkTitle); ok {
				m.Title, ok = p.str()
			}
		case "description":
			if ok = once(mkDescription); ok {
				m.Description, ok = p.str()
			}
		case "start_time":
			if ok = once(mkStart); ok {
				m.StartTime, ok = p.time()
			}
		case "end_time":
			if ok = once(mkEnd); ok {
				m.EndTime, ok = p.time()
			}
		case "allow_external":
			if ok = once(mkAllowExternal); ok {
				m.AllowExternal, ok = p.boolean()
			}
		case "created_by":
			if ok = once(mkCreatedBy); ok {
				m.CreatedBy, ok = p.str()
			}
		case "status":
			if ok = once(mkStatus); ok {
				m.Status, ok = p.str()
			}
		case "started_at":
			if ok = once(mkStartedAt); ok {
				m.StartedAt, ok = p.timePtr()
			}
		case "ended_at":
			if ok = once(mkEndedAt); ok {
				m.EndedAt, ok = p.timePtr()
			}
		case "created_at":
			if ok = once(mkCreatedAt); ok {
				m.CreatedAt, ok = p.time()
			}
		case "updated_at":
			if ok = once(mkUpdatedAt); ok {
				m.UpdatedAt, ok = p.time()
			}
		case "participants":
			if ok = once(mkParticipants); ok {
				m.Participants, ok = p.participants()
			}
		case "active_count":
			if ok = once(mkActiveCount); ok {
				var n int64
				n, ok = p.integer()
				m.ActiveCount = int(n)
			}
		case "version":
			if ok = once(mkVersion); ok {
				m.Version, ok = p.integer()
			}
		case "_conns":
			if ok = once(mkConns); ok {
				m.Conns, ok = p.conns()
			}
		case "_answered":
			if ok = once(mkAnswered); ok {
				m.Answered, ok = p.boolean()
			}
		case "_reminded":
			if ok = once(mkReminded); ok {
				m.Reminded, ok = p.reminded()
			}
		case "_raw":
			if ok = once(mkRaw); ok {
				raw, ok = p.stringMap()
			}
		}
		return ok
	})
	if p.ws(); !ok || p.i != len(s) {
		return nil, nil, false
	}
	return m, raw, true
}

func (p *jsonScan) participants() ([]state.Participant, bool) {
	if p.null() {
		return nil, true
	}
	out := make([]state.Participant, 0, max(strings.Count(p.s[p.i:], `"user_id"`), 1))
	ok := p.array(func() bool {
		if p.peek() != '{' {
			return false // null elements and other shapes: encoding/json
		}
		var q state.Participant
		seen := 0
		ok := p.object(func(k string) bool {
			var bit int
			switch k {
			case "user_id":
				bit = pkUser
			case "role":
				bit = pkRole
			case "status":
				bit = pkStatus
			case "joined_at":
				bit = pkJoinedAt
			case "left_at":
				bit = pkLeftAt
			case "_ring_deadline":
				bit = pkRingDeadline
			default:
				return false
			}
			if seen&bit != 0 {
				return false
			}
			seen |= bit
			var ok bool
			switch bit {
			case pkUser:
				q.UserID, ok = p.str()
			case pkRole:
				q.Role, ok = p.str()
			case pkStatus:
				q.Status, ok = p.str()
			case pkJoinedAt:
				q.JoinedAt, ok = p.timePtr()
			case pkLeftAt:
				q.LeftAt, ok = p.timePtr()
			case pkRingDeadline:
				q.RingDeadline, ok = p.timePtr()
			}
			return ok
		})
		out = append(out, q)
		return ok
	})
	if !ok {
		return nil, false
	}
	return out, true // [] is an empty slice, not nil, as encoding/json has it
}

func (p *jsonScan) conns() (map[string][]string, bool) {
	if p.null() {
		return nil, true
	}
	out := map[string][]string{}
	ok := p.object(func(user string) bool {
		if _, dup := out[user]; dup || p.peek() != '[' {
			return false
		}
		list := []string{}
		ok := p.array(func() bool {
			c, ok := p.str()
			list = append(list, c)
			return ok
		})
		out[user] = list
		return ok
	})
	return out, ok
}

func (p *jsonScan) reminded() (map[string]bool, bool) {
	if p.null() {
		return nil, true
	}
	out := map[string]bool{}
	ok := p.object(func(k string) bool {
		if _, dup := out[k]; dup || p.peek() == 'n' {
			return false
		}
		v, ok := p.boolean()
		out[k] = v
		return ok
	})
	return out, ok
}

func (p *jsonScan) stringMap() (map[string]string, bool) {
	if p.null() {
		return nil, true
	}
	out := map[string]string{}
	ok := p.object(func(k string) bool {
		if _, dup := out[k]; dup || p.peek() != '"' {
			return false
		}
		v, ok := p.str()
		out[k] = v
		return ok
	})
	return out, ok
}

// appendMeeting appends the stored form of m with its _raw, byte for byte
// what encoding/json writes for storedMeeting (the tests hold it to that):
// fields in declaration order, omitempty as tagged, map keys sorted, HTML
// characters escaped. A string with anything to escape is written by
// encoding/json itself.
func appendMeeting(b []byte, m *state.Meeting, raw map[string]string) []byte {
	b = append(b, `{"meeting_id":`...)
	b = appendString(b, m.ID)
	b = append(b, `,"is_instant_call":`...)
	b = strconv.AppendBool(b, m.IsInstantCall)
	b = append(b, `,"title":`...)
	b = appendString(b, m.Title)
	b = append(b, `,"description":`...)
	b = appendString(b, m.Description)
	b = append(b, `,"start_time":`...)
	b = appendTime(b, m.StartTime)
	b = append(b, `,"end_time":`...)
	b = appendTime(b, m.EndTime)
	b = append(b, `,"allow_external":`...)
	b = strconv.AppendBool(b, m.AllowExternal)
	b = append(b, `,"created_by":`...)
	b = appendString(b, m.CreatedBy)
	b = append(b, `,"status":`...)
	b = appendString(b, m.Status)
	b = append(b, `,"started_at":`...)
	b = appendTimePtr(b, m.StartedAt)
	b = append(b, `,"ended_at":`...)
	b = appendTimePtr(b, m.EndedAt)
	b = append(b, `,"created_at":`...)
	b = appendTime(b, m.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, m.UpdatedAt)
	b = append(b, `,"participants":`...)
	if m.Participants == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, p := range m.Participants {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"user_id":`...)
			b = appendString(b, p.UserID)
			b = append(b, `,"role":`...)
			b = appendString(b, p.Role)
			b = append(b, `,"status":`...)
			b = appendString(b, p.Status)
			b = append(b, `,"joined_at":`...)
			b = appendTimePtr(b, p.JoinedAt)
			b = append(b, `,"left_at":`...)
			b = appendTimePtr(b, p.LeftAt)
			if p.RingDeadline != nil {
				b = append(b, `,"_ring_deadline":`...)
				b = appendTimePtr(b, p.RingDeadline)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"active_count":`...)
	b = strconv.AppendInt(b, int64(m.ActiveCount), 10)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, m.Version, 10)
	if len(m.Conns) > 0 {
		b = append(b, `,"_conns":{`...)
		for i, u := range slices.Sorted(maps.Keys(m.Conns)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, u)
			b = append(b, ':')
			list := m.Conns[u]
			if list == nil {
				b = append(b, "null"...)
				continue
			}
			b = append(b, '[')
			for j, c := range list {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendString(b, c)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	if m.Answered {
		b = append(b, `,"_answered":true`...)
	}
	if len(m.Reminded) > 0 {
		b = append(b, `,"_reminded":{`...)
		for i, k := range slices.Sorted(maps.Keys(m.Reminded)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = strconv.AppendBool(b, m.Reminded[k])
		}
		b = append(b, '}')
	}
	if len(raw) > 0 {
		b = append(b, `,"_raw":{`...)
		for i, k := range slices.Sorted(maps.Keys(raw)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, raw[k])
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendString appends s as a JSON string; one with anything to escape is
// left to encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendTime(b []byte, t state.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, state.TimeLayout)
	return append(b, '"')
}

func appendTimePtr(b []byte, t *state.Time) []byte {
	if t == nil {
		return append(b, "null"...)
	}
	return appendTime(b, *t)
}
