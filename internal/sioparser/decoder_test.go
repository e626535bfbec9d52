package sioparser

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// decoded feeds inputs to d and returns the packets it emitted and the
// error of the last Add.
func decoded(d parser.Decoder, inputs ...any) ([]*parser.Packet, error) {
	var got []*parser.Packet
	d.On("decoded", func(a ...any) { got = append(got, a[0].(*parser.Packet)) })
	var err error
	for _, in := range inputs {
		err = d.Add(in)
	}
	return got, err
}

// normal decodes the raw arguments our decoder leaves in a packet, as the
// library would have.
func normal(t testing.TB, p *parser.Packet) *parser.Packet {
	t.Helper()
	q := *p
	if args, ok := p.Data.([]any); ok {
		out := make([]any, len(args))
		for i, a := range args {
			out[i] = a
			if raw, ok := a.(json.RawMessage); ok {
				var v any
				if err := json.Unmarshal(raw, &v); err != nil {
					t.Fatalf("argument %d is not JSON: %q", i, raw)
				}
				out[i] = v
			}
		}
		q.Data = out
	}
	return &q
}

// fresh copies the buffers among inputs: a decoder reads them.
func fresh(inputs []any) []any {
	out := make([]any, len(inputs))
	for i, in := range inputs {
		out[i] = in
		if b, ok := in.(*types.StringBuffer); ok {
			out[i] = b.Clone()
		}
	}
	return out
}

// sameDecoding fails t unless our decoder and the library's agree on the
// inputs: the same packets (arguments compared once decoded) or the same
// error.
func sameDecoding(t testing.TB, inputs ...any) {
	t.Helper()
	want, werr := decoded(parser.NewDecoder(), fresh(inputs)...)
	got, gerr := decoded(NewParser().NewDecoder(), fresh(inputs)...)
	if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
		t.Fatalf("%q: error %v, the library's %v", inputs, gerr, werr)
	}
	if len(got) != len(want) {
		t.Fatalf("%q: %d packets, the library's %d", inputs, len(got), len(want))
	}
	for i := range got {
		if g, w := normal(t, got[i]), want[i]; !reflect.DeepEqual(g, w) {
			t.Fatalf("%q: packet %d\n got %#v\nwant %#v", inputs, i, g, w)
		}
	}
}

// TestDecoderMatchesLibrary: events in every form, and everything the
// fast path must leave to the library (its errors included).
func TestDecoderMatchesLibrary(t *testing.T) {
	for _, in := range []string{
		`2["call:notify",{"call_id":"c1","recipients":["bob"]}]`,
		`2/external,["meeting:guest_join",{"meeting_id":"m","session_id":"s"}]`,
		`212["meeting:create",{"title":"t","participants":["a","b"]}]`,
		`2/external,7["ev"]`,
		`2["ev"]`, `2["ev",null]`, `2["ev",1,2.5,-3e5,true,false,null,"s",[],{}]`,
		`2 ["ev"]`, `2[ "ev" , { "a" : [ 1 , { } ] } ]`, "2[\"ev\",\n{\"a\":1}\t]",
		`2["ev",{"s":"\u00e9\"\\\/\b\f\n\r\t","u":"\ud83c\udf89"}]`, `2["\u0065v",{}]`, `2["é",{}]`, "2[\"bad \xff\",{}]",
		"2[\"ev\",\"bad \xff utf8\"]", `2["ev",{"a":1}]trailing`, `2["ev",{"a":1}]   `,
		`2["ev",1e400]`, `2["ev",{"n":[1e309]}]`, `2["ev",-1e-400]`, `2["ev",123456789012345678901234567890]`,
		`2[]`, `2[1,{}]`, `2[null]`, `2[{"a":1}]`, `2["connect"]`, `2["disconnect",{}]`, `2["newListener"]`,
		`2["ev",{]`, `2["ev"`, `2{"ev":1}`, `2"ev"`, `2`, `2/nsp`, `2/nsp,`, `2/nsp,["ev"]`,
		`2` + strings.Repeat("9", 19) + `["ev"]`, `2` + strings.Repeat("9", 20) + `["ev"]`, `218446744073709551616["ev"]`,
		`2/` + strings.Repeat("n", 600) + `,["ev"]`, `2["ev",` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `]`,
		`0`, `0{"token":"x"}`, `0/external,{"token":"x"}`, `1`, `1/external,`, `3["ok"]`, `35["ok"]`, `4{"message":"x"}`,
		`9["ev"]`, ``, `x`,
	} {
		sameDecoding(t, in)
		sameDecoding(t, types.NewStringBufferString(in))
	}
}

// TestDecoderBinary: a binary event and its attachment are the library's;
// plain text while it waits for the attachment is refused as the library
// refuses it, and later events still decode.
func TestDecoderBinary(t *testing.T) {
	header := `51-["upload",{"_placeholder":true,"num":0}]`
	sameDecoding(t, header, []byte{1, 2, 3})
	sameDecoding(t, header, `2["ev",{}]`)
	sameDecoding(t, header, []byte{1, 2, 3}, `2["ev",{}]`)
	sameDecoding(t, []byte{1}) // binary without a header
}

// TestDecoderTakesPlainEvents: the events clients send reach the gateway
// with their arguments as sent, not decoded (the comparison above cannot
// tell).
func TestDecoderTakesPlainEvents(t *testing.T) {
	got, err := decoded(NewParser().NewDecoder(), types.NewStringBufferString(`23["call:accept",{"call_id":"c1"},[1, 2]]`))
	if err != nil || len(got) != 1 {
		t.Fatalf("%v, %d packets", err, len(got))
	}
	want := []any{"call:accept", json.RawMessage(`{"call_id":"c1"}`), json.RawMessage(`[1, 2]`)}
	if p := got[0]; !reflect.DeepEqual(p.Data, want) || p.Id == nil || *p.Id != 3 || p.Nsp != "/" {
		t.Fatalf("%#v", p)
	}
}

// FuzzDecoderMatchesLibrary: on any input both decoders agree.
func FuzzDecoderMatchesLibrary(f *testing.F) {
	for _, s := range []string{`2["ev",{"a":[1,2.5,"x"]}]`, `2/external,5["ev",null]`, `2["connect"]`, `51-["x",{"_placeholder":true,"num":0}]`,
		`2["ev",1e400]`, `2["\u00e9",{"k":"\ud800"}]`, `0{"token":"t"}`, `3["ok"]`, `2[ "ev" ]x`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sameDecoding(t, s)
	})
}
