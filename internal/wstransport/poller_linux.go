//go:build linux

package wstransport

import (
	"errors"
	"github.com/switchboard/switchboard/internal/rawio"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// pollEvents are the events a connection is registered for: data arrived
// or the peer closed, edge-triggered (each arrival is reported once, whether
// or not the connection was read since).
const pollEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET

// pollIdleExit is how long the poller's goroutine waits with no connection
// registered before it ends (the next registration starts it again).
const pollIdleExit = time.Second

// poller reads many connections without a goroutine parked on each: one
// goroutine waits on an epoll instance for any registered connection to
// receive data and tells the connection (Transport.readable), which starts
// a goroutine that reads what is there and ends (Transport.readReady),
// unless one is reading it already: at most one goroutine reads a
// connection at a time, so the reads of one connection stay in order, and
// no system call re-arms a connection after each read. Registrations carry
// a key, not the descriptor, so an event that arrives for a connection
// closed meanwhile finds nothing (its descriptor number may already belong
// to another connection); the descriptor is only used through the
// connection's syscall.RawConn, which keeps it open for the duration of the
// call.
//
// The zero poller is ready to use. Its epoll descriptor is made on the
// first registration and kept for the poller's life (closed with it, by
// its os.File); its goroutine runs while connections are registered, parked
// in Go's network poller when there is nothing to read, and ends about a
// second after the last one is removed.
type poller struct {
	mu      sync.Mutex
	epfd    int      // valid when opened
	file    *os.File // epfd, registered with Go's network poller
	raw     syscall.RawConn
	opened  bool
	conns   map[uint32]*Transport
	next    uint32
	running bool

	bufs sync.Pool // *[]byte of readBufferSize, shared by the readers
}

// add registers t, whose descriptor is t.raw, and reports whether it took
// t: false if epoll is unavailable or the descriptor is closed, and the
// caller reads t another way (which then fails on the closed connection).
// Once registered, t.readable runs whenever data arrives for t. A transport
// that closes meanwhile is taken and forgotten: OnClose's remove and add
// serialize on p.mu, and add checks t.closed, which OnClose sets first.
func (p *poller) add(t *Transport) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.opened {
		fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			return false
		}
		// Non-blocking, the epoll descriptor joins Go's network poller:
		// run waits for it as a socket read waits, parked, instead of
		// holding a thread in epoll_wait.
		if err := unix.SetNonblock(fd, true); err != nil {
			_ = unix.Close(fd)
			return false
		}
		file := os.NewFile(uintptr(fd), "wstransport-epoll")
		raw, err := file.SyscallConn()
		if err != nil {
			_ = file.Close()
			return false
		}
		p.epfd, p.file, p.raw, p.opened = fd, file, raw, true
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
	if t.isClosed() {
		// The transport closed while it registered: its OnClose may have
		// run remove before the entry existed. Whichever came first, the
		// entry goes (and the descriptor closes, or is closing).
		delete(p.conns, key)
		p.ctl(t, unix.EPOLL_CTL_DEL, key)
		return true
	}
	if !p.running {
		p.running = true
		go p.run()
	}
	return true
}

// remove unregisters t; the poller does not report it afterwards. It is a
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

// run is the poller's goroutine. It collects events with a non-blocking
// epoll_wait and, when there are none, parks until Go's network poller
// reports the epoll descriptor readable (it has events again).
func (p *poller) run() {
	events := make([]unix.EpollEvent, 256)
	for {
		_ = p.file.SetReadDeadline(time.Now().Add(pollIdleExit))
		var n int
		var werr error
		err := p.raw.Read(func(fd uintptr) bool {
			n, werr = rawio.EpollWaitNow(int(fd), events)
			return n > 0 || (werr != nil && werr != unix.EINTR)
		})
		p.mu.Lock()
		if err == nil && werr != nil {
			err = werr
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			// Not expected with a valid descriptor and buffer: fail the
			// registered connections rather than leave them unread (their
			// clients reconnect), and let new ones register again.
			for key, t := range p.conns {
				delete(p.conns, key)
				go t.fail(err)
			}
		}
		if err != nil && len(p.conns) == 0 {
			p.running = false
			p.mu.Unlock()
			return
		}
		for _, ev := range events[:n] {
			if t := p.conns[uint32(ev.Fd)]; t != nil {
				if ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
					// Set before readable, so the reader that runs after
					// it sees it (see readReady).
					t.peerClosed.Store(true)
				}
				t.readable()
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
