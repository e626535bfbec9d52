// Package redislog routes go-redis's own log lines (dial failures, pool
// notices) into the node's zerolog JSON logger instead of the library's
// plain stderr lines, at most one line per interval so a Redis outage does
// not flood the log: the lines in between are counted and reported with the
// next one.
package redislog

import (
	"context"
	"fmt"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// Logger implements go-redis's logging interface.
type Logger struct {
	log      zerolog.Logger
	interval time.Duration
	now      func() time.Time

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// New returns a Logger writing to log at warn level, one line per interval.
func New(log zerolog.Logger, interval time.Duration) *Logger {
	return &Logger{log: log, interval: interval, now: time.Now}
}

// Printf implements go-redis's internal.Logging.
func (l *Logger) Printf(_ context.Context, format string, v ...any) {
	l.mu.Lock()
	now := l.now()
	if !l.last.IsZero() && now.Sub(l.last) < l.interval {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	l.last = now
	suppressed := l.suppressed
	l.suppressed = 0
	l.mu.Unlock()
	l.log.Warn().Str("component", "go-redis").Int("suppressed", suppressed).Msg(fmt.Sprintf(format, v...))
}

// Install makes go-redis log through l. go-redis keeps one logger per
// process, so the last Install wins.
func Install(l *Logger) { goredis.SetLogger(l) }
