package test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/state/memory"
)

// The interop tests drive an in-process node with the npm socket.io-client
// (test/interop/flows.js): the four flows of the events reference, every
// user on two devices, once over websocket and once over long-polling with
// upgrade. They need Node.js and npm; node_modules is installed with
// `npm ci` from the committed package-lock.json when it is missing.
// SWITCHBOARD_INTEROP_FLOWS=guest,presence runs only some flows.

const (
	interopDir     = "interop"
	interopGrace   = time.Second
	interopTimeout = 3 * time.Minute
)

// interopUsers are the users flows.js drives, each with both devices.
var interopUsers = []string{"alice", "bob", "carol", "dave", "erin", "frank", "gina", "hank", "watcher"}

var interopDevices = []string{"phone", "desktop"}

// liveLoops runs the node on the real clock with its background loops on
// (scheduled jobs every 50 ms, presence sweep, lease), and a short presence
// grace, as an external client sees a production node.
func liveLoops(grace time.Duration) envOption {
	return func(o *nodeOptions) {
		o.Clock = time.Now
		o.Store = memory.New(time.Now)
		o.Loops = true
		o.JobPoll = 50 * time.Millisecond
		o.Service.PresenceGrace = grace
		o.Gateway.PresenceGrace = grace
	}
}

// logTo sends the node's log (debug level) to w, to show with a failure.
func logTo(w *syncBuffer) envOption {
	return func(o *nodeOptions) {
		o.Logger = zerolog.New(w).Level(zerolog.DebugLevel)
	}
}

// syncBuffer is a bytes.Buffer safe for the node's concurrent writers; it
// prefixes each write (one log event) with the UTC time in milliseconds, as
// flows.js stamps its socket histories.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(time.Now().UTC().Format("15:04:05.000 "))
	return b.buf.Write(p)
}

// tail returns the last n lines written.
func (b *syncBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	lines := strings.Split(strings.TrimRight(b.buf.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func TestInteropNpmClient(t *testing.T) {
	nodeBin := requireNode(t)
	ensureInteropModules(t)
	for _, mode := range []string{"websocket", "polling"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			var serverLog syncBuffer
			e := newEnv(t, liveLoops(interopGrace), logTo(&serverLog))
			tokens := interopTokens(t)
			ctx, cancel := context.WithTimeout(t.Context(), interopTimeout)
			defer cancel()
			args := []string{"flows.js", "--url", e.URL, "--tokens", tokens, "--transport", mode,
				"--grace-ms", strconv.FormatInt(interopGrace.Milliseconds(), 10)}
			if f := os.Getenv("SWITCHBOARD_INTEROP_FLOWS"); f != "" {
				args = append(args, "--flows", f) // e.g. "guest,presence" while debugging
			}
			cmd := exec.CommandContext(ctx, nodeBin, args...)
			cmd.Dir = interopDir
			cmd.Env = append(os.Environ(), "NO_COLOR=1")
			cmd.WaitDelay = 5 * time.Second
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("flows.js (%s) did not finish within %s:\n%s", mode, interopTimeout, out)
			}
			if err != nil {
				t.Fatalf("flows.js (%s) failed: %v\n%s\n--- node log (last lines):\n%s%s", mode, err, out, serverLog.tail(150), lastFailure(out))
			}
			if testing.Verbose() {
				t.Logf("flows.js (%s):\n%s", mode, out)
			}
		})
	}
}

// The npm client answers the pings of the transport's own heartbeat (and of
// the engine's, for a session upgraded from polling) and stays connected
// across several intervals; one that stops answering is dropped.
func TestInteropNpmHeartbeat(t *testing.T) {
	nodeBin := requireNode(t)
	ensureInteropModules(t)
	var serverLog syncBuffer
	e := newEnv(t, liveLoops(interopGrace), logTo(&serverLog), func(o *nodeOptions) {
		o.PingInterval = 300 * time.Millisecond
		o.PingTimeout = 600 * time.Millisecond
	})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, "heartbeat.js", "--url", e.URL,
		"--token", token(t, "alice", "phone", "Alice"), "--pings", "4")
	cmd.Dir = interopDir
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("heartbeat.js failed: %v\n%s\n--- node log (last lines):\n%s", err, out, serverLog.tail(60))
	}
	if !strings.Contains(serverLog.tail(400), "ping timeout") {
		t.Errorf("the silent client was not closed for a ping timeout; node log:\n%s", serverLog.tail(60))
	}
	t.Logf("heartbeat.js:\n%s", out)
}

// requireNode returns the path of node; the tests fail (not skip) without
// it, since the npm client is part of the contract.
func requireNode(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("Node.js is required for the npm socket.io-client interop tests (test/interop): node is not on PATH: %v", err)
	}
	out, err := exec.Command(p, "--version").Output()
	if err != nil {
		t.Fatalf("node --version: %v", err)
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	major, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
	if major < 18 {
		t.Fatalf("Node.js 18 or newer is required for the interop tests (global fetch); found %s", out)
	}
	return p
}

// ensureInteropModules runs `npm ci` in test/interop when the pinned client
// is not installed, so `go test ./test/...` works on a fresh checkout.
func ensureInteropModules(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(interopDir, "node_modules", "socket.io-client", "package.json")); err == nil {
		return
	} else if !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("test/interop/node_modules is missing and npm is not on PATH to install it (run `npm ci` in test/interop): %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = interopDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in test/interop: %v\n%s", err, out)
	}
}

// interopTokens mints a member token for every user and device flows.js
// needs (HS256, the test secret), writes them to a file and returns its path.
func interopTokens(t *testing.T) string {
	t.Helper()
	members := map[string]map[string]string{}
	names := map[string]string{}
	for _, u := range interopUsers {
		names[u] = "Name of " + u
		members[u] = map[string]string{}
		for _, d := range interopDevices {
			members[u][d] = token(t, u, d, names[u])
		}
	}
	b, err := json.Marshal(map[string]any{"members": members, "names": names})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// lastFailure repeats the script's FAIL line at the end of the message.
func lastFailure(out []byte) string {
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "FAIL ") {
			return fmt.Sprintf("\n=> %s", l)
		}
	}
	return ""
}
