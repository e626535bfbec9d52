package rawio

import (
	"context"
	"fmt"
	"io"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// Conn is a TCP connection whose Read and Write make their system calls
// raw (see the package comment). It is for connections that carry many
// small messages, such as the node's Redis connections. Everything else,
// deadlines included, is the wrapped connection's: a Read or Write that
// finds nothing to read or no room to write waits in Go's network poller
// as the connection's own would, until its deadline. The descriptor is
// used only inside syscall.RawConn calls, so a concurrent Close never lets
// a call reach a descriptor number already reused by another connection.
//
// Conn does not offer SyscallConn. go-redis uses it to peek at every
// pooled connection before each use (a recvfrom through syscall.Syscall,
// which also wakes the runtime's monitor thread from its deep sleep each
// time); Write makes the same check itself, raw (PeerGone).
type Conn struct {
	net.Conn // a *net.TCPConn
	raw      syscall.RawConn
}

// Wrap returns c as a Conn when it is a TCP connection, else c itself.
func Wrap(c net.Conn) net.Conn {
	tcp, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		return c
	}
	return &Conn{Conn: tcp, raw: raw}
}

// Read reads into p, waiting until something arrives.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var rerr error
	err := c.raw.Read(func(fd uintptr) bool {
		for {
			n, rerr = Read(int(fd), p)
			if rerr != unix.EINTR {
				return rerr != unix.EAGAIN
			}
		}
	})
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case rerr != nil:
		return 0, c.opError("read", rerr)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// Write writes all of p, waiting for room when the socket buffer is full.
// It first checks that the peer has not closed or reset the connection
// since it was last used (PeerGone): then nothing is written and the error
// wraps io.EOF, which tells a Redis client that the command never left and
// may go again on another connection.
func (c *Conn) Write(p []byte) (int, error) {
	var n int
	var werr error
	checked := false
	err := c.raw.Write(func(fd uintptr) bool {
		if !checked {
			checked = true
			if gone := PeerGone(int(fd)); gone != nil {
				werr = fmt.Errorf("%w: peer closed the connection before this write (%w)", io.EOF, gone)
				return true
			}
		}
		for n < len(p) {
			m, e := Write(int(fd), p[n:])
			switch {
			case e == unix.EINTR:
				continue
			case e == unix.EAGAIN:
				return false // wait for room
			case e != nil:
				werr = e
				return true
			}
			n += m
		}
		return true
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		return n, c.opError("write", err)
	}
	return n, nil
}

// opError reports err as the net package does for the operation op, so
// callers that look for timeouts (net.Error) or closed connections
// (net.ErrClosed) with errors.As and errors.Is find them.
func (c *Conn) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok { // from RawConn: deadline, closed
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// Dialer returns a dial function, for clients that take one (go-redis's
// Options.Dialer), that dials with d and wraps what it gets (Wrap).
func Dialer(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return Wrap(c), nil
	}
}
