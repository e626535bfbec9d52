//go:build !linux

package rawio

import (
	"io"

	"golang.org/x/sys/unix"
)

// MaxIovecs bounds the buffers Writev gives to one writev(2).
const MaxIovecs = 64

// Elsewhere these are the ordinary system calls (see rawio_linux.go for why
// Linux makes them raw).

func Read(fd int, p []byte) (int, error)        { return unix.Read(fd, p) }
func Write(fd int, p []byte) (int, error)       { return unix.Write(fd, p) }
func Writev(fd int, bufs [][]byte) (int, error) { return unix.Writev(fd, bufs) }

// PeerGone reports whether the peer closed (io.EOF) or reset the socket.
func PeerGone(fd int) error {
	var b [1]byte
	n, _, err := unix.Recvfrom(fd, b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		return nil
	case err != nil:
		return err
	case n == 0:
		return io.EOF
	}
	return nil
}
