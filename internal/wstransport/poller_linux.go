//go:build linux

package wstransport

import (
	"sync"

	"golang.org/x/sys/unix"
)

// pollEvents are the events a connection is registered for: readable or
// closed by the peer, reported once until the connection is re-armed.
const pollEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

// pollIdleExit is how long the poller's goroutine waits with no connection
// registered before it ends (the next registration starts it again).
const pollIdleExit = 1000 // milliseconds

// poller reads many connections without a goroutine parked on each: one
// goroutine waits on an epoll instance for any registered connection to
// become readable and starts a goroutine that reads it (Transport.readReady)
// and ends when it has read what was there. Connections are registered
// one-shot, so at most one goroutine reads a connection at a time and the
// reads of one connection stay in order: the reader re-arms the connection
// when it is done. Registrations carry a key, not the descriptor, so an
// event that arrives for a connection closed meanwhile finds nothing (its
// descriptor number may already belong to another connection); the
// descriptor is only used through the connection's syscall.RawConn, which
// keeps it open for the duration of the call.
//
// The zero poller is ready to use. Its epoll descriptor is made on the
// first registration and kept for the poller's life; its goroutine runs
// while connections are registered and ends about a second after the last
// one is removed.
type poller struct {
	mu      sync.Mutex
	epfd    int // valid when opened
	opened  bool
	conns   map[uint32]*Transport
	next    uint32
	running bool

	bufs sync.Pool // *[]byte of readBufferSize, shared by the readers
}

// add registers t, whose descriptor is t.raw, and reports whether it did:
// false if epoll is unavailable or the connection is closed, and the caller
// reads t another way. Once registered, readReady runs whenever t has
// something to read.
func (p *poller) add(t *Transport) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.opened {
		fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			return false
		}
		p.epfd, p.opened = fd, true
		p.conns = make(map[uint32]*Transport)
	}
	key := p.next + 1
	for key == 0 || p.conns[key] != nil {
		key++
	}
	p.next = key
	if !p.ctl(t, unix.EPOLL_CTL_ADD, key) {
		return false
	}
	t.pollKey = key
	p.conns[key] = t
	if !p.running {
		p.running = true
		go p.run()
	}
	return true
}

// rearm asks for t's next readable event, unless t was removed.
func (p *poller) rearm(t *Transport) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns[t.pollKey] == t {
		p.ctl(t, unix.EPOLL_CTL_MOD, t.pollKey)
	}
}

// remove unregisters t; no readReady starts for it afterwards. It is a
// no-op for a transport not registered.
func (p *poller) remove(t *Transport) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t.pollKey == 0 || p.conns[t.pollKey] != t {
		return
	}
	delete(p.conns, t.pollKey)
	// The kernel drops the registration when the descriptor closes; this
	// only matters if something else still holds it open.
	p.ctl(t, unix.EPOLL_CTL_DEL, t.pollKey)
}

// ctl applies op to t's descriptor, if it is still open. The caller holds
// p.mu.
func (p *poller) ctl(t *Transport, op int, key uint32) bool {
	var cerr error
	err := t.raw.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: pollEvents, Fd: int32(key)}
		cerr = unix.EpollCtl(p.epfd, op, int(fd), &ev)
	})
	return err == nil && cerr == nil
}

// run is the poller's goroutine.
func (p *poller) run() {
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.epfd, events, pollIdleExit)
		if err == unix.EINTR {
			continue
		}
		p.mu.Lock()
		if err != nil {
			// Not expected with a valid descriptor and buffer: fail the
			// registered connections rather than leave them unread (their
			// clients reconnect), and let new ones register again.
			for key, t := range p.conns {
				delete(p.conns, key)
				go t.fail(err)
			}
		}
		if n <= 0 && len(p.conns) == 0 {
			p.running = false
			p.mu.Unlock()
			return
		}
		for _, ev := range events[:max(n, 0)] {
			if t := p.conns[uint32(ev.Fd)]; t != nil {
				go t.readReady()
			}
		}
		p.mu.Unlock()
	}
}

// buffer returns a read buffer; give it back with putBuffer.
func (p *poller) buffer() *[]byte {
	if b, ok := p.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, readBufferSize)
	return &b
}

func (p *poller) putBuffer(b *[]byte) { p.bufs.Put(b) }

// state is the number of registered connections and whether the poller's
// goroutine runs.
func (p *poller) state() (conns int, running bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns), p.running
}
