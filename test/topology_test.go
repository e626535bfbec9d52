package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The topology tests run the deployment of deploy/local-cluster.sh — Redis
// with AOF, three gateway processes, nginx in front, all on 127.0.0.1 from
// the Debian packages — and drive it through nginx with the npm
// socket.io-client (test/topology/*.js, which use the client installed in
// test/interop/node_modules). They need node, redis-server and nginx.

const topologyDir = "topology"

// localCluster is one `deploy/local-cluster.sh up` in a temporary work dir,
// on free loopback ports.
type localCluster struct {
	t     *testing.T
	root  string // removed at cleanup
	dir   string // SB_LOCAL_DIR
	env   []string
	state map[string]string
}

// startLocalCluster runs `local-cluster.sh up` with the test secret and the
// given SWITCHBOARD_* settings; `down` runs at cleanup.
func startLocalCluster(t *testing.T, settings ...string) *localCluster {
	t.Helper()
	for _, tool := range []string{"redis-server", "redis-cli", "nginx", "curl", "flock", "setsid"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the topology tests need %s on PATH (Debian: apt-get install -y redis-server nginx curl util-linux): %v", tool, err)
		}
	}
	bin := os.Getenv("SWITCHBOARD_TEST_BIN") // a binary built elsewhere, for experiments
	if bin == "" {
		bin = binary(t)
	}
	// Not t.TempDir(): that is 0700, and nginx's workers (nobody, when the
	// tests run as root) must be able to reach their temp dirs inside it.
	root, err := os.MkdirTemp("", "switchboard-topology-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	c := &localCluster{t: t, root: root, dir: filepath.Join(root, "cluster")}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SWITCHBOARD_") || strings.HasPrefix(kv, "SB_LOCAL_") {
			continue
		}
		c.env = append(c.env, kv)
	}
	c.env = append(c.env,
		"SWITCHBOARD_BIN="+bin,
		"SB_LOCAL_DIR="+c.dir,
		"SB_LOCAL_NODES=3",
		"SB_LOCAL_NODE_PORT="+strconv.Itoa(freePortRun(t, 3)),
		"SB_LOCAL_REDIS_PORT="+strconv.Itoa(freePortRun(t, 1)),
		"SB_LOCAL_NGINX_PORT="+strconv.Itoa(freePortRun(t, 1)),
		"SB_LOCAL_WAIT=30",
		"SWITCHBOARD_JWT_SECRET="+testSecret,
		"SWITCHBOARD_LOG_LEVEL=info",
	)
	c.env = append(c.env, settings...)
	t.Cleanup(c.down)
	out, err := c.script(90*time.Second, "up")
	if err != nil {
		t.Fatalf("local-cluster.sh up: %v\n%s\n%s", err, out, c.logTails())
	}
	c.reload()
	for _, k := range []string{"NGINX_URL", "REDIS_URL", "NODES", "NODE_1_URL", "NODE_2_URL", "NODE_3_URL", "NODE_1_PID", "NGINX_PID", "REDIS_PID"} {
		if c.state[k] == "" {
			t.Fatalf("state file has no %s:\n%v", k, c.state)
		}
	}
	if out, err := c.script(20*time.Second, "status"); err != nil {
		t.Fatalf("local-cluster.sh status after up: %v\n%s", err, out)
	}
	return c
}

// freePortRun returns the first of n consecutive free loopback ports
// (local-cluster.sh puts node k on NODE_PORT+k-1). Candidates are drawn
// below the ephemeral range (32768+), where outgoing connections do not
// take ports between the check and the start.
func freePortRun(t *testing.T, n int) int {
	t.Helper()
	for attempt := 0; attempt < 200; attempt++ {
		base := 20000 + rand.IntN(12000-n)
		var ls []net.Listener
		ok := true
		for i := 0; i < n; i++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+i))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no run of %d free ports found", n)
	return 0
}

// script runs deploy/local-cluster.sh with the cluster's environment,
// bounded by timeout.
func (c *localCluster) script(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	script := "../deploy/local-cluster.sh"
	if s := os.Getenv("SWITCHBOARD_TEST_LOCAL_CLUSTER"); s != "" {
		script = s // a modified copy of deploy/, for experiments
	}
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
	cmd.Env = c.env
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v: %w", timeout, err)
	}
	return string(out), err
}

// reload reads the state file (KEY=VALUE lines).
func (c *localCluster) reload() {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, "state.env"))
	if err != nil {
		c.t.Fatal(err)
	}
	c.state = map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && k != "" && !strings.HasPrefix(k, "#") {
			c.state[k] = v
		}
	}
}

func (c *localCluster) nginxURL() string { return c.state["NGINX_URL"] }

func (c *localCluster) nodeURLs() []string {
	n, _ := strconv.Atoi(c.state["NODES"])
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, c.state[fmt.Sprintf("NODE_%d_URL", i)])
	}
	return out
}

// redisAddr is host:port of the cluster's Redis.
func (c *localCluster) redisAddr() string { return "127.0.0.1:" + c.state["REDIS_PORT"] }

// rssKiB reads VmRSS of node n (1-based) from /proc.
func (c *localCluster) rssKiB(n int) int64 {
	b, err := os.ReadFile("/proc/" + c.state[fmt.Sprintf("NODE_%d_PID", n)] + "/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return -1
}

func (c *localCluster) logTails() string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(c.dir, "logs", "*"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "--- %s (last lines)\n%s\n", filepath.Base(f), lastLines(string(data), 25))
	}
	return b.String()
}

// down stops the cluster; after a failure the work dir (logs, nginx access
// and error logs, Redis AOF) is kept and its path logged.
func (c *localCluster) down() {
	keep := c.t.Failed()
	if keep {
		c.t.Logf("local cluster logs:\n%s", c.logTails())
		c.env = append(c.env, "SB_LOCAL_KEEP=1")
	}
	if out, err := c.script(60*time.Second, "down"); err != nil {
		c.t.Errorf("local-cluster.sh down: %v\n%s", err, out)
	}
	if keep {
		c.t.Logf("work dir kept for inspection: %s", c.dir)
		return
	}
	_ = os.RemoveAll(c.root)
}

// memberTokens writes {"members": {user: {device: jwt}}} for the scripts.
func memberTokens(t *testing.T, devices map[string][]string) string {
	t.Helper()
	members := map[string]map[string]string{}
	for u, ds := range devices {
		members[u] = map[string]string{}
		for _, d := range ds {
			members[u][d] = token(t, u, d, "Name of "+u)
		}
	}
	b, err := json.Marshal(map[string]any{"members": members})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTopologyNginx drives the flows through nginx in front of three nodes
// with the npm socket.io-client, each user's two devices placed on
// different nodes (the script picks sb_affinity keys that nginx hashes to
// the nodes it wants, and checks each node's connection gauge): once over
// long-polling with upgrade to websocket, once over websocket only.
func TestTopologyNginx(t *testing.T) {
	nodeBin := requireNode(t)
	ensureInteropModules(t)
	const grace = time.Second
	c := startLocalCluster(t,
		"SWITCHBOARD_PRESENCE_GRACE="+grace.String(),
		"SWITCHBOARD_DRAIN_TIMEOUT=4s",
	)
	t.Logf("cluster up: nginx %s, nodes %v, redis %s", c.nginxURL(), c.nodeURLs(), c.state["REDIS_URL"])

	for _, mode := range []struct{ name, transports string }{
		{"polling-upgrade", "polling,websocket"},
		{"websocket", "websocket"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			prefix := strings.ReplaceAll(mode.name, "-", "")
			devices := map[string][]string{}
			for _, u := range []string{"alice", "bob", "watcher", "hank"} {
				devices[prefix+"-"+u] = []string{"phone", "desktop"}
			}
			tokens := memberTokens(t, devices)
			ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, nodeBin, "flow.js", "--url", c.nginxURL(), "--nodes", strings.Join(c.nodeURLs(), ","),
				"--tokens", tokens, "--transports", mode.transports, "--prefix", prefix,
				"--grace-ms", strconv.FormatInt(grace.Milliseconds(), 10))
			cmd.Dir = topologyDir
			cmd.Env = append(os.Environ(), "NO_COLOR=1")
			cmd.WaitDelay = 5 * time.Second
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("flow.js (%s) did not finish in time:\n%s", mode.name, stderr.String())
			}
			if err != nil {
				t.Fatalf("flow.js (%s) failed: %v\n%s", mode.name, err, stderr.String())
			}
			var res struct {
				OK         bool     `json:"ok"`
				Checks     int      `json:"checks"`
				Transports []string `json:"transports"`
				Placement  []struct {
					Label     string `json:"label"`
					Node      int    `json:"node"`
					Transport string `json:"transport"`
					Initial   string `json:"initial"`
					Upgrades  int    `json:"upgrades"`
				} `json:"placement"`
			}
			if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &res); err != nil || !res.OK {
				t.Fatalf("flow.js (%s) summary %q: %v\n%s", mode.name, stdout.String(), err, stderr.String())
			}
			nodes := map[int]int{}
			for _, p := range res.Placement {
				nodes[p.Node]++
				if p.Transport != "websocket" || (mode.transports != "websocket") != (p.Initial == "polling" && p.Upgrades == 1) {
					t.Errorf("%s: transport %s, started on %s, %d upgrades", p.Label, p.Transport, p.Initial, p.Upgrades)
				}
			}
			if len(nodes) != 3 {
				t.Errorf("devices were not spread over the three nodes: %v", nodes)
			}
			t.Logf("%s: %d checks passed through nginx; devices per node %v", mode.name, res.Checks, nodes)
			if testing.Verbose() {
				t.Logf("flow.js:\n%s", stderr.String())
			}
		})
	}
	// Every node served Socket.IO traffic through nginx.
	access, err := os.ReadFile(filepath.Join(c.dir, "logs", "nginx-access.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range c.nodeURLs() {
		if !bytes.Contains(access, []byte("upstream="+strings.TrimPrefix(u, "http://"))) {
			t.Errorf("nginx access log shows no request to %s", u)
		}
	}
}
