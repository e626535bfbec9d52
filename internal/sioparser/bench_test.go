package sioparser

import (
	"testing"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// incoming is a call:incoming broadcast as the gateway emits it.
func incoming() *parser.Packet {
	return &parser.Packet{Type: parser.EVENT, Nsp: "/", Data: []any{"call:incoming", map[string]any{
		"caller": map[string]any{"user_id": "alice", "display_name": "Alice", "avatar": ""},
		"call": map[string]any{"meeting_id": "call_39ff0b191dfc745326541beb9d3b1896", "is_instant_call": true,
			"title": "Call", "description": "", "status": "live", "created_by": "alice", "version": 2.0,
			"start_time": "2026-11-26T16:17:18.840Z", "end_time": "2026-11-27T16:17:18.840Z", "allow_external": false,
			"started_at": "2026-11-26T16:17:18.840Z", "ended_at": nil, "active_count": 1.0,
			"created_at": "2026-11-26T16:17:18.840Z", "updated_at": "2026-11-26T16:17:18.843Z",
			"participants": []any{
				map[string]any{"user_id": "alice", "role": "owner", "status": "joined", "joined_at": "2026-11-26T16:17:18.840Z", "left_at": nil},
				map[string]any{"user_id": "bob", "role": "member", "status": "ringing", "joined_at": nil, "left_at": nil},
			}},
	}}}
}

// ack is the ack of a call:accept.
func ack() *parser.Packet {
	return &parser.Packet{Type: parser.ACK, Nsp: "/", Id: id(42), Data: []any{map[string]any{"success": true, "call_id": "call_39ff0b191dfc745326541beb9d3b1896"}}}
}

func benchmarkEncode(b *testing.B, enc parser.Encoder, packet func() *parser.Packet) {
	p := packet()
	b.ReportAllocs()
	for b.Loop() {
		q := *p
		_ = enc.Encode(&q)
	}
}

// BenchmarkEncode: ours against the library's, for a call:incoming
// broadcast and an ack.
func BenchmarkEncode(b *testing.B) {
	b.Run("incoming/ours", func(b *testing.B) { benchmarkEncode(b, NewParser().NewEncoder(), incoming) })
	b.Run("incoming/library", func(b *testing.B) { benchmarkEncode(b, parser.NewEncoder(), incoming) })
	b.Run("ack/ours", func(b *testing.B) { benchmarkEncode(b, NewParser().NewEncoder(), ack) })
	b.Run("ack/library", func(b *testing.B) { benchmarkEncode(b, parser.NewEncoder(), ack) })
}

// createEvent is a meeting:create as a client sends it.
const createEvent = `25["meeting:create",{"title":"Weekly sync","description":"Agenda: status, risks, next steps",` +
	`"start_time":"2026-12-01T10:00:00.000Z","end_time":"2026-12-01T11:00:00.000Z","allow_external":true,` +
	`"participants":["bob","carol","dave","erin"]}]`

func benchmarkDecode(b *testing.B, d parser.Decoder) {
	var got *parser.Packet
	d.On("decoded", func(a ...any) { got = a[0].(*parser.Packet) })
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Add(types.NewStringBufferString(createEvent)); err != nil || got == nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode: a meeting:create event, ours (arguments left as JSON)
// against the library's (decoded into maps and slices).
func BenchmarkDecode(b *testing.B) {
	b.Run("ours", func(b *testing.B) { benchmarkDecode(b, NewParser().NewDecoder()) })
	b.Run("library", func(b *testing.B) { benchmarkDecode(b, parser.NewDecoder()) })
}
