package wstransport

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The transport's sockets and its epoll descriptor are non-blocking, so a
// read, write or epoll_wait on them returns at once: EAGAIN rather than
// wait. These make those calls as raw system calls, without telling the Go
// scheduler (syscall.RawSyscall instead of syscall.Syscall, which
// unix.Read, unix.Write and unix.EpollWait use).
//
// Why: a goroutine in a scheduler-visible system call leaves its P in the
// syscall state, and the runtime's monitor thread (sysmon) hands such a P to
// another thread once it has seen it there for one tick (20 µs) while other
// goroutines wait to run. A loopback write to a busy socket takes about that
// long, so under load every few writes cost a thread hand-off (futex wake-ups,
// context switches), and every hand-off keeps sysmon polling at its fastest
// period: on the call path that polling alone was ~7% of a node's CPU
// samples, and the switches ~15% more. A call that cannot block needs none of
// it. The price is that the P is not lent out during the call, which is right
// for a call that only copies bytes into or out of the kernel.

// maxIovecs bounds the buffers given to one writev; the caller loops for
// the rest (well under IOV_MAX, 1024).
const maxIovecs = 64

// errnoErr turns a raw call's errno into an error, nil for 0. The common
// values compare equal to the unix constants (err == unix.EAGAIN).
func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// rawRead is read(2) on a non-blocking descriptor.
func rawRead(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := syscall.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, errnoErr(e)
	}
	return int(n), nil
}

// rawWrite is write(2) on a non-blocking descriptor.
func rawWrite(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := syscall.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, errnoErr(e)
	}
	return int(n), nil
}

// rawWritev is writev(2) of the first maxIovecs non-empty buffers of bufs
// on a non-blocking descriptor.
func rawWritev(fd int, bufs [][]byte) (int, error) {
	var iov [maxIovecs]unix.Iovec
	k := 0
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if k == maxIovecs {
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

// rawEpollWaitNow is epoll_wait(2) with a zero timeout: it reports the
// events ready now and never sleeps.
func rawEpollWaitNow(epfd int, events []unix.EpollEvent) (int, error) {
	if len(events) == 0 {
		return 0, nil
	}
	n, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, errnoErr(e)
	}
	return int(n), nil
}
