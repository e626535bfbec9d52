package sioparser

import (
	"bytes"
	"math"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// Encoder encodes packets of plain data itself and hands the others to the
// library's encoder. It is safe for concurrent use.
type Encoder struct {
	library parser.Encoder
}

// scratch buffers, sized for a typical event; one is copied out at its
// exact length for each packet. One grown past maxScratch by a large packet
// is not kept.
const maxScratch = 64 << 10

var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// Encode implements parser.Encoder: a non-binary packet as one string
// buffer, "<type>[/<nsp>,][<id>][<json data>]".
func (e *Encoder) Encode(p *parser.Packet) []types.BufferInterface {
	if p.Type == parser.BINARY_EVENT || p.Type == parser.BINARY_ACK {
		return e.library.Encode(p)
	}
	bp := scratch.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxScratch {
			scratch.Put(bp)
		}
	}()
	b := append((*bp)[:0], byte(p.Type)+'0')
	if len(p.Nsp) > 0 && p.Nsp != "/" {
		b = append(b, p.Nsp...)
		b = append(b, ',')
	}
	if p.Id != nil {
		b = strconv.AppendUint(b, *p.Id, 10)
	}
	if p.Data != nil {
		start := len(b)
		var ok bool
		if b, ok = appendValue(b, p.Data); !ok || len(b)-start > types.MaxPayloadSize {
			*bp = b[:0]
			return e.library.Encode(p)
		}
	}
	*bp = b[:0]
	return []types.BufferInterface{types.NewStringBuffer(bytes.Clone(b))}
}

// appendValue appends v as JSON, as the library's encoder writes it (which
// turns a nil []any or map into [] and {}). ok is false for a value it does
// not take: anything but the plain JSON types, and the numbers JSON cannot
// hold.
func appendValue(b []byte, v any) ([]byte, bool) {
	switch t := v.(type) {
	case nil:
		return append(b, "null"...), true
	case string:
		return appendString(b, t), true
	case bool:
		if t {
			return append(b, "true"...), true
		}
		return append(b, "false"...), true
	case float64:
		return appendFloat(b, t)
	case int:
		return strconv.AppendInt(b, int64(t), 10), true
	case int64:
		return strconv.AppendInt(b, t, 10), true
	case int32:
		return strconv.AppendInt(b, int64(t), 10), true
	case int16:
		return strconv.AppendInt(b, int64(t), 10), true
	case int8:
		return strconv.AppendInt(b, int64(t), 10), true
	case uint:
		return strconv.AppendUint(b, uint64(t), 10), true
	case uint64:
		return strconv.AppendUint(b, t, 10), true
	case uint32:
		return strconv.AppendUint(b, uint64(t), 10), true
	case uint16:
		return strconv.AppendUint(b, uint64(t), 10), true
	case uint8:
		return strconv.AppendUint(b, uint64(t), 10), true
	case []any:
		b = append(b, '[')
		for i, e := range t {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = appendValue(b, e); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	case map[string]any:
		return appendMap(b, t)
	}
	return b, false
}

// appendMap appends m with its keys in order, as encoding/json does.
func appendMap(b []byte, m map[string]any) ([]byte, bool) {
	var small [16]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		var ok bool
		if b, ok = appendValue(b, m[k]); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

// appendFloat writes f as encoding/json does (as JavaScript prints a
// number); NaN and the infinities are not JSON.
func appendFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// An exponent is written without a leading zero: 1e-7, not 1e-07.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string as encoding/json does with HTML
// escaping: ", \ and the control characters escaped (\b, \f, \n, \r, \t
// by name), <, > and & as \u003c, \u003e, \u0026, invalid UTF-8 as
// \ufffd, and U+2028, U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
