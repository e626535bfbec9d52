package adapter

import (
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/zishang520/socket.io/v3/pkg/types"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	compress := false
	raw, err := encodeBroadcast("uid1", "/chat",
		[]any{"ev", "s", int64(-3), 2.5, true, nil, []byte{1, 2}, map[string]any{"a": []any{"b"}}},
		[]string{"r1", "r2"}, nil, wireFlags{Volatile: true, Compress: &compress})
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeBroadcast(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	want := &broadcastMessage{
		UID: "uid1", Nsp: "/chat",
		Data:  []any{"ev", "s", int64(-3), 2.5, true, nil, []byte{1, 2}, map[string]any{"a": []any{"b"}}},
		Rooms: []string{"r1", "r2"}, Except: []string{}, Volatile: true, Compress: &compress,
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("got  %#v\nwant %#v", m, want)
	}
}

// Bytes as notepack.io writes them for the emitter:
// ["emitter", {type: 2, data: ["msg", 1, undefined, new Date(0)], nsp: "/"},
//
//	{rooms: [42], flags: {}, except: []}]
func TestDecodeNodeEmitterBytes(t *testing.T) {
	raw, _ := hex.DecodeString("93" + "a7656d6974746572" + // fixarray 3, "emitter"
		"83" + "a474797065" + "02" + // {type: 2,
		"a464617461" + "94" + "a36d7367" + "01" + "c0" + "d6ff00000000" + // data: ["msg", 1, undefined, Date(0)],
		"a36e7370" + "a12f" + // nsp: "/"}
		"83" + "a5726f6f6d73" + "91" + "2a" + // {rooms: [42],
		"a5666c616773" + "80" + // flags: {},
		"a6657863657074" + "90") // except: []}
	m, err := decodeBroadcast(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	if m.UID != "emitter" || m.Nsp != "/" || !reflect.DeepEqual(m.Rooms, []string{"42"}) || len(m.Except) != 0 {
		t.Errorf("%#v", m)
	}
	if len(m.Data) != 4 || m.Data[2] != nil || !m.Data[3].(time.Time).Equal(time.Unix(0, 0)) {
		t.Errorf("data = %#v", m.Data)
	}
}

func TestDecodeRejects(t *testing.T) {
	cases := map[string]any{
		"not an array":     map[string]any{"a": 1},
		"short":            []any{"u", map[string]any{}},
		"packet not a map": []any{"u", "p", map[string]any{}},
		"connect packet":   []any{"u", map[string]any{"type": 0, "data": []any{"x"}}, map[string]any{}},
		"no event name":    []any{"u", map[string]any{"type": 2, "data": []any{1}}, map[string]any{}},
		"empty data":       []any{"u", map[string]any{"type": 2, "data": []any{}}, map[string]any{}},
		"opts not a map":   []any{"u", map[string]any{"type": 2, "data": []any{"e"}}, 3},
		"bad room":         []any{"u", map[string]any{"type": 2, "data": []any{"e"}}, map[string]any{"rooms": []any{[]any{}}}},
	}
	for name, v := range cases {
		raw, err := encodeMsgpack(v)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeBroadcast(string(raw)); !errors.Is(err, errMalformed) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	// A huge claimed length must fail without allocating it.
	if _, err := decodeBroadcast("\xdd\xff\xff\xff\xff"); !errors.Is(err, errMalformed) {
		t.Errorf("huge array: %v", err)
	}
	deep := strings.Repeat("\x91", 1000) + "\xc0"
	if _, err := decodeBroadcast(deep); !errors.Is(err, errMalformed) {
		t.Errorf("deep nesting: %v", err)
	}
}

func TestDecodeMessage(t *testing.T) {
	m, err := decodeMessage(`{"uid":"u","requestId":"r","type":5,"opts":{"rooms":["a"],"except":[]}}`)
	if err != nil {
		t.Fatal(err)
	}
	rooms, except, ok := m.roomsAndExcept()
	if m.typ() != reqRemoteFetch || m.str("requestId") != "r" || !ok || !reflect.DeepEqual(rooms, []string{"a"}) || len(except) != 0 {
		t.Errorf("%#v", m)
	}
	raw, _ := encodeMsgpack(map[string]any{"type": reqBroadcastAck, "requestId": "r", "packet": "x"})
	if m, err := decodeMessage(string(raw)); err != nil || m.typ() != reqBroadcastAck || m["packet"] != "x" {
		t.Errorf("%#v, %v", m, err)
	}
	for _, bad := range []string{"", "{", "[1]", "\xc1"} {
		if _, err := decodeMessage(bad); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}

func TestNormalize(t *testing.T) {
	type payload struct {
		Name string `json:"name"`
		N    int    `json:"n"`
	}
	bb := types.NewBytesBuffer([]byte{9})
	args, consumed, err := normalizeArgs([]any{"ev", payload{"x", 1}, types.NewStringBufferString("s"), bb, strings.NewReader("r")})
	if err != nil {
		t.Fatal(err)
	}
	want := []any{"ev", map[string]any{"name": "x", "n": 1.0}, "s", []byte{9}, "r"}
	if !reflect.DeepEqual(args, want) || !consumed {
		t.Errorf("got %#v (consumed %v)", args, consumed)
	}
	if bb.Len() != 1 {
		t.Error("a BytesBuffer was consumed")
	}
	if _, _, err := normalizeArgs([]any{"ev", make(chan int)}); err == nil {
		t.Error("a channel was encoded")
	}
}

// TestNormalizeCopiesOnlyWhatChanges: plain lists and maps come back as
// they are; one with a changed element, however deep, comes back as a copy
// on the path to it, and the input keeps its values.
func TestNormalizeCopiesOnlyWhatChanges(t *testing.T) {
	plain := []any{"ev", map[string]any{"call": map[string]any{"id": "c1", "n": 2, "tags": []any{"a", true, nil}}}}
	out, consumed, err := normalizeArgs(plain)
	if err != nil || consumed {
		t.Fatalf("err %v consumed %v", err, consumed)
	}
	if reflect.ValueOf(out).Pointer() != reflect.ValueOf(plain).Pointer() {
		t.Error("a plain list was copied")
	}
	if reflect.ValueOf(out[1]).Pointer() != reflect.ValueOf(plain[1]).Pointer() {
		t.Error("a plain map was copied")
	}

	inner := map[string]any{"id": "c1", "name": types.NewStringBufferString("x")}
	sibling := map[string]any{"k": "v"}
	in := []any{"ev", map[string]any{"call": inner, "other": sibling}, []any(nil), map[string]any(nil)}
	out, _, err = normalizeArgs(in)
	if err != nil {
		t.Fatal(err)
	}
	want := []any{"ev", map[string]any{"call": map[string]any{"id": "c1", "name": "x"}, "other": map[string]any{"k": "v"}}, []any{}, map[string]any{}}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("got %#v", out)
	}
	if _, ok := inner["name"].(*types.StringBuffer); !ok || in[2].([]any) != nil || in[3].(map[string]any) != nil {
		t.Errorf("the input changed: %#v", in)
	}
	if reflect.ValueOf(out[1].(map[string]any)["other"]).Pointer() != reflect.ValueOf(sibling).Pointer() {
		t.Error("an unchanged map beside a changed one was copied")
	}
	if reflect.ValueOf(out).Pointer() == reflect.ValueOf(in).Pointer() {
		t.Error("a list with a changed element was not copied")
	}
}

func TestLooksLikeSocketID(t *testing.T) {
	for s, want := range map[string]bool{
		"3xHaiENSljaeIwAAAAAAAAAB": true,  // Go server
		"bJx4zWBm_fsN-5m1AAAB":     true,  // Node server
		"user:bob":                 false, // rooms have a colon
		"abcdefghijklmnopqrstuvw":  false, // 23 characters
		"abcdefghijklmnopqrstuvw!": false,
	} {
		if looksLikeSocketID(s) != want {
			t.Errorf("%q: %v", s, !want)
		}
	}
}

func TestSlot(t *testing.T) {
	// CRC16/XMODEM check value, and CLUSTER KEYSLOT foo.
	if slot("123456789") != 0x31c3 || slot("foo") != 12182 {
		t.Errorf("slot(123456789) = %d, slot(foo) = %d", slot("123456789"), slot("foo"))
	}
	if slot("{user1000}.following") != slot("user1000") {
		t.Error("hash tag ignored")
	}
	if slot("{}x") == slot("") || slot("a{}{b}") == slot("b") {
		t.Error("an empty hash tag must hash the whole key")
	}
	// TestRedisCluster checks slot against CLUSTER KEYSLOT.
}

// FuzzDecodeMessage: no pub/sub payload, however malformed, makes the
// decoders panic.
func FuzzDecodeMessage(f *testing.F) {
	seed, _ := encodeBroadcast("u", "/", []any{"ev", 1, []byte{1}, map[string]any{"k": nil}}, []string{"r"}, []string{"x"}, wireFlags{})
	f.Add(seed)
	f.Add([]byte(`{"uid":"u","type":6,"data":["ev",1]}`))
	f.Add([]byte(`{"requestId":"r","sockets":[{"id":"a","handshake":{},"rooms":["x"],"data":null}]}`))
	f.Add([]byte("\x93\xa1u\x83\xa4type\x02\xa4data\x91\xa1e\xa3nsp\xa1/\x80"))
	f.Add([]byte("\xd6\xff\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeBroadcast(string(b))
		if m, err := decodeMessage(string(b)); err == nil {
			_, _, _ = m.roomsAndExcept()
			_, _ = m.timeoutOf()
			_ = m.typ()
			if list, ok := m["sockets"].([]any); ok {
				for _, s := range list {
					_, _ = parseRemoteSocket(s)
				}
			}
		}
	})
}

// TestBroadcastPrefix: a node recognises its own broadcasts, back from
// Redis, by their first bytes, and no one else's: not a uid that differs in
// one character, nor one that is longer or shorter.
func TestBroadcastPrefix(t *testing.T) {
	own := broadcastPrefix("0123456789abcdef")
	for _, tc := range []struct {
		uid  string
		want bool
	}{
		{"0123456789abcdef", true},
		{"0123456789abcdee", false},
		{"0123456789abcdef0", false},
		{"0123456789abcde", false},
		{"emitter", false},
	} {
		raw, err := encodeBroadcast(tc.uid, "/", []any{"ev", map[string]any{"k": 1}}, []string{"r"}, nil, wireFlags{})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.HasPrefix(string(raw), own); got != tc.want {
			t.Errorf("broadcast of %q has our prefix: %v, want %v", tc.uid, got, tc.want)
		}
	}
}
