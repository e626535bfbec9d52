// Package warm runs functions on goroutines that are kept between calls.
//
// A new goroutine starts with a small stack and grows it, a copy of the
// whole stack each time it doubles, whenever the work it does is deep:
// decoding JSON, running a Redis script through go-redis, encoding a
// Socket.IO packet. Where such work arrives on a fresh goroutine each time
// (the socket.io library starts one per burst of a socket's events, the
// websocket transport one per readable connection), the copying costs more
// than the work's own logic. A Pool keeps the goroutines that did the work,
// with the stacks they grew, and hands them the next function instead.
package warm

import (
	"sync"
	"time"
)

// Pool runs functions on kept goroutines ("workers"). Go and Run never
// wait for a worker: when none is idle, a new goroutine runs the function
// and then becomes a worker. At most maxIdle workers wait for work at a
// time, each for at most idleTimeout; the others end. The most recently
// idle worker is used first, so the work goes to few goroutines, whose
// stacks have grown. Make one with New; a Pool is safe for concurrent use.
type Pool struct {
	maxIdle     int
	idleTimeout time.Duration

	mu   sync.Mutex
	idle []*worker // a stack: the last one went idle last
}

// worker is one kept goroutine; work hands it its next task.
type worker struct {
	work chan task // buffered (1): handing a task never blocks
}

// task is a function to run and, for Run, where its end is signalled.
type task struct {
	f    func()
	done chan any // nil for Go; for Run, gets f's panic value or nil
}

// New returns a Pool that keeps up to maxIdle idle workers, each for up to
// idleTimeout.
func New(maxIdle int, idleTimeout time.Duration) *Pool {
	return &Pool{maxIdle: maxIdle, idleTimeout: idleTimeout}
}

// Go runs f on an idle worker, or on a new goroutine, and returns at once.
// A panic in f is not recovered: like one in any goroutine, it ends the
// program.
func (p *Pool) Go(f func()) { p.start(task{f: f}) }

// Run runs f on a worker and returns when f has returned. The caller's
// goroutine waits, so work that must stay in order (a socket's events)
// stays in order, and the worker is idle again by the time Run returns, so
// the caller's next Run finds it. A panic in f is raised again in the
// caller's goroutine (where a recover of the caller's sees it) and the
// worker lives on.
func (p *Pool) Run(f func()) {
	done := make(chan any, 1)
	p.start(task{f: f, done: done})
	if v := <-done; v != nil {
		panic(v)
	}
}

// Idle is the number of workers waiting for work.
func (p *Pool) Idle() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// start hands t to the most recently idle worker, or to a new one.
func (p *Pool) start(t task) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.work <- t
		return
	}
	p.mu.Unlock()
	w := &worker{work: make(chan task, 1)}
	go w.run(p, t)
}

// run is a worker's goroutine: it runs t, goes idle, and runs what it is
// handed next, until it has been idle for idleTimeout or finds maxIdle
// workers idle already.
func (w *worker) run(p *Pool, t task) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		keep := w.runTask(p, t)
		if !keep {
			return
		}
		if timer == nil {
			timer = time.NewTimer(p.idleTimeout)
		} else {
			timer.Reset(p.idleTimeout)
		}
		select {
		case t = <-w.work:
		case <-timer.C:
			if p.leave(w) {
				return
			}
			// Taken off the idle stack just now: the task is on its way.
			t = <-w.work
		}
	}
}

// runTask runs t, puts the worker back on the idle stack (unless maxIdle
// are there), and only then signals a Run that t is done. It reports
// whether the worker stays.
func (w *worker) runTask(p *Pool, t task) (keep bool) {
	var panicked any
	func() {
		if t.done != nil {
			defer func() { panicked = recover() }()
		}
		t.f()
	}()
	p.mu.Lock()
	keep = len(p.idle) < p.maxIdle
	if keep {
		p.idle = append(p.idle, w)
	}
	p.mu.Unlock()
	if t.done != nil {
		t.done <- panicked
	}
	return keep
}

// leave takes w off the idle stack after its idle timeout and reports
// whether it was there (if not, a task was just handed to it).
func (p *Pool) leave(w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, iw := range p.idle {
		if iw == w {
			copy(p.idle[i:], p.idle[i+1:])
			p.idle[len(p.idle)-1] = nil
			p.idle = p.idle[:len(p.idle)-1]
			return true
		}
	}
	return false
}
