package wstransport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	ws "github.com/gorilla/websocket"
)

// clientFrame is one frame as a client sends it: masked with key.
func clientFrame(fin bool, op byte, payload []byte, key [4]byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, 0x80|byte(n))
	case n <= 0xFFFF:
		out = append(out, 0x80|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, 0x80|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	out = append(out, key[:]...)
	for i, c := range payload {
		out = append(out, c^key[i&3])
	}
	return out
}

var testKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

func frame(op byte, payload string) []byte {
	return clientFrame(true, op, []byte(payload), testKey)
}

func fragment(fin bool, op byte, payload string) []byte {
	return clientFrame(fin, op, []byte(payload), testKey)
}

// got is what a feed delivered, in order.
type got struct {
	op      byte
	payload string
}

func concat(frames ...[]byte) []byte { return bytes.Join(frames, nil) }

// feedAll feeds stream to a new reader in pieces of at most chunk bytes
// (all at once if chunk is 0) and returns what it delivered and its error.
func feedAll(limit int64, stream []byte, chunk int) ([]got, error) {
	r := frameReader{limit: limit}
	var out []got
	deliver := func(op byte, payload []byte) error {
		out = append(out, got{op, string(payload)})
		return nil
	}
	stream = append([]byte(nil), stream...)
	if chunk <= 0 {
		chunk = len(stream) + 1
	}
	for len(stream) > 0 {
		n := min(chunk, len(stream))
		// feed may unmask in place: give it a copy, as reads do.
		if err := r.feed(append([]byte(nil), stream[:n]...), deliver); err != nil {
			return out, err
		}
		stream = stream[n:]
	}
	if len(r.pending) > 0 || len(r.msg) > 0 {
		return out, fmt.Errorf("incomplete: %d bytes pending, %d bytes of a message", len(r.pending), len(r.msg))
	}
	return out, nil
}

func TestFrameReaderParses(t *testing.T) {
	long := string(bytes.Repeat([]byte("0123456789abcdef"), 300))    // 4,800 bytes: 16-bit length
	huge := string(bytes.Repeat([]byte("Switchboard socket"), 4000)) // 72,000 bytes: 64-bit length
	tests := []struct {
		name   string
		stream []byte
		want   []got
	}{
		{"one text frame", frame(opText, `42["call:notify",{}]`), []got{{opText, `42["call:notify",{}]`}}},
		{"binary frame", frame(opBinary, "\x04\x00\xff"), []got{{opBinary, "\x04\x00\xff"}}},
		{"empty frame", frame(opText, ""), []got{{opText, ""}}},
		{"several frames in one read", concat(frame(opText, "2"), frame(opText, "3"), frame(opText, "40")),
			[]got{{opText, "2"}, {opText, "3"}, {opText, "40"}}},
		{"16-bit length", frame(opText, long), []got{{opText, long}}},
		{"64-bit length", frame(opBinary, huge), []got{{opBinary, huge}}},
		{"fragmented message", concat(fragment(false, opText, "42[\"a"), fragment(false, opContinuation, "bc"), fragment(true, opContinuation, "\"]")),
			[]got{{opText, `42["abc"]`}}},
		{"control frames between fragments", concat(fragment(false, opBinary, "ab"), frame(opPing, "p"), frame(opPong, ""), fragment(true, opContinuation, "cd")),
			[]got{{opPing, "p"}, {opPong, ""}, {opBinary, "abcd"}}},
		{"close frame", frame(opClose, "\x03\xe8bye"), []got{{opClose, "\x03\xe8bye"}}},
		{"a message after a fragmented one", concat(fragment(false, opText, "a"), fragment(true, opContinuation, "b"), frame(opText, "c")),
			[]got{{opText, "ab"}, {opText, "c"}}},
	}
	for _, tt := range tests {
		// Every way of cutting the stream delivers the same: whole, one
		// byte at a time, and pieces that cut headers and masking keys.
		for _, chunk := range []int{0, 1, 2, 3, 5, 7, 13, 100, 4096} {
			t.Run(fmt.Sprintf("%s/chunk %d", tt.name, chunk), func(t *testing.T) {
				out, err := feedAll(1<<20, tt.stream, chunk)
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(out) != fmt.Sprint(tt.want) {
					t.Fatalf("delivered %q, want %q", out, tt.want)
				}
			})
		}
	}
}

func TestFrameReaderRefuses(t *testing.T) {
	unmasked := frame(opText, "hi")
	unmasked[1] &^= 0x80
	rsv := frame(opText, "hi")
	rsv[0] |= 0x40 // RSV1: compression, never negotiated
	msb := frame(opBinary, "")
	msb = append(msb[:1], 0x80|127, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4)
	tests := []struct {
		name   string
		stream []byte
		code   int
	}{
		{"unmasked frame", unmasked, ws.CloseProtocolError},
		{"reserved bit", rsv, ws.CloseProtocolError},
		{"unknown opcode", frame(0x3, "x"), ws.CloseProtocolError},
		{"unknown control opcode", frame(0xB, "x"), ws.CloseProtocolError},
		{"fragmented control frame", fragment(false, opPing, "x"), ws.CloseProtocolError},
		{"control frame over 125 bytes", frame(opPing, string(make([]byte, 126))), ws.CloseProtocolError},
		{"continuation without a message", frame(opContinuation, "x"), ws.CloseProtocolError},
		{"new message inside a fragmented one", concat(fragment(false, opText, "a"), frame(opText, "b")), ws.CloseProtocolError},
		{"length with its top bit set", msb, ws.CloseProtocolError},
		{"message over the limit", frame(opText, string(make([]byte, 101))), ws.CloseMessageTooBig},
		{"fragments over the limit together", concat(fragment(false, opText, string(make([]byte, 60))), fragment(true, opContinuation, string(make([]byte, 41)))), ws.CloseMessageTooBig},
	}
	for _, tt := range tests {
		for _, chunk := range []int{0, 1, 3} {
			t.Run(fmt.Sprintf("%s/chunk %d", tt.name, chunk), func(t *testing.T) {
				_, err := feedAll(100, tt.stream, chunk)
				var pe *ProtocolError
				if !errors.As(err, &pe) || pe.Code != tt.code {
					t.Fatalf("error %v, want a protocol error with code %d", err, tt.code)
				}
			})
		}
	}
	// At the limit exactly is fine.
	if _, err := feedAll(100, frame(opText, string(make([]byte, 100))), 0); err != nil {
		t.Fatalf("message at the limit: %v", err)
	}
}

// An oversized frame is refused from its header, before its payload is
// buffered.
func TestFrameReaderRefusesBeforeBuffering(t *testing.T) {
	r := frameReader{limit: 1 << 10}
	header := clientFrame(true, opBinary, make([]byte, 1<<20), testKey)[:14]
	err := r.feed(header, func(byte, []byte) error { return nil })
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Code != ws.CloseMessageTooBig {
		t.Fatalf("error %v, want message too big", err)
	}
}

// The reader keeps nothing once the frames it was fed are complete, and a
// frame cut in the middle keeps only its own bytes.
func TestFrameReaderKeepsNothingWhenIdle(t *testing.T) {
	r := frameReader{}
	nop := func(byte, []byte) error { return nil }
	f := frame(opText, "hello")
	if err := r.feed(append(append([]byte(nil), f...), f[:4]...), nop); err != nil {
		t.Fatal(err)
	}
	if len(r.pending) != 4 {
		t.Fatalf("%d bytes pending, want 4", len(r.pending))
	}
	if err := r.feed(append([]byte(nil), f[4:]...), nop); err != nil {
		t.Fatal(err)
	}
	if r.pending != nil || r.msg != nil {
		t.Fatalf("reader holds %d pending and %d message bytes after whole frames", len(r.pending), len(r.msg))
	}
}

// deliver's error stops the feed and is returned as is.
func TestFrameReaderStopsOnDeliverError(t *testing.T) {
	r := frameReader{}
	stop := errors.New("stop")
	n := 0
	err := r.feed(concat(frame(opText, "a"), frame(opClose, ""), frame(opText, "b")), func(op byte, _ []byte) error {
		n++
		if op == opClose {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Fatalf("error %v after %d deliveries, want stop after 2", err, n)
	}
}

func TestUnmask(t *testing.T) {
	for n := range 40 {
		payload := bytes.Repeat([]byte{0xA5}, n)
		want := make([]byte, n)
		for i := range want {
			want[i] = payload[i] ^ testKey[i%4]
		}
		unmask(testKey[:], payload)
		if !bytes.Equal(payload, want) {
			t.Fatalf("length %d: %x, want %x", n, payload, want)
		}
	}
}

// Any bytes, cut anywhere, never crash the reader, never deliver more than
// the limit, and deliver the same whether fed whole or in pieces.
func FuzzFrameReader(f *testing.F) {
	f.Add(concat(frame(opText, "40"), frame(opPing, "x")), uint8(1))
	f.Add(concat(fragment(false, opBinary, "ab"), frame(opPong, ""), fragment(true, opContinuation, "cd")), uint8(3))
	f.Add(frame(opClose, "\x03\xe8"), uint8(0))
	f.Add([]byte{0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0}, uint8(2))
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint8) {
		const limit = 1 << 12
		whole, errWhole := feedAll(limit, stream, 0)
		pieces, errPieces := feedAll(limit, stream, int(chunk))
		for _, g := range whole {
			if len(g.payload) > limit {
				t.Fatalf("delivered %d bytes over the limit %d", len(g.payload), limit)
			}
		}
		if fmt.Sprint(whole) != fmt.Sprint(pieces) || fmt.Sprint(errWhole) != fmt.Sprint(errPieces) {
			t.Fatalf("whole: %q %v; in pieces of %d: %q %v", whole, errWhole, chunk, pieces, errPieces)
		}
	})
}
