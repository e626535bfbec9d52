//go:build !linux

package wstransport

import "golang.org/x/sys/unix"

// Elsewhere the transport's reads and writes are the ordinary system calls
// (see rawio_linux.go for why Linux makes them raw).

func rawRead(fd int, p []byte) (int, error)        { return unix.Read(fd, p) }
func rawWrite(fd int, p []byte) (int, error)       { return unix.Write(fd, p) }
func rawWritev(fd int, bufs [][]byte) (int, error) { return unix.Writev(fd, bufs) }
