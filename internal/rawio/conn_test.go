package rawio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// pair returns a wrapped client connection and the server's end of it, on
// loopback.
func pair(t *testing.T) (*Conn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	w, ok := Wrap(c).(*Conn)
	if !ok {
		t.Fatalf("Wrap(%T) is not a *Conn", c)
	}
	t.Cleanup(func() { w.Close(); s.Close() })
	return w, s
}

// TestConnCarriesEverything: writes larger than the socket buffers (Write
// waits for room) and reads of every size arrive whole and in order, both
// ways.
func TestConnCarriesEverything(t *testing.T) {
	c, s := pair(t)
	want := make([]byte, 8<<20)
	for i := range want {
		want[i] = byte(i * 7)
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(s, int64(len(want))))
		got <- b
	}()
	if n, err := c.Write(want); n != len(want) || err != nil {
		t.Fatalf("write: %d, %v", n, err)
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("the server read %d bytes, not what was written", len(b))
	}
	go s.Write(want)
	b := make([]byte, len(want))
	if _, err := io.ReadFull(c, b); err != nil || !bytes.Equal(b, want) {
		t.Fatalf("read back: %v", err)
	}
}

// TestConnDeadlinesAndClose: a Read with nothing to read waits until its
// deadline and reports a timeout; an orderly close by the peer reads as
// io.EOF; a closed Conn reports net.ErrClosed.
func TestConnDeadlinesAndClose(t *testing.T) {
	c, s := pair(t)
	if err := c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := c.Read(make([]byte, 8))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	if waited := time.Since(start); waited < 40*time.Millisecond {
		t.Fatalf("read returned after %v, before its deadline", waited)
	}
	_ = c.SetReadDeadline(time.Time{})
	s.Close()
	if _, err := c.Read(make([]byte, 8)); err != io.EOF {
		t.Fatalf("read after the peer closed: %v, want io.EOF", err)
	}
	c.Close()
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
	if _, err := c.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after Close: %v", err)
	}
}

// TestConnWriteChecksThePeer: a write to a connection the peer has closed
// since its last use sends nothing and fails with an error that wraps
// io.EOF (a Redis client then retries the command elsewhere), as go-redis's
// own check before each use would have; data waiting to be read does not
// count as gone.
func TestConnWriteChecksThePeer(t *testing.T) {
	c, s := pair(t)
	if _, err := s.Write([]byte("+PONG\r\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if n, err := c.Write([]byte("PING\r\n")); n != 6 || err != nil {
		t.Fatalf("write with a reply waiting: %d, %v", n, err)
	}
	b := make([]byte, 7)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "+PONG\r\n" {
		t.Fatalf("read %q, %v", b, err)
	}
	s.Close()
	time.Sleep(20 * time.Millisecond)
	n, err := c.Write([]byte("PING\r\n"))
	if n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("write after the peer closed: %d, %v; want 0 and io.EOF", n, err)
	}
}

// TestWrapLeavesOthers: only TCP connections are wrapped, and the wrapper
// does not offer SyscallConn (see Conn).
func TestWrapLeavesOthers(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Wrap(a) != a {
		t.Fatal("a pipe was wrapped")
	}
	c, _ := pair(t)
	if _, ok := any(c).(syscall.Conn); ok {
		t.Fatal("Conn offers SyscallConn")
	}
}
