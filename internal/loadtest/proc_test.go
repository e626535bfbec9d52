package loadtest

import (
	"os"
	"testing"
	"time"
)

func TestParseVmRSS(t *testing.T) {
	status := []byte("Name:\tswitchboard\nVmPeak:\t  900000 kB\nVmRSS:\t   53372 kB\nThreads:\t9\n")
	if v, err := parseVmRSS(status); err != nil || v != 53372 {
		t.Fatalf("got %d, %v", v, err)
	}
	if _, err := parseVmRSS([]byte("Name:\tx\n")); err == nil {
		t.Fatal("missing VmRSS accepted")
	}
	if _, err := parseVmRSS([]byte("VmRSS:\t12 MB\n")); err == nil {
		t.Fatal("unexpected unit accepted")
	}
}

func TestParseStatCPU(t *testing.T) {
	// The command name may contain spaces and parentheses; utime (14) is
	// 250 ticks and stime (15) 150 ticks: 4 s at USER_HZ 100.
	stat := []byte("8104 (sw (x) y) S 1 8104 8104 0 -1 4194560 1234 0 0 0 250 150 0 0 20 0 9 0 3000 900000 13000 18446744073709551615")
	if v, err := parseStatCPU(stat); err != nil || v != 4*time.Second {
		t.Fatalf("got %v, %v", v, err)
	}
	if _, err := parseStatCPU([]byte("1 (x) S 1 2")); err == nil {
		t.Fatal("short stat accepted")
	}
}

func TestReadProcSelf(t *testing.T) {
	s, err := ReadProc(0)
	if err != nil {
		t.Fatal(err)
	}
	if s.RSSKiB <= 0 {
		t.Fatalf("RSS %d", s.RSSKiB)
	}
	if _, err := ReadProc(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}

func TestRaiseNoFile(t *testing.T) {
	n, err := RaiseNoFile()
	if err != nil || n == 0 {
		t.Fatalf("got %d, %v", n, err)
	}
}
