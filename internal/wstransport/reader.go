package wstransport

import (
	"encoding/binary"
	"fmt"

	ws "github.com/gorilla/websocket"
)

// More WebSocket opcodes (RFC 6455 section 5.2): those only a client sends
// to the transport, or that it only reads.
const (
	opContinuation = 0x0
	opPing         = 0x9
)

// maxControlPayload is the largest payload of a control frame (RFC 6455
// section 5.5).
const maxControlPayload = 125

// ProtocolError is why the transport failed a connection whose client broke
// the WebSocket protocol or sent a message over the size limit. Code is the
// close code the transport sent the client before closing:
// ws.CloseProtocolError (1002) or ws.CloseMessageTooBig (1009).
type ProtocolError struct {
	Code   int
	Reason string
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("wstransport: websocket protocol error %d: %s", e.Code, e.Reason)
}

func protocolErr(format string, args ...any) *ProtocolError {
	return &ProtocolError{Code: ws.CloseProtocolError, Reason: fmt.Sprintf(format, args...)}
}

// frameReader parses the frames a client sends (RFC 6455 section 5) from
// the bytes read off the connection, in whatever pieces they arrive, and
// reassembles fragmented messages. It keeps nothing between reads unless a
// frame or a message is incomplete, so an idle connection costs the struct
// alone. The zero frameReader has no size limit; it is not safe for
// concurrent use.
type frameReader struct {
	// limit is the largest message payload accepted, all fragments
	// together; zero means no limit.
	limit int64

	pending []byte // bytes of an incomplete frame, carried to the next feed
	msg     []byte // payload so far of a fragmented message
	msgOp   byte   // opcode of that message; opContinuation when none
}

// feed parses data, the next bytes read from the connection, and calls
// deliver in order for each complete data message (opText or opBinary,
// fragments joined) and each control frame (opClose, opPing, opPong).
// payload is valid only during the call. feed stops at the first error
// deliver returns and returns it, or at the first violation of the
// protocol, for which it returns a *ProtocolError; the reader must not be
// fed again after an error. feed may modify data (it unmasks payloads in
// place).
func (r *frameReader) feed(data []byte, deliver func(op byte, payload []byte) error) error {
	buf, carried := data, len(r.pending) > 0
	if carried {
		r.pending = append(r.pending, data...)
		buf = r.pending
	}
	for {
		n, err := r.next(buf, deliver)
		if err != nil {
			r.pending, r.msg = nil, nil
			return err
		}
		if n == 0 {
			break
		}
		buf = buf[n:]
	}
	switch {
	case len(buf) == 0:
		r.pending = nil
	case carried:
		// Keep the tail of pending, moved to the front so the array does
		// not grow with every frame that ends mid-read.
		r.pending = r.pending[:copy(r.pending, buf)]
	default:
		r.pending = append([]byte(nil), buf...)
	}
	return nil
}

// next parses the frame at the start of buf and returns its length, or 0
// if buf does not hold a whole frame yet.
func (r *frameReader) next(buf []byte, deliver func(op byte, payload []byte) error) (int, error) {
	if len(buf) < 2 {
		return 0, nil
	}
	b0, b1 := buf[0], buf[1]
	fin, op := b0&0x80 != 0, b0&0x0F
	size, header := int64(b1&0x7F), 2
	switch size {
	case 126:
		if len(buf) < 4 {
			return 0, nil
		}
		size, header = int64(binary.BigEndian.Uint16(buf[2:])), 4
	case 127:
		if len(buf) < 10 {
			return 0, nil
		}
		u := binary.BigEndian.Uint64(buf[2:])
		if u>>63 != 0 {
			return 0, protocolErr("payload length with its most significant bit set")
		}
		size, header = int64(u), 10
	}

	// Check the header before waiting for the payload, so a frame that
	// will be refused is not buffered first.
	if b0&0x70 != 0 {
		return 0, protocolErr("reserved bits set (no extension was negotiated)")
	}
	if b1&0x80 == 0 {
		return 0, protocolErr("client frame not masked")
	}
	switch op {
	case opClose, opPing, opPong:
		if !fin {
			return 0, protocolErr("fragmented control frame")
		}
		if size > maxControlPayload {
			return 0, protocolErr("control frame payload of %d bytes", size)
		}
	case opText, opBinary:
		if r.msgOp != opContinuation {
			return 0, protocolErr("new message before the last one's final fragment")
		}
	case opContinuation:
		if r.msgOp == opContinuation {
			return 0, protocolErr("continuation frame without a message")
		}
	default:
		return 0, protocolErr("unknown opcode %d", op)
	}
	if op < opClose && r.limit > 0 && int64(len(r.msg))+size > r.limit {
		return 0, &ProtocolError{Code: ws.CloseMessageTooBig, Reason: fmt.Sprintf("message over %d bytes", r.limit)}
	}

	header += 4 // the masking key
	if int64(len(buf)-header) < size {
		return 0, nil
	}
	end := header + int(size)
	payload := buf[header:end]
	unmask(buf[header-4:header], payload)

	if op >= opClose {
		return end, deliver(op, payload)
	}
	if fin && op != opContinuation {
		return end, deliver(op, payload)
	}
	if op != opContinuation {
		r.msgOp = op
	}
	r.msg = append(r.msg, payload...)
	if !fin {
		return end, nil
	}
	msgOp, msg := r.msgOp, r.msg
	r.msgOp, r.msg = opContinuation, nil
	return end, deliver(msgOp, msg)
}

// unmask XORs payload with the 4-byte masking key (RFC 6455 section 5.3).
func unmask(key, payload []byte) {
	k := binary.LittleEndian.Uint32(key)
	k64 := uint64(k) | uint64(k)<<32
	i := 0
	for ; i+8 <= len(payload); i += 8 {
		binary.LittleEndian.PutUint64(payload[i:], binary.LittleEndian.Uint64(payload[i:])^k64)
	}
	for ; i < len(payload); i++ {
		payload[i] ^= key[i&3]
	}
}
