//go:build !linux

package wstransport

// poller is Linux-only (epoll); elsewhere every connection is read by a
// goroutine of its own (Transport.readLoop).
type poller struct{}

func (*poller) add(*Transport) bool { return false }
func (*poller) remove(*Transport)   {}
func (*poller) buffer() *[]byte     { b := make([]byte, readBufferSize); return &b }
func (*poller) putBuffer(*[]byte)   {}
func (*poller) state() (int, bool)  { return 0, false }
