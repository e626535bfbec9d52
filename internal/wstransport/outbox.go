package wstransport

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// outbox writes the broadcast frames that SendPreEncoded defers. A
// transport with deferred frames waits in one of the outbox's lanes until
// the lane's writer goroutine takes it and writes everything it has pending
// with one system call (see Transport.writePending).
//
// Why: a broadcast fans out one small frame to many connections, and the
// write system call, not the frame, is most of what a delivery costs. When
// a connection gets broadcasts faster than one write takes (every member
// while an organisation's calls make people busy and free again), the
// frames that arrive for it while the writer is busy with other
// connections go out together. With no delay (Builder.BroadcastDelay), an
// idle lane writes a transport as soon as its writer runs, so a lone event
// is not delayed by more than a goroutine hand-off, and the busier the node
// the more each write carries. With a delay, the lane's writer runs that
// long after the first frame it is given, and again that long after each
// round that leaves frames behind, so that a connection's broadcasts of
// that time share a write; a frame written at once to the connection (see
// Transport.send) takes its waiting frames with it, so a call's own events
// are never held back by the broadcasts before them.
//
// A transport always uses the same lane, and only that lane's writer, or a
// write made under the transport's lock, writes its pending frames, so they
// keep their order. There are as many lanes as the runtime has processors,
// so the writes of a large fan-out proceed in parallel with the goroutine
// that fans out.
type outbox struct {
	lanes []lane
	next  atomic.Uint32 // round-robin lane for new transports
}

// lane is a queue of transports with pending frames and the writer that
// drains it: a goroutine started when the queue gets its first transport
// (at once, or after the delay) and gone once it is empty.
type lane struct {
	mu      sync.Mutex
	ready   []*Transport
	spare   []*Transport // the other of the two slices run swaps
	running bool         // a writer goroutine drains ready, or is about to
	// delay is the Builder's BroadcastDelay, set before the first
	// transport is made and only read after.
	delay *time.Duration
}

// newOutbox returns an outbox with one lane per processor, whose writers
// start delay (the Builder's BroadcastDelay) after a lane's first frame.
func newOutbox(delay *time.Duration) *outbox {
	o := &outbox{lanes: make([]lane, runtime.GOMAXPROCS(0))}
	for i := range o.lanes {
		o.lanes[i].delay = delay
	}
	return o
}

// lane returns the lane for a new transport.
func (o *outbox) lane() *lane {
	return &o.lanes[int(o.next.Add(1))%len(o.lanes)]
}

// add queues t, which has just got its first pending frame, and starts the
// lane's writer, the delay from now, if it is not running.
func (l *lane) add(t *Transport) {
	l.mu.Lock()
	l.ready = append(l.ready, t)
	start := !l.running
	l.running = true
	l.mu.Unlock()
	if start {
		l.start()
	}
}

// start runs the lane's writer the delay from now (at once when it is
// zero).
func (l *lane) start() {
	if *l.delay <= 0 {
		go l.run()
		return
	}
	time.AfterFunc(*l.delay, l.run)
}

// run is the lane's writer: it writes the pending frames of every queued
// transport, and of the ones queued meanwhile: at once with no delay, else
// by a writer started delay later; it ends when none is left. The two
// slices are swapped each round so that a steady stream allocates nothing.
func (l *lane) run() {
	for {
		l.mu.Lock()
		batch := l.ready
		l.ready, l.spare = l.spare[:0], nil
		if len(batch) == 0 {
			l.running = false
			l.spare = batch
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		for i, t := range batch {
			t.writePending()
			batch[i] = nil
		}
		l.mu.Lock()
		l.spare = batch[:0]
		if *l.delay > 0 && len(l.ready) > 0 {
			l.mu.Unlock()
			l.start()
			return
		}
		l.mu.Unlock()
	}
}
