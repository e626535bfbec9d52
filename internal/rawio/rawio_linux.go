// Package rawio reads and writes non-blocking descriptors with raw system
// calls, and wraps a TCP connection so that its reads and writes are made
// that way (Conn).
//
// A descriptor that is non-blocking answers a read, write or epoll_wait at
// once (EAGAIN rather than wait), so the call needs none of what
// syscall.Syscall, which unix.Read, unix.Write and the net package use, does
// around it: a goroutine in a scheduler-visible system call leaves its P in
// the syscall state, and the runtime's monitor thread (sysmon) hands such a
// P to another thread once it has seen it there for a tick (20 µs) while
// other goroutines wait to run. A loopback write to a busy socket lasts
// about that long, so under load every few calls cost a thread hand-off
// (futex wake-ups, context switches), and each hand-off keeps sysmon
// polling at its fastest period. syscall.RawSyscall makes the same call
// without telling the scheduler; the P is not lent out during it, which is
// right for a call that only copies bytes into or out of the kernel.
package rawio

import (
	"io"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MaxIovecs bounds the buffers Writev gives to one writev(2); the caller
// loops for the rest (well under IOV_MAX, 1024).
const MaxIovecs = 64

// errnoErr turns a raw call's errno into an error, nil for 0. The common
// values compare equal to the unix constants (err == unix.EAGAIN).
func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// Read is read(2) on a non-blocking descriptor.
func Read(fd int, p []byte) (int, error) { return transfer(unix.SYS_READ, fd, p) }

// Write is write(2) on a non-blocking descriptor.
func Write(fd int, p []byte) (int, error) { return transfer(unix.SYS_WRITE, fd, p) }

// transfer is read(2) or write(2) (trap) of p on fd, raw.
func transfer(trap uintptr, fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, errnoErr(e)
	}
	return int(n), nil
}

// Writev is writev(2) of the first MaxIovecs non-empty buffers of bufs on
// a non-blocking descriptor.
func Writev(fd int, bufs [][]byte) (int, error) {
	var iov [MaxIovecs]unix.Iovec
	k := 0
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if k == MaxIovecs {
			break
		}
		iov[k].Base = &b[0]
		iov[k].SetLen(len(b))
		k++
	}
	if k == 0 {
		return 0, nil
	}
	n, _, e := syscall.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(k))
	if e != 0 {
		return 0, errnoErr(e)
	}
	return int(n), nil
}

// EpollWaitNow is epoll_wait(2) with a zero timeout: it reports the events
// ready now and never sleeps.
func EpollWaitNow(epfd int, events []unix.EpollEvent) (int, error) {
	if len(events) == 0 {
		return 0, nil
	}
	n, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, errnoErr(e)
	}
	return int(n), nil
}

// PeerGone reports whether the peer of a non-blocking stream socket has
// closed it or reset it, without taking anything from it: io.EOF for an
// orderly close, the error (ECONNRESET, …) for a reset, nil while the
// connection is open, whether or not data waits to be read.
func PeerGone(fd int) error {
	var b [1]byte
	n, _, e := syscall.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), 1,
		unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	switch {
	case e == unix.EAGAIN || e == unix.EINTR:
		return nil
	case e != 0:
		return e
	case n == 0:
		return io.EOF
	}
	return nil
}
