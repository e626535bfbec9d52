package sioparser

import (
	"bytes"
	"encoding/json"
	"strconv"
	"sync/atomic"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// Decoder decodes the plain event packets a client sends ("2[/nsp,][id]
// [\"name\", …]" with a string name) itself and hands every other input
// to the library's decoder, whose event emitter it shares: listeners of
// "decoded" get packets from both alike.
//
// An event's arguments after its name are left as json.RawMessage, each
// the argument's bytes as sent, instead of being decoded into maps and
// slices: the gateway decodes its payload straight into its request type
// (one JSON pass where there were three: the library's decode, the
// gateway's re-encoding and its decode). Only what the library's decoder
// accepts is taken, and with the same packet (TestDecoderMatchesLibrary,
// FuzzDecoderMatchesLibrary): the whole array must be valid JSON with
// every number a float64 can hold, and anything else (binary packets,
// numeric event names, reserved names, other packet types, anything
// malformed) gets the library's answer, its errors included.
type Decoder struct {
	parser.Decoder
	// binary is set once the connection has sent a binary packet: the
	// library's decoder then waits for its attachments, and string input
	// must reach it to be refused, so every packet goes to it from then on.
	// (Atomic, as the library's decoder state is: a connection's packets
	// come one at a time, but nothing here depends on it.)
	binary atomic.Bool
}

// Add implements parser.Decoder.
func (d *Decoder) Add(data any) error {
	if !d.binary.Load() {
		var b []byte
		switch t := data.(type) {
		case *types.StringBuffer:
			b = t.Bytes()
		case string:
			b = []byte(t)
		}
		if len(b) > 0 {
			if p, ok := decodeEvent(b); ok {
				d.Emit("decoded", p)
				return nil
			}
			if b[0] == '0'+byte(parser.BINARY_EVENT) || b[0] == '0'+byte(parser.BINARY_ACK) {
				d.binary.Store(true)
			}
		}
	}
	return d.Decoder.Add(data)
}

// decodeEvent decodes b when it is a plain event packet the library would
// accept; ok is false for anything else.
func decodeEvent(b []byte) (*parser.Packet, bool) {
	if len(b) < 2 || b[0] != '0'+byte(parser.EVENT) {
		return nil, false
	}
	p := &parser.Packet{Type: parser.EVENT, Nsp: "/"}
	i := 1
	if b[i] == '/' {
		j := bytes.IndexByte(b[i:], ',')
		if j < 0 || j > parser.DefaultMaxNamespaceLength {
			return nil, false
		}
		p.Nsp = string(b[i : i+j])
		i += j + 1
	}
	k := i
	for k < len(b) && b[k] >= '0' && b[k] <= '9' {
		k++
	}
	if k > i {
		// The library refuses an id of DefaultMaxPacketIDLength digits or
		// more, and one that overflows.
		if k-i >= parser.DefaultMaxPacketIDLength {
			return nil, false
		}
		id, err := strconv.ParseUint(string(b[i:k]), 10, 64)
		if err != nil {
			return nil, false
		}
		p.Id = &id
		i = k
	}
	if i >= len(b) || b[i] != '[' || !json.Valid(b[i:]) {
		return nil, false
	}
	body := bytes.Clone(b[i:]) // the arguments outlive the transport's buffer
	args, ok := splitArray(body)
	if !ok || len(args) == 0 || args[0][0] != '"' {
		return nil, false
	}
	var name string
	if bytes.IndexByte(args[0], '\\') < 0 && bytes.IndexFunc(args[0], notPlainASCII) < 0 {
		name = string(args[0][1 : len(args[0])-1])
	} else if err := json.Unmarshal(args[0], &name); err != nil {
		return nil, false
	}
	if parser.ReservedEvents.Has(name) {
		return nil, false
	}
	data := make([]any, len(args))
	data[0] = name
	for j, a := range args[1:] {
		data[j+1] = json.RawMessage(a)
	}
	p.Data = data
	return p, true
}

// notPlainASCII reports a rune that decoding a JSON string might change
// (invalid UTF-8 becomes U+FFFD) or that is not ASCII.
func notPlainASCII(r rune) bool { return r >= 0x80 || r < 0x20 }

// splitArray returns the elements of the valid JSON array b, or ok false
// when one holds a number that a float64 cannot (the library's decoder
// refuses those).
func splitArray(b []byte) (elems [][]byte, ok bool) {
	i := skipSpace(b, 1) // past '['
	if i < len(b) && b[i] == ']' {
		return nil, true
	}
	for i < len(b) {
		end, ok := skipValue(b, i)
		if !ok {
			return nil, false
		}
		elems = append(elems, b[i:end])
		i = skipSpace(b, end)
		if i >= len(b) || b[i] == ']' {
			return elems, true
		}
		i = skipSpace(b, i+1) // past ','
	}
	return elems, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the JSON value at b[i:] (b is valid JSON),
// or ok false for a number a float64 cannot hold.
func skipValue(b []byte, i int) (end int, ok bool) {
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i), true
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(b, i)
	case c == '{' || c == '[':
		depth := 0
		for i < len(b) {
			switch c := b[i]; {
			case c == '"':
				i = skipString(b, i)
				continue
			case c == '-' || (c >= '0' && c <= '9'):
				if i, ok = skipNumber(b, i); !ok {
					return 0, false
				}
				continue
			case c == '{' || c == '[':
				depth++
			case c == '}' || c == ']':
				if depth--; depth == 0 {
					return i + 1, true
				}
			}
			i++
		}
		return i, true
	}
	for i < len(b) && b[i] >= 'a' && b[i] <= 'z' { // true, false, null
		i++
	}
	return i, true
}

// skipString returns the end of the JSON string at b[i:].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipNumber returns the end of the JSON number at b[i:], ok false when a
// float64 cannot hold it.
func skipNumber(b []byte, i int) (int, bool) {
	j := i + 1
	for j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E' || b[j] == '+' || b[j] == '-' || (b[j] >= '0' && b[j] <= '9')) {
		j++
	}
	_, err := strconv.ParseFloat(string(b[i:j]), 64)
	return j, err == nil
}
