//go:build linux

package wstransport

import (
	"net"
	"testing"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = c.Close(); _ = s.Close() })
	return s.(*net.TCPConn), c.(*net.TCPConn)
}

func pollable(t *testing.T, nc *net.TCPConn) *Transport {
	t.Helper()
	raw, err := nc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return &Transport{nc: nc, raw: raw}
}

// A transport that closed before or while it registered is not kept: the
// poller would otherwise hold it, and run, for ever.
func TestPollerDropsTransportClosedWhileRegistering(t *testing.T) {
	var p poller
	s, _ := tcpPair(t)
	tr := pollable(t, s)
	tr.stop() // closed, as OnClose does first
	if !p.add(tr) {
		t.Fatal("add refused an open descriptor")
	}
	if conns, _ := p.state(); conns != 0 {
		t.Fatalf("%d connections registered, want 0", conns)
	}
	p.remove(tr) // and OnClose's remove finds nothing to do
}

// A descriptor already closed is refused, so the caller reads another way.
func TestPollerRefusesClosedDescriptor(t *testing.T) {
	var p poller
	s, _ := tcpPair(t)
	tr := pollable(t, s)
	_ = s.Close()
	if p.add(tr) {
		t.Fatal("add took a closed descriptor")
	}
	if conns, _ := p.state(); conns != 0 {
		t.Fatalf("%d connections registered, want 0", conns)
	}
}
