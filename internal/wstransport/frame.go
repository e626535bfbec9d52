package wstransport

import (
	"net"

	"github.com/zishang520/socket.io/v3/pkg/types"
)

// WebSocket opcodes (RFC 6455 section 5.2) of the frames the transport
// writes.
const (
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPong   = 0xA
)

// opcodeOf is the opcode of a message, decided as the library does: a
// *types.StringBuffer is text, anything else binary.
func opcodeOf(b types.BufferInterface) byte {
	if _, ok := b.(*types.StringBuffer); ok {
		return opText
	}
	return opBinary
}

// appendFrame appends one final, unmasked WebSocket frame (what a server
// sends) carrying payload to dst and returns the extended slice.
func appendFrame(dst []byte, opcode byte, payload []byte) []byte {
	n := len(payload)
	dst = append(dst, 0x80|opcode)
	switch {
	case n < 126:
		dst = append(dst, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 127,
			byte(uint64(n)>>56), byte(uint64(n)>>48), byte(uint64(n)>>40), byte(uint64(n)>>32),
			byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, payload...)
}

// consume drops the first n bytes of bufs (n bytes were written) and
// returns what is left, without empty buffers at its front. It slices bufs
// and its first element but never writes to the bytes, which may be shared.
func consume(bufs net.Buffers, n int) net.Buffers {
	for len(bufs) > 0 && (n > 0 || len(bufs[0]) == 0) {
		if n < len(bufs[0]) {
			bufs[0] = bufs[0][n:]
			return bufs
		}
		n -= len(bufs[0])
		bufs[0] = nil
		bufs = bufs[1:]
	}
	return bufs
}
