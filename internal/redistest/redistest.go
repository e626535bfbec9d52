// Package redistest starts real redis-server processes on loopback for tests:
// a single server (optionally with AOF, restartable) or a three-master Redis
// Cluster. Tests that need Redis call Start; when redis-server is not on PATH
// the test fails with a message that says how to install it, unless
// SWITCHBOARD_SKIP_REDIS=1 is set for a quick local run.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/internal/rawio"
	"github.com/switchboard/switchboard/internal/redislog"
)

// Server is one redis-server process on 127.0.0.1.
type Server struct {
	t    testing.TB
	Port int
	Dir  string
	args []string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// URL is the redis:// URL of the server.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Client returns a new client for the server, closed at test end.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), Dialer: Dialer()})
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Dialer dials Redis as cmd/switchboard does: TCP connections whose reads
// and writes are raw system calls (internal/rawio).
func Dialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	return rawio.Dialer(&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 5 * time.Minute})
}

// Option changes how a server starts.
type Option func(*[]string)

// WithAOF turns on the append-only file (fsync every second).
func WithAOF() Option {
	return func(a *[]string) { *a = append(*a, "--appendonly", "yes", "--appendfsync", "everysec") }
}

// WithArgs passes raw redis-server arguments.
func WithArgs(args ...string) Option {
	return func(a *[]string) { *a = append(*a, args...) }
}

// Need fails (or skips, with SWITCHBOARD_SKIP_REDIS=1) the test when
// redis-server is not installed.
func Need(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("SWITCHBOARD_SKIP_REDIS") == "1" {
			t.Skip("redis-server not installed and SWITCHBOARD_SKIP_REDIS=1")
		}
		t.Fatal("redis-server is not on PATH: apt-get install -y redis-server (or run .ci/run)")
	}
}

// quietOnce silences go-redis's own log lines (a test that stops Redis
// would print one per failed dial) before the first client exists.
var quietOnce sync.Once

func quiet() {
	quietOnce.Do(func() { redislog.Install(redislog.New(zerolog.Nop(), time.Hour)) })
}

// Start runs a redis-server on a free loopback port until the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	Need(t)
	quiet()
	port := FreePort(t)
	for _, o := range opts {
		var a []string
		o(&a)
		if len(a) > 0 && a[0] == "--cluster-enabled" {
			port = freeClusterPort(t)
		}
	}
	s := &Server{t: t, Port: port, Dir: t.TempDir()}
	s.args = []string{"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--dir", s.Dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--loglevel", "warning"}
	for _, o := range opts {
		o(&s.args)
	}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command("redis-server", s.args...)
	cmd.Dir = s.Dir
	logf, err := os.OpenFile(filepath.Join(s.Dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.cmd = cmd
	go func() { _ = cmd.Wait(); _ = logf.Close() }()
	waitPing(s.t, s.Addr())
}

// Stop kills the server (SIGKILL) and waits for it to exit.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", s.Addr(), 50*time.Millisecond); err != nil {
			break
		} else {
			_ = c.Close()
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.cmd = nil
}

// Restart stops the server and starts it again on the same port and
// directory (with AOF on, the data survives).
func (s *Server) Restart() {
	s.Stop()
	s.start()
}

// Cluster is a Redis Cluster of three masters on loopback.
type Cluster struct {
	Nodes []*Server
}

// Addrs returns the seed addresses of the cluster.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr()
	}
	return out
}

// Client returns a cluster client, closed at test end.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), Dialer: Dialer()})
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// StartCluster starts three cluster-enabled servers and joins them with
// redis-cli --cluster create.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	Need(t)
	quiet()
	c := &Cluster{}
	for i := 0; i < 3; i++ {
		c.Nodes = append(c.Nodes, Start(t, WithArgs("--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")))
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command("redis-cli", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		ok := true
		for _, n := range c.Nodes {
			info, err := redis.NewClient(&redis.Options{Addr: n.Addr()}).ClusterInfo(ctx).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				ok = false
			}
		}
		if ok {
			return c
		}
		if ctx.Err() != nil {
			t.Fatal("redis cluster did not reach cluster_state:ok")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// freeClusterPort returns a free port whose cluster bus port (port+10000)
// is valid and free too.
func freeClusterPort(t testing.TB) int {
	t.Helper()
	for i := 0; i < 100; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if p+10000 > 65535 {
			continue
		}
		if bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000)); err == nil {
			bus.Close()
			return p
		}
	}
	t.Fatal("no free port pair for a cluster node")
	return 0
}

func waitPing(t testing.TB, addr string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(fmt.Errorf("redis at %s did not answer: %w", addr, err))
		}
		time.Sleep(25 * time.Millisecond)
	}
}
