package loadtest

import (
	"errors"
	"testing"
)

func TestParsePacket(t *testing.T) {
	tests := []struct {
		frame string
		want  Packet
	}{
		{`0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`,
			Packet{EIO: '0', Namespace: "/", ID: -1, Data: []byte(`{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`)}},
		{`2`, Packet{EIO: '2', Namespace: "/", ID: -1, Data: []byte{}}},
		{`3`, Packet{EIO: '3', Namespace: "/", ID: -1, Data: []byte{}}},
		{`1`, Packet{EIO: '1', Namespace: "/", ID: -1, Data: []byte{}}},
		{`40{"sid":"s1"}`, Packet{EIO: '4', SIO: '0', Namespace: "/", ID: -1, Data: []byte(`{"sid":"s1"}`)}},
		{`40`, Packet{EIO: '4', SIO: '0', Namespace: "/", ID: -1, Data: []byte{}}},
		{`44{"message":"invalid or expired token","data":{"code":"unauthorized","message":"invalid or expired token"}}`,
			Packet{EIO: '4', SIO: '4', Namespace: "/", ID: -1, Data: []byte(`{"message":"invalid or expired token","data":{"code":"unauthorized","message":"invalid or expired token"}}`)}},
		{`42["call:incoming",{"call":{"meeting_id":"call_1"}}]`,
			Packet{EIO: '4', SIO: '2', Namespace: "/", ID: -1, Data: []byte(`["call:incoming",{"call":{"meeting_id":"call_1"}}]`)}},
		{`4217["call:create",{}]`, Packet{EIO: '4', SIO: '2', Namespace: "/", ID: 17, Data: []byte(`["call:create",{}]`)}},
		{`430[{"success":true}]`, Packet{EIO: '4', SIO: '3', Namespace: "/", ID: 0, Data: []byte(`[{"success":true}]`)}},
		{`43123[{"success":false,"code":"rate_limited","error":"x"}]`,
			Packet{EIO: '4', SIO: '3', Namespace: "/", ID: 123, Data: []byte(`[{"success":false,"code":"rate_limited","error":"x"}]`)}},
		{`42/external,["meeting:guest_join",{}]`, Packet{EIO: '4', SIO: '2', Namespace: "/external", ID: -1, Data: []byte(`["meeting:guest_join",{}]`)}},
		{`42/external,5["x"]`, Packet{EIO: '4', SIO: '2', Namespace: "/external", ID: 5, Data: []byte(`["x"]`)}},
		{`40/external`, Packet{EIO: '4', SIO: '0', Namespace: "/external", ID: -1}},
		{`41`, Packet{EIO: '4', SIO: '1', Namespace: "/", ID: -1, Data: []byte{}}},
		{`451-["bin",{"_placeholder":true,"num":0}]`, Packet{EIO: '4', SIO: '5', Namespace: "/", ID: -1, Data: []byte(`["bin",{"_placeholder":true,"num":0}]`)}},
	}
	for _, tt := range tests {
		got, err := ParsePacket([]byte(tt.frame))
		if err != nil {
			t.Errorf("%s: %v", tt.frame, err)
			continue
		}
		if got.EIO != tt.want.EIO || got.SIO != tt.want.SIO || got.Namespace != tt.want.Namespace || got.ID != tt.want.ID || string(got.Data) != string(tt.want.Data) {
			t.Errorf("%s:\n got %+v (data %q)\nwant %+v (data %q)", tt.frame, got, got.Data, tt.want, tt.want.Data)
		}
	}
}

func TestParsePacketRejects(t *testing.T) {
	for _, frame := range []string{
		``, `9`, `4`, `49[]`, `42`, `42{"not":"an array"}`, `43[{}]`, `4512["x"]`, `42x`,
	} {
		if _, err := ParsePacket([]byte(frame)); !errors.Is(err, errPacket) {
			t.Errorf("%q: got %v, want a malformed packet error", frame, err)
		}
	}
}

func TestSplitEvent(t *testing.T) {
	tests := []struct {
		data, name, arg string
	}{
		{`["presence:user_connected",{"user_id":"u1","status":"online"}]`, "presence:user_connected", `{"user_id":"u1","status":"online"}`},
		{`["ping"]`, "ping", ""},
		{`["a", {"x":[1,2]} ]`, "a", `{"x":[1,2]}`},
		{`["with \"quote\"",{"k":1}]`, `with "quote"`, `{"k":1}`},
		{`["s","str"]`, "s", `"str"`},
	}
	for _, tt := range tests {
		name, arg, err := SplitEvent([]byte(tt.data))
		if err != nil {
			t.Errorf("%s: %v", tt.data, err)
			continue
		}
		if string(name) != tt.name || string(arg) != tt.arg {
			t.Errorf("%s: got (%q, %q), want (%q, %q)", tt.data, name, arg, tt.name, tt.arg)
		}
	}
	for _, bad := range []string{`[]`, `[1,2]`, `["unterminated`, `["a" {}]`, `["a",]`, `{"a":1}`} {
		if _, _, err := SplitEvent([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func TestFirstArg(t *testing.T) {
	arg, err := FirstArg([]byte(`[{"success":true,"notified_count":1}]`))
	if err != nil || string(arg) != `{"success":true,"notified_count":1}` {
		t.Fatalf("got %q, %v", arg, err)
	}
	if arg, err := FirstArg([]byte(`[]`)); err != nil || arg != nil {
		t.Fatalf("empty ack: %q, %v", arg, err)
	}
	if _, err := FirstArg([]byte(`{`)); err == nil {
		t.Fatal("accepted garbage")
	}
}

func TestEncode(t *testing.T) {
	tests := []struct{ got, want string }{
		{string(AppendEvent(nil, "/", -1, "presence:heartbeat", nil)), `42["presence:heartbeat"]`},
		{string(AppendEvent(nil, "", 7, "call:notify", []byte(`{"call_id":"call_1"}`))), `427["call:notify",{"call_id":"call_1"}]`},
		{string(AppendEvent(nil, "/external", 0, "x", []byte(`{}`))), `42/external,0["x",{}]`},
		{string(AppendEvent(nil, "/", -1, `q"uote`, []byte(`1`))), `42["q\"uote",1]`},
		{string(AppendConnect(nil, "/", []byte(`{"token":"t"}`))), `40{"token":"t"}`},
		{string(AppendConnect(nil, "/", nil)), `40`},
		{string(AppendConnect(nil, "/external", []byte(`{"session_id":"s"}`))), `40/external,{"session_id":"s"}`},
		{string(AppendDisconnect(nil, "/")), `41`},
		{string(AppendDisconnect(nil, "/external")), `41/external,`},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %s, want %s", tt.got, tt.want)
		}
	}
}

// An encoded event decodes back to its parts.
func TestEventRoundTrip(t *testing.T) {
	frame := AppendEvent(nil, "/", 42, "meeting:update", []byte(`{"meeting_id":"mtg_1","title":"t"}`))
	p, err := ParsePacket(frame)
	if err != nil {
		t.Fatal(err)
	}
	name, arg, err := SplitEvent(p.Data)
	if err != nil || p.ID != 42 || string(name) != "meeting:update" || string(arg) != `{"meeting_id":"mtg_1","title":"t"}` {
		t.Fatalf("round trip: %+v %q %q %v", p, name, arg, err)
	}
}

func TestWSURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:3001":   "ws://127.0.0.1:3001/socket.io/?EIO=4&transport=websocket",
		"https://localhost:443/":  "wss://localhost:443/socket.io/?EIO=4&transport=websocket",
		"ws://127.0.0.1:1/prefix": "ws://127.0.0.1:1/prefix/socket.io/?EIO=4&transport=websocket",
	} {
		if got, err := wsURL(in); err != nil || got != want {
			t.Errorf("%s: got %s, %v; want %s", in, got, err, want)
		}
	}
	if _, err := wsURL("ftp://x"); err == nil {
		t.Error("ftp accepted")
	}
}
