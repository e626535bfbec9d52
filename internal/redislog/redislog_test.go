package redislog

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestLoggerLimitsAndCounts(t *testing.T) {
	var buf bytes.Buffer
	l := New(zerolog.New(&buf), time.Second)
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return now }
	ctx := context.Background()
	l.Printf(ctx, "dial %s: refused", "127.0.0.1:1")
	for i := 0; i < 5; i++ {
		now = now.Add(100 * time.Millisecond)
		l.Printf(ctx, "dial %s: refused", "127.0.0.1:1")
	}
	now = now.Add(time.Second)
	l.Printf(ctx, "back")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %d: %q", len(lines), lines)
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	if first["message"] != "dial 127.0.0.1:1: refused" || first["level"] != "warn" || first["component"] != "go-redis" || first["suppressed"] != float64(0) {
		t.Fatalf("first line: %v", first)
	}
	if second["message"] != "back" || second["suppressed"] != float64(5) {
		t.Fatalf("second line: %v", second)
	}
}
