package wstransport

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkLoopbackWrite measures what one write system call to a loopback
// TCP connection costs the thread that makes it, on this machine: the floor
// under the server CPU per delivered broadcast event that the load tool
// reports, since every delivery to a websocket is at least one write.
//
// 100 or 5,000 connections are read by goroutines of the same process (as
// Go clients read: the netpoller, a goroutine woken per readable
// connection). An op writes a 120-byte frame, the size of a presence event,
// to the next connection in turn from one locked OS thread, and frames=3
// writes three of them with one writev, as the outbox does when frames pile
// up. With 5,000 connections each one's kernel state is cold by its next
// turn, as in a fan-out to thousands of members. Reported:
// thread-µs/write and thread-µs/frame, the writing thread's user+system CPU
// (RUSAGE_THREAD): on loopback the kernel delivers the data to the reader,
// and wakes it, inside the writer's system call, so this is what a server
// pays here, not what it would pay with its clients across a network.
func BenchmarkLoopbackWrite(b *testing.B) {
	for _, conns := range []int{100, 5000} {
		for _, frames := range []int{1, 3} {
			b.Run(fmt.Sprintf("conns=%d/frames=%d", conns, frames), func(b *testing.B) { benchLoopbackWrite(b, conns, frames) })
		}
	}
}

func benchLoopbackWrite(b *testing.B, conns, frames int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	var readers sync.WaitGroup
	writers := make([]*net.TCPConn, conns)
	for i := range writers {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		peer, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		writers[i] = c.(*net.TCPConn)
		readers.Add(1)
		go func() {
			defer readers.Done()
			_, _ = io.Copy(io.Discard, peer)
			_ = peer.Close()
		}()
	}
	defer func() {
		for _, w := range writers {
			_ = w.Close()
		}
		readers.Wait()
	}()
	frame := make([]byte, 120)
	bufs := make([][]byte, frames)
	for i := range bufs {
		bufs[i] = frame
	}
	fds := make([]int, conns)
	for i, w := range writers {
		raw, err := w.SyscallConn()
		if err != nil {
			b.Fatal(err)
		}
		_ = raw.Control(func(fd uintptr) { fds[i] = int(fd) })
	}

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU()
	full := 0
	b.ResetTimer()
	for i := range b.N {
		fd := fds[i%conns]
		var err error
		if frames == 1 {
			_, err = unix.Write(fd, frame)
		} else {
			_, err = unix.Writev(fd, bufs)
		}
		switch err {
		case nil:
		case unix.EAGAIN:
			full++
		default:
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if full > b.N/100 {
		b.Fatalf("%d of %d writes found the socket buffer full: the readers did not keep up", full, b.N)
	}
	per := float64((threadCPU() - cpu0).Microseconds()) / float64(b.N)
	b.ReportMetric(per, "thread-µs/write")
	b.ReportMetric(per/float64(frames), "thread-µs/frame")
}

// threadCPU is the calling OS thread's user+system CPU time.
func threadCPU() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_THREAD, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
