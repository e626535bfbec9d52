package test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/redistest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds cmd/switchboard once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "switchboard-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "switchboard")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/switchboard").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is one gateway process on 127.0.0.1.
type proc struct {
	t    *testing.T
	ID   string
	Port int
	// DebugPort serves the node's Go profiler, so that a failing test can
	// log what every goroutine of the node was doing.
	DebugPort int
	env       []string
	cmd       *exec.Cmd
	log       *bytes.Buffer
	mu        sync.Mutex
	done      chan struct{}
}

// URL of the node.
func (p *proc) URL() string { return "http://127.0.0.1:" + strconv.Itoa(p.Port) }

// cluster is redis plus gateway processes.
type cluster struct {
	t     *testing.T
	Redis *redistest.Server
	Nodes []*proc
	env   []string
}

// clusterEnv are the durations the multi-node tests run with: short, so
// reaping and grace happen within seconds.
var clusterEnv = []string{
	"SWITCHBOARD_JWT_SECRET=" + testSecret,
	"SWITCHBOARD_PRESENCE_GRACE=1s",
	"SWITCHBOARD_NODE_LEASE=3s",
	"SWITCHBOARD_NODE_REFRESH=500ms",
	"SWITCHBOARD_JOB_POLL=100ms",
	"SWITCHBOARD_SWEEP_INTERVAL=500ms",
	"SWITCHBOARD_PROBE_INTERVAL=1s",
	"SWITCHBOARD_REQUEST_TIMEOUT=2s",
	"SWITCHBOARD_DRAIN_TIMEOUT=4s",
	"SWITCHBOARD_LOG_LEVEL=info",
}

// startCluster starts n gateway processes against redisEnv (the variables
// naming the Redis deployment).
func startCluster(t *testing.T, n int, redisEnv ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, env: append(append([]string{}, clusterEnv...), redisEnv...)}
	for i := 1; i <= n; i++ {
		c.Nodes = append(c.Nodes, c.startReady(fmt.Sprintf("n%d", i)))
	}
	return c
}

// startReady starts a node on a free port and waits until it is ready. A
// port taken between choosing and binding it (other tests run processes
// too) is replaced by another.
func (c *cluster) startReady(id string) *proc {
	c.t.Helper()
	for attempt := 0; ; attempt++ {
		p := c.start(id, redistest.FreePort(c.t))
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if ready(p.URL()) {
				return p
			}
			select {
			case <-p.done:
				if attempt < 3 && strings.Contains(p.Logs(), "address already in use") {
					deadline = time.Time{}
					continue
				}
				c.t.Fatalf("node %s exited: %s", id, p.Logs())
			case <-time.After(50 * time.Millisecond):
			}
		}
		if !deadline.IsZero() {
			c.t.Fatalf("node %s not ready within 15s; logs:\n%s", id, p.Logs())
		}
	}
}

func (c *cluster) start(id string, port int) *proc {
	c.t.Helper()
	p := &proc{t: c.t, ID: id, Port: port, DebugPort: redistest.FreePort(c.t), log: &bytes.Buffer{}, done: make(chan struct{})}
	p.env = append(os.Environ(), c.env...)
	p.env = append(p.env, "SWITCHBOARD_NODE_ID="+id, "SWITCHBOARD_ADDR=127.0.0.1:"+strconv.Itoa(port),
		"SWITCHBOARD_DEBUG_ADDR=127.0.0.1:"+strconv.Itoa(p.DebugPort))
	p.run()
	c.t.Cleanup(func() { p.kill() })
	return p
}

func (p *proc) run() {
	p.cmd = exec.Command(binary(p.t), "--node-id", p.ID)
	p.cmd.Env = p.env
	p.cmd.Stdout = &lockedWriter{mu: &p.mu, w: p.log}
	p.cmd.Stderr = &lockedWriter{mu: &p.mu, w: p.log}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(p.cmd, p.done)
}

// Logs returns what the process printed.
func (p *proc) Logs() string { p.mu.Lock(); defer p.mu.Unlock(); return p.log.String() }

func (p *proc) waitReady(timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ready(p.URL()) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("node %s not ready within %v; logs:\n%s", p.ID, timeout, p.Logs())
}

func ready(url string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(url + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// kill9 kills the process as a crash would.
func (p *proc) kill9() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// term sends SIGTERM and waits for the exit, reporting how long the drain
// took.
func (p *proc) term(timeout time.Duration) time.Duration {
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Errorf("node %s did not exit within %v after SIGTERM", p.ID, timeout)
		p.kill9()
	}
	return time.Since(start)
}

// restart starts the process again on the same port.
func (p *proc) restart() {
	p.run()
	p.waitReady(15 * time.Second)
}

func (p *proc) kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
	}
	if p.t.Failed() {
		p.t.Logf("logs of %s:\n%s", p.ID, lastLines(p.Logs(), 40))
	}
}

// dumpOnFailure logs every node's goroutines if t fails. Call it after
// dialling the test's clients: cleanups run last-registered first, so the
// dump shows the nodes while those clients are still connected.
func (c *cluster) dumpOnFailure(t *testing.T) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, p := range c.Nodes {
			t.Logf("goroutines of %s:\n%s", p.ID, firstLines(p.goroutines(), 400))
		}
		t.Logf("client library goroutines of the test process:\n%s", firstLines(clientGoroutines(), 600))
	})
}

// clientGoroutines returns the test process's goroutine groups that run
// code of the socket.io client library: a client that stops delivering
// events while it still counts itself connected shows where it is stuck.
func clientGoroutines() string {
	var b bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
	var out []string
	for _, g := range strings.Split(b.String(), "\n\n") {
		if strings.Contains(g, "socket.io/clients/") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// goroutines returns the node's goroutine profile (stacks grouped), or why
// it could not be read.
func (p *proc) goroutines() string {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://127.0.0.1:" + strconv.Itoa(p.DebugPort) + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func firstLines(s string, n int) string {
	lines := bytes.Split([]byte(s), []byte("\n"))
	if len(lines) > n {
		lines = lines[:n]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

func lastLines(s string, n int) string {
	lines := bytes.Split([]byte(s), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// eventually polls f until it is true or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if f() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", timeout, what)
}

var _ = context.Background
