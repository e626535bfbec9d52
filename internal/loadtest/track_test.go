package loadtest

import (
	"testing"
	"time"
)

func TestStageAccounting(t *testing.T) {
	s := newStage(5)
	t0 := time.Now()
	if s.arrive(0, t0) {
		t.Fatal("arrival before arm was accepted")
	}
	s.exclude(4) // the emitter
	s.arm(t0)
	// 0: on time once; 1: on time twice (a duplicate); 2: late; 3: never.
	s.arrive(0, t0.Add(2*time.Millisecond))
	s.arrive(1, t0.Add(3*time.Millisecond))
	s.arrive(1, t0.Add(4*time.Millisecond))
	s.arrive(2, t0.Add(2*time.Second))
	if s.arrive(4, t0) {
		t.Fatal("the excluded socket's arrival was accepted")
	}
	if s.arrive(5, t0) || s.arrive(-1, t0) {
		t.Fatal("out-of-range slot accepted")
	}
	if s.wait(10 * time.Millisecond) {
		t.Fatal("wait succeeded with a delivery missing")
	}
	var d Deliveries
	lat := NewLatency()
	s.account(&d, time.Second, lat, nil)
	want := Deliveries{Expected: 4, OnTime: 2, Lost: 2, Late: 1, Duplicates: 1}
	if d != want {
		t.Fatalf("deliveries %+v, want %+v", d, want)
	}
	if sm := lat.Summary(); sm.Count != 2 || sm.Max != 3 {
		t.Fatalf("latencies %+v", sm)
	}
	if _, ok := s.last(); ok {
		t.Fatal("last() with a delivery missing")
	}
	s.arrive(3, t0.Add(5*time.Millisecond))
	if !s.wait(time.Second) {
		t.Fatal("wait did not end once every delivery arrived")
	}
	if l, ok := s.last(); !ok || l != 2*time.Second {
		t.Fatalf("last() = %v, %v", l, ok)
	}
}

func TestStageFilterAndUnarmed(t *testing.T) {
	var d Deliveries
	newStage(3).account(&d, time.Second, nil, nil) // never armed: expects nothing
	if d != (Deliveries{}) {
		t.Fatalf("unarmed stage counted %+v", d)
	}
	var nilStage *stage
	if nilStage.arrive(0, time.Now()) {
		t.Fatal("nil stage accepted an arrival")
	}
	s := newStage(2)
	t0 := time.Now()
	s.arm(t0)
	s.arrive(0, t0.Add(time.Millisecond))
	s.arrive(1, t0.Add(9*time.Millisecond))
	lat := NewLatency()
	s.account(&d, time.Second, lat, func(i int) bool { return i == 0 })
	if sm := lat.Summary(); sm.Count != 1 || sm.Max != 1 || d.OnTime != 2 {
		t.Fatalf("filtered latencies %+v, deliveries %+v", sm, d)
	}
	empty := newStage(1)
	empty.exclude(0)
	empty.arm(t0)
	if !empty.wait(time.Millisecond) {
		t.Fatal("a stage expecting nothing is done at once")
	}
}
