package warm

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// deep recurses n frames with a sizeable frame each, growing the stack.
//
//go:noinline
func deep(n int) int {
	var pad [256]byte
	pad[n%256] = byte(n)
	if n == 0 {
		return int(pad[0])
	}
	return deep(n-1) + int(pad[n%256])
}

// Work handed to the pool one call after another runs on the same kept
// goroutine: Run returns once the worker is idle again, so the next call
// finds it and no new goroutine is started.
func TestReusesIdleWorker(t *testing.T) {
	p := New(4, time.Minute)
	var ids sync.Map
	for range 50 {
		p.Run(func() {
			deep(100)
			ids.Store(goroutineID(), true)
		})
		if p.Idle() != 1 {
			t.Fatalf("%d idle workers after Run returned, want 1", p.Idle())
		}
	}
	n := 0
	ids.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Fatalf("50 sequential calls ran on %d goroutines, want 1", n)
	}
}

// Concurrent work is never held back waiting for a worker, and no more
// than maxIdle workers stay once it is done.
func TestNeverWaitsAndKeepsAtMostMaxIdle(t *testing.T) {
	p := New(3, time.Minute)
	const n = 20
	var started sync.WaitGroup
	started.Add(n)
	release := make(chan struct{})
	for range n {
		p.Go(func() {
			started.Done()
			<-release // all n run at once: none waits for another
		})
	}
	started.Wait()
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for p.Idle() != 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := p.Idle(); got != 3 {
		t.Fatalf("%d idle workers, want 3", got)
	}
}

// Idle workers end after the idle timeout.
func TestIdleWorkersEnd(t *testing.T) {
	before := runtime.NumGoroutine()
	p := New(8, 50*time.Millisecond)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		p.Go(func() { defer wg.Done(); time.Sleep(10 * time.Millisecond) })
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for (p.Idle() != 0 || runtime.NumGoroutine() > before) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if p.Idle() != 0 || runtime.NumGoroutine() > before {
		t.Fatalf("%d idle workers and %d goroutines (%d before) after the idle timeout", p.Idle(), runtime.NumGoroutine(), before)
	}
}

// Run raises f's panic in the caller and keeps the worker.
func TestRunPanicReachesCaller(t *testing.T) {
	p := New(1, time.Minute)
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Fatalf("recovered %v, want boom", r)
			}
		}()
		p.Run(func() { panic("boom") })
	}()
	waitIdle(t, p, 1)
	var ran atomic.Bool
	p.Run(func() { ran.Store(true) })
	if !ran.Load() {
		t.Fatal("the pool does not run work after a panic")
	}
}

func waitIdle(t *testing.T, p *Pool, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for p.Idle() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d idle workers, want %d", p.Idle(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// goroutineID is the running goroutine's id, from its stack header.
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	// "goroutine 123 [running]:..."
	for i := len("goroutine "); i < len(buf); i++ {
		if buf[i] == ' ' {
			return string(buf[len("goroutine "):i])
		}
	}
	return string(buf)
}

// BenchmarkDeepWork: a function that grows its stack to ~30 KiB, run on a
// fresh goroutine each time (what the library's per-socket queue and a
// per-read goroutine do) and on the pool.
func BenchmarkDeepWork(b *testing.B) {
	b.Run("fresh-goroutine", func(b *testing.B) {
		for b.Loop() {
			done := make(chan struct{})
			go func() { deep(100); close(done) }()
			<-done
		}
	})
	b.Run("pool", func(b *testing.B) {
		p := New(4, time.Minute)
		for b.Loop() {
			p.Run(func() { deep(100) })
		}
	})
}
