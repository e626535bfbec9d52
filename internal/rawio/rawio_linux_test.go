package rawio

import (
	"bytes"
	"errors"
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// socketPair returns the two ends of a non-blocking Unix stream pair.
func socketPair(t *testing.T) (a, b int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

// readAll reads what is buffered on fd without blocking.
func readAll(t *testing.T, fd int) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := Read(fd, buf)
		if errors.Is(err, unix.EAGAIN) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, buf[:n]...)
	}
}

// advance drops the first n bytes of bufs.
func advance(bufs net.Buffers, n int) net.Buffers {
	for len(bufs) > 0 && n >= len(bufs[0]) {
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	if len(bufs) > 0 {
		bufs[0] = bufs[0][n:]
	}
	return bufs
}

// TestWritevMoreThanOneBatch: a write of more buffers than one writev
// takes (and empty ones among them) goes out whole and in order when the
// caller loops on what is left.
func TestWritevMoreThanOneBatch(t *testing.T) {
	a, b := socketPair(t)
	var want []byte
	var bufs net.Buffers
	for i := range 3*MaxIovecs + 5 {
		p := []byte{byte(i), byte(i >> 8), '.'}
		if i%7 == 0 {
			p = nil
		}
		bufs = append(bufs, p)
		want = append(want, p...)
	}
	calls := 0
	for len(bufs) > 0 {
		n, err := Writev(a, bufs)
		if err != nil {
			t.Fatal(err)
		}
		calls++
		if calls > 10 {
			t.Fatalf("no progress: %d buffers left", len(bufs))
		}
		bufs = advance(bufs, n)
	}
	if calls < 3 {
		t.Errorf("%d writev calls for %d buffers, want one per %d", calls, 3*MaxIovecs+5, MaxIovecs)
	}
	if got := readAll(t, b); !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want %d", len(got), len(want))
	}
}

// TestErrors: a full socket answers EAGAIN, an empty one EAGAIN on
// read, a closed peer 0 bytes (EOF), and the errors compare with the unix
// constants as callers expect.
func TestErrors(t *testing.T) {
	a, b := socketPair(t)
	if _, err := Read(b, make([]byte, 8)); err != unix.EAGAIN {
		t.Fatalf("read of an empty socket: %v, want EAGAIN", err)
	}
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	var err error
	for range 10_000 {
		if _, err = Write(a, chunk); err != nil {
			break
		}
	}
	if err != unix.EAGAIN {
		t.Fatalf("write to a full socket: %v, want EAGAIN", err)
	}
	if _, err := Writev(a, net.Buffers{chunk, chunk}); err != unix.EAGAIN {
		t.Fatalf("writev to a full socket: %v, want EAGAIN", err)
	}
	if n, err := Writev(a, net.Buffers{nil, {}}); n != 0 || err != nil {
		t.Fatalf("writev of nothing: %d, %v", n, err)
	}
	unix.Close(b)
	if _, err := Write(a, []byte("x")); err != unix.EPIPE {
		t.Fatalf("write to a closed peer: %v, want EPIPE", err)
	}
	c, d := socketPair(t)
	unix.Close(d)
	if n, err := Read(c, make([]byte, 8)); n != 0 || err != nil {
		t.Fatalf("read from a closed peer: %d, %v; want 0, nil (EOF)", n, err)
	}
}

// TestEpollWaitNow: events ready are reported, none means 0 at once.
func TestEpollWaitNow(t *testing.T) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ep)
	a, b := socketPair(t)
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: 7}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, b, &ev); err != nil {
		t.Fatal(err)
	}
	events := make([]unix.EpollEvent, 4)
	if n, err := EpollWaitNow(ep, events); n != 0 || err != nil {
		t.Fatalf("nothing ready: %d, %v", n, err)
	}
	if _, err := Write(a, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	n, err := EpollWaitNow(ep, events)
	if n != 1 || err != nil || events[0].Fd != 7 || events[0].Events&unix.EPOLLIN == 0 {
		t.Fatalf("one ready: %d, %v, %+v", n, err, events[0])
	}
}
