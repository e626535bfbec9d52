package sioparser

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// sameAsLibrary fails t unless Encoder and the library's encoder write p
// the same, buffer for buffer and byte for byte.
func sameAsLibrary(t testing.TB, p *parser.Packet) {
	t.Helper()
	// Each encoder gets its own copy: the library's may change the packet.
	a, b := *p, *p
	got := NewParser().NewEncoder().Encode(&a)
	want := parser.NewEncoder().Encode(&b)
	if len(got) != len(want) {
		t.Fatalf("%d buffers, the library writes %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i].Bytes(), want[i].Bytes()) {
			t.Fatalf("buffer %d:\n got %q\nwant %q", i, got[i].Bytes(), want[i].Bytes())
		}
		if _, ok := got[i].(*types.StringBuffer); ok != isString(want[i]) {
			t.Fatalf("buffer %d is a %T, the library's a %T", i, got[i], want[i])
		}
	}
}

func isString(b types.BufferInterface) bool { _, ok := b.(*types.StringBuffer); return ok }

func id(n uint64) *uint64 { return &n }

type point struct {
	X int `json:"x"`
}

// TestEncoderMatchesLibrary: every kind of packet and value the node sends,
// the edges of JSON's strings and numbers, and the values left to the
// library.
func TestEncoderMatchesLibrary(t *testing.T) {
	strs := []string{"", "plain", `quote " backslash \ slash /`, "<script>&amp;</script>", "\x00\x01\b\f\n\r\t\x1f\x7f",
		"é ü 漢字 🎉", "\u2028\u2029", "bad \xff utf8 \xc3", "\xed\xa0\x80 surrogate", strings.Repeat("long ", 400)}
	nums := []any{0.0, math.Copysign(0, -1), 1.0, -1.5, 123.456, 1e-6, 1e-7, 9.99e-7, 1e20, 1e21, 1.5e300, 5e-324,
		math.MaxFloat64, 0.1 + 0.2, 1 << 53, 0, -1, math.MaxInt64, math.MinInt64, int32(-7), int16(3), int8(-8),
		uint(9), uint64(math.MaxUint64), uint32(1), uint16(2), uint8(255)}
	values := []any{nil, true, false, []any{}, []any(nil), map[string]any{}, map[string]any(nil),
		map[string]any{"b": 1, "a": "x", "<>": []any{nil, map[string]any{"z": false, "y": []any{1.5}}}, "": "empty key", "é": 2},
		[]any{"call:incoming", map[string]any{"call": map[string]any{"meeting_id": "call_1", "participants": []any{
			map[string]any{"user_id": "bob", "left_at": nil, "joined_at": "2026-11-26T16:17:18.840Z"}}}, "caller": map[string]any{"user_id": "alice"}}},
	}
	for _, s := range strs {
		values = append(values, s, map[string]any{s: s}, []any{s})
	}
	for _, n := range nums {
		values = append(values, n, []any{n}, map[string]any{"n": n})
	}
	many := map[string]any{}
	for i := range 40 {
		many[strings.Repeat("k", i%7)+string(rune('a'+i%26))+string(rune('0'+i/26))] = i
	}
	values = append(values, many)
	// Left to the library: binary, other types, numbers JSON cannot hold.
	values = append(values, []any{"ev", []byte{1, 2, 3}}, []any{"ev", map[string]any{"b": []byte("x")}},
		point{X: 1}, []any{"ev", point{X: 2}}, []any{float32(1.1)}, math.NaN(), []any{"ev", math.Inf(1)},
		map[string]string{"typed": "map"}, []string{"typed", "slice"})

	for _, typ := range []parser.PacketType{parser.CONNECT, parser.DISCONNECT, parser.EVENT, parser.ACK, parser.CONNECT_ERROR} {
		for _, nsp := range []string{"", "/", "/external"} {
			for _, pid := range []*uint64{nil, id(0), id(12345)} {
				for _, v := range values {
					sameAsLibrary(t, &parser.Packet{Type: typ, Nsp: nsp, Id: pid, Data: v})
				}
			}
		}
	}
}

// TestEncoderTakesThePlainPackets: the packets the node sends are written
// by the encoder itself, not handed to the library (whose output would
// match too, so the comparison above cannot tell).
func TestEncoderTakesThePlainPackets(t *testing.T) {
	for _, v := range []any{
		[]any{"call:incoming", map[string]any{"call_id": "c", "n": 1, "ok": true, "at": nil, "list": []any{1.5, "x"}}},
		map[string]any{"sid": "abc"},
		nil,
	} {
		b, ok := appendValue(nil, v)
		if !ok {
			t.Errorf("%#v left to the library", v)
		}
		if len(b) == 0 {
			t.Errorf("%#v encoded as nothing", v)
		}
	}
	for _, v := range []any{[]byte{1}, point{}, float32(1), math.NaN(), []any{map[string]any{"x": []string{}}},
		strings.NewReader("the library reads it")} {
		if _, ok := appendValue(nil, v); ok {
			t.Errorf("%#v taken, should go to the library", v)
		}
	}
}

// FuzzEncoderMatchesLibrary builds a plain value from the fuzzer's bytes
// and strings and compares both encoders on it.
func FuzzEncoderMatchesLibrary(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7}, "key", 1.5, int64(7))
	f.Add([]byte{6, 6, 5, 1, 2, 7, 3}, "\xff<\u2028>", 1e-9, int64(-1))
	f.Add([]byte{7, 7, 7, 0}, "", math.MaxFloat64, int64(math.MinInt64))
	f.Fuzz(func(t *testing.T, shape []byte, s string, x float64, n int64) {
		g := &gen{shape: shape, s: s, x: x, n: n}
		v := g.value(0)
		sameAsLibrary(t, &parser.Packet{Type: parser.EVENT, Nsp: "/", Data: []any{"ev", v}})
	})
}

// gen turns fuzz input into a value: each byte of shape picks the next
// node's kind.
type gen struct {
	shape []byte
	s     string
	x     float64
	n     int64
	i     int
}

func (g *gen) next() byte {
	if g.i >= len(g.shape) {
		return 0
	}
	g.i++
	return g.shape[g.i-1]
}

func (g *gen) value(depth int) any {
	k := g.next()
	switch k % 8 {
	case 0:
		return nil
	case 1:
		return k&8 != 0
	case 2:
		if k&8 != 0 {
			return g.s
		}
		return g.s[:len(g.s)/2]
	case 3:
		return g.x * float64(k>>4)
	case 4:
		return g.n >> (k >> 3)
	case 5:
		return uint64(g.n) + uint64(k)
	case 6:
		if depth > 4 {
			return nil
		}
		var a []any
		for range int(k >> 5) {
			a = append(a, g.value(depth+1))
		}
		return a
	default:
		if depth > 4 {
			return nil
		}
		m := map[string]any{}
		for j := range int(k >> 5) {
			m[g.s[:min(len(g.s), j)]+string(rune('a'+j))] = g.value(depth + 1)
		}
		return m
	}
}
