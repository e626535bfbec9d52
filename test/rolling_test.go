package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/state"
	stateredis "github.com/switchboard/switchboard/state/redis"
)

// TestRollingRestart is the rolling-restart drill: ~60 npm socket.io-client
// sockets with reconnection on (test/topology/drill.js) send acked
// presence:heartbeat events once a second while each of the three nodes of
// a local-cluster.sh deployment is restarted in turn with SIGTERM (drain:
// transports closed over half the drain timeout, new handshakes answered
// 503 so nginx retries them on another node) and started again. It
// measures and asserts:
//
//   - acks lost = 0: every heartbeat sent gets an answer; one whose ack was
//     cut by the transport close is sent again after the reconnect and
//     counted as cut; `unavailable` is an answer. And no ack of an event
//     the servers handled is dropped: the heartbeats each node counted in
//     switchboard_events_total (scraped until it exits) must not exceed the
//     answers the clients received;
//   - presence flaps = 0: no presence:user_disconnected for any user, since
//     every user stays online (reconnects land within the 5 s grace, and the
//     multi-device users keep a device on another node);
//   - an instant call (alice and bob joined with two devices each on
//     different nodes, carol invited) survives in Redis with exactly the live
//     sockets in it, and carol can still accept it;
//   - an admission queue with a waiting guest survives, and the host can
//     still admit the guest;
//   - every socket reconnects; reconnect time p50/p99 (disconnect to
//     connect, per client) is reported for the clients behind nginx and for
//     the ones pinned to a node;
//   - Redis presence holds exactly the sockets the nodes hold (no ghost
//     connection keeping a user online).
//
// Reproduce: go test -count=1 -run TestRollingRestart -v ./test/
// Against a modified deployment or binary (experiments):
// SWITCHBOARD_TEST_LOCAL_CLUSTER=/tmp/copy/deploy/local-cluster.sh and
// SWITCHBOARD_TEST_BIN=/path/to/switchboard. docs/operating.md has the
// measured figures.
func TestRollingRestart(t *testing.T) {
	nodeBin := requireNode(t)
	ensureInteropModules(t)
	const (
		grace  = 5 * time.Second
		drain  = 10 * time.Second
		fleet  = 45
		settle = 3 * time.Second
	)
	// SWITCHBOARD_DRILL_HEARTBEAT=100ms makes the race between an event in
	// flight and the drain's transport close frequent (for diagnosis).
	hbPeriod := time.Second
	if v, err := time.ParseDuration(os.Getenv("SWITCHBOARD_DRILL_HEARTBEAT")); err == nil && v > 0 {
		hbPeriod = v
	}
	c := startLocalCluster(t,
		"SWITCHBOARD_PRESENCE_GRACE="+grace.String(),
		"SWITCHBOARD_DRAIN_TIMEOUT="+drain.String(),
	)
	var idleRSS []int64
	for n := 1; n <= 3; n++ {
		idleRSS = append(idleRSS, c.rssKiB(n))
	}

	devices := map[string][]string{
		"watcher": {"w1", "w2", "w3"},
		"alice":   {"phone", "desktop"}, "bob": {"phone", "desktop"}, "hana": {"phone", "desktop"},
		"carol": {"phone"}, "p0": {"a", "b"}, "p1": {"a", "b"}, "p2": {"a", "b"},
	}
	for i := 0; i < fleet; i++ {
		devices[fmt.Sprintf("f%02d", i)] = []string{"d"}
	}
	d := startDrill(t, nodeBin, "--url", c.nginxURL(), "--nodes", strings.Join(c.nodeURLs(), ","),
		"--tokens", memberTokens(t, devices), "--fleet", strconv.Itoa(fleet), "--polling-every", "4",
		"--hb-ms", strconv.FormatInt(hbPeriod.Milliseconds(), 10), "--ack-timeout-ms", "8000",
		"--grace-ms", strconv.FormatInt(grace.Milliseconds(), 10))

	var ready struct {
		CallID    string `json:"call_id"`
		MeetingID string `json:"meeting_id"`
		SessionID string `json:"session_id"`
		Sockets   int    `json:"sockets"`
		ViaNginx  int    `json:"via_nginx"`
		Polling   int    `json:"polling"`
		PerNode   []int  `json:"per_node"`
	}
	d.expect("ready", 60*time.Second, &ready)
	t.Logf("drill ready: %d sockets (%d through nginx, %d of them polling+upgrade), per node %v; call %s, meeting %s, guest %s",
		ready.Sockets, ready.ViaNginx, ready.Polling, ready.PerNode, ready.CallID, ready.MeetingID, ready.SessionID)
	for n := 1; n <= 3; n++ {
		rss := c.rssKiB(n)
		conns := metricValue(t, c.nodeURLs()[n-1], `switchboard_connections{namespace="/"}`)
		t.Logf("node %d: RSS %d KiB idle after start, %d KiB holding %.0f member sockets", n, idleRSS[n-1], rss, conns)
	}

	store := stateredis.New(goredis.NewClient(&goredis.Options{Addr: c.redisAddr()}), stateredis.Options{CloseClient: true})
	t.Cleanup(func() { _ = store.Close() })
	ctx := context.Background()
	if m, err := store.Meetings().Get(ctx, ready.CallID); err != nil || !m.Joined("alice") || !m.Joined("bob") {
		t.Fatalf("call before the drill: %+v %v", m, err)
	}

	// The drill: each node in turn, SIGTERM (drain) and start again.
	drillStart := time.Now()
	stoppedRe := regexp.MustCompile(`stopped in (\d+)s, ready in (\d+)s`)
	var handledBefore [3]float64 // heartbeats handled by each node's first process
	for n := 1; n <= 3; n++ {
		t0 := time.Now()
		stop := make(chan struct{})
		scraped := make(chan float64, 1)
		go func(url string) { scraped <- scrapeHeartbeatsUntilExit(url, stop) }(c.nodeURLs()[n-1])
		out, err := c.script(drain+40*time.Second, "restart-node", strconv.Itoa(n))
		close(stop)
		handledBefore[n-1] = <-scraped
		if err != nil {
			t.Fatalf("restart-node %d: %v\n%s", n, err, out)
		}
		c.reload()
		m := stoppedRe.FindStringSubmatch(out)
		t.Logf("restart-node %d took %v (drain %ss, start %ss)", n, time.Since(t0).Round(100*time.Millisecond), at(m, 1), at(m, 2))
		time.Sleep(settle)
	}
	// Past the presence grace of the last reconnects: a flap would have been
	// broadcast by now.
	time.Sleep(grace + time.Second)
	t.Logf("drill took %v", time.Since(drillStart).Round(100*time.Millisecond))

	var st struct {
		IDs struct {
			Alice   []string            `json:"alice"`
			Bob     []string            `json:"bob"`
			Hana    []string            `json:"hana"`
			Guest   bool                `json:"guest"`
			GuestID string              `json:"guest_id"`
			Conns   map[string][]string `json:"conns"`
		} `json:"ids"`
		NotConnected []json.RawMessage `json:"not_connected"`
	}
	d.command("status", "status", 30*time.Second, &st)
	if len(st.NotConnected) > 0 {
		t.Errorf("sockets not connected after the drill: %s", st.NotConnected)
	}

	// Redis holds exactly the sockets the nodes hold: no connection of a
	// drained node left behind (a ghost would keep its user online after
	// they leave), and every live client socket is registered.
	rc := goredis.NewClient(&goredis.Options{Addr: c.redisAddr()})
	t.Cleanup(func() { _ = rc.Close() })
	var live, inPresence, inNodes []string
	perUser := map[string][]string{}
	for user, ids := range st.IDs.Conns {
		live = append(live, ids...)
		fields, err := rc.HKeys(ctx, "sb:{u:"+user+"}:presence").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fields {
			if id, ok := strings.CutPrefix(f, "c:"); ok {
				inPresence = append(inPresence, id)
				perUser[user] = append(perUser[user], id)
			}
		}
	}
	nodeIndex := map[string]string{} // conn id -> node index key
	for n := 1; n <= 3; n++ {
		key := "sb:{node:" + c.state[fmt.Sprintf("NODE_%d_ID", n)] + "}:conns"
		ids, err := rc.HKeys(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		inNodes = append(inNodes, ids...)
		for _, id := range ids {
			nodeIndex[id] = key
		}
	}
	var held, heldGuests float64
	for _, u := range c.nodeURLs() {
		held += metricValue(t, u, `switchboard_connections{namespace="/"}`)
		heldGuests += metricValue(t, u, `switchboard_connections{namespace="/external"}`)
	}
	t.Logf("after the drill: %d member sockets connected at the clients, %.0f held by the nodes (%.0f abandoned by their clients, left to the ping timeout), %d member connections in Redis presence, %d member and guest connections in the node indexes (%.0f held)",
		len(live), held, held-float64(len(live)), len(inPresence), len(inNodes), held+heldGuests)
	// Presence must match the nodes exactly: a connection in presence that
	// no node holds keeps its user online (and suppresses their offline
	// broadcast) until it expires.
	var ghosts, orphans []string
	for user, ids := range perUser {
		for _, id := range minus(ids, st.IDs.Conns[user]) {
			entry, _ := rc.HGet(ctx, "sb:{u:"+user+"}:presence", "c:"+id).Result()
			ghosts = append(ghosts, fmt.Sprintf("%s: %s %s (in a node index: %v)", user, id, entry, nodeIndex[id] != ""))
		}
	}
	for id, key := range nodeIndex {
		if !slices.Contains(inPresence, id) && id != st.IDs.GuestID {
			entry, _ := rc.HGet(ctx, key, id).Result()
			orphans = append(orphans, fmt.Sprintf("%s: %s %s", key, id, entry))
		}
	}
	if float64(len(inPresence)) != held {
		t.Errorf("Redis presence holds %d member connections, the nodes hold %.0f sockets; presence connections that are not live client sockets (abandoned sockets the nodes still hold are expected among them):\n%s",
			len(inPresence), held, strings.Join(ghosts, "\n"))
	}
	if float64(len(inNodes)) != held+heldGuests {
		// Not a failure: an index entry without a presence entry is
		// harmless (reaping skips unknown connections, Deregister and the
		// key's TTL remove it), but it is worth knowing.
		t.Logf("node connection indexes hold %d entries for %.0f sockets; entries without a presence entry:\n%s",
			len(inNodes), held+heldGuests, strings.Join(orphans, "\n"))
	}
	if m := minus(live, inPresence); len(m) > 0 {
		t.Errorf("live sockets missing from Redis presence: %v", m)
	}

	// The call and the queue survived in Redis, with exactly the live sockets.
	call, err := store.Meetings().Get(ctx, ready.CallID)
	if err != nil {
		t.Errorf("the call is gone from Redis after the rolling restart: %v", err)
	} else {
		if call.Status != state.StatusLive || call.Participant("carol") == nil || call.Participant("carol").Status != state.PartInvited {
			t.Errorf("call after the drill: status %s, carol %+v", call.Status, call.Participant("carol"))
		}
		for user, ids := range map[string][]string{"alice": st.IDs.Alice, "bob": st.IDs.Bob} {
			if !sameSet(call.Conns[user], ids) {
				t.Errorf("call connections of %s in Redis %v, live sockets in the call %v", user, call.Conns[user], ids)
			}
		}
	}
	meeting, err := store.Meetings().Get(ctx, ready.MeetingID)
	if err != nil || !sameSet(meeting.Conns["hana"], st.IDs.Hana) {
		t.Errorf("meeting after the drill: %v; hana's connections %v, live %v", err, connsOf(meeting, "hana"), st.IDs.Hana)
	}
	q, err := store.Guests().Queue(ctx, ready.MeetingID)
	if err != nil || len(q) != 1 || q[0].ID != ready.SessionID || q[0].Status != state.SessionWaiting || !st.IDs.Guest {
		t.Errorf("admission queue after the drill: %v %v (guest connected: %v)", sessions(q), err, st.IDs.Guest)
	}

	var res drillResult
	d.command("finish", "result", 60*time.Second, &res)
	res.report(t)

	// Heartbeats the servers handled against answers the clients received:
	// the difference is answers produced and then lost with a drained
	// transport. A lower bound: a draining node is scraped every 20 ms
	// until it stops answering, so its last few ms may be missed.
	handled := 0.0
	for n := 1; n <= 3; n++ {
		after := scrapeHeartbeats(c.nodeURLs()[n-1])
		t.Logf("node %d handled %.0f heartbeats before its restart and %.0f after", n, handledBefore[n-1], after)
		handled += handledBefore[n-1] + after
	}
	answered := res.Acks.OK + sumCodes(res.Acks.Codes)
	t.Logf("heartbeat attempts sent %d, handled by the servers >= %.0f, answers received %d: answers lost in the drain >= %.0f (acks cut %d)",
		res.Acks.Attempts, handled, answered, handled-float64(answered), res.Acks.Cut)
	if res.Acks.Timeouts == 0 && handled > float64(answered) {
		t.Errorf("the servers handled at least %.0f heartbeats and answered them, the clients received %d answers: %.0f acks of handled events were dropped when the drain closed their transport (%d acks cut in all)",
			handled, answered, handled-float64(answered), res.Acks.Cut)
	}

	// Correctness.
	if len(res.NotConnected) > 0 {
		t.Errorf("sockets not connected at the end: %s", res.NotConnected)
	}
	if res.Acks.Lost != 0 || res.Acks.Timeouts != 0 {
		t.Errorf("acks lost: %d (timeouts while connected %d, unanswered at the end %d); lost: %s",
			res.Acks.Lost, res.Acks.Timeouts, res.Acks.Unanswered, res.Acks.LostLog)
	}
	if res.Acks.OK+sumCodes(res.Acks.Codes) != res.Acks.Events {
		t.Errorf("heartbeats: %d events, %d ok, codes %v", res.Acks.Events, res.Acks.OK, res.Acks.Codes)
	}
	if res.Rejoin.Ok != res.Rejoin.Sent {
		t.Errorf("re-registrations after reconnect: %+v", res.Rejoin)
	}
	if res.Flaps != 0 {
		t.Errorf("presence flaps: %d presence:user_disconnected for users that stayed online: %s\nconnection histories (ms after %s): %s",
			res.Flaps, res.Presence, time.UnixMilli(res.T0).UTC().Format(time.RFC3339Nano), res.FlapDetails)
	}
	if res.Disconnects.ClientsDisconnected != res.Sockets {
		t.Errorf("only %d of %d sockets were disconnected by the drill (every node was restarted)", res.Disconnects.ClientsDisconnected, res.Sockets)
	}
	var ca struct {
		Success bool `json:"success"`
	}
	if err := json.Unmarshal(res.Final.CarolAccept, &ca); err != nil || !ca.Success {
		t.Errorf("carol's call:accept after the drill: %s", res.Final.CarolAccept)
	}
	for who, n := range res.Final.CallAcceptedCounts {
		if n != 1 {
			t.Errorf("%s received call:accepted (carol) %d times", who, n)
		}
	}
	if len(res.Final.CallAcceptedCounts) != 4 {
		t.Errorf("call:accepted counts %v", res.Final.CallAcceptedCounts)
	}
	var ad struct {
		Success bool `json:"success"`
	}
	if err := json.Unmarshal(res.Final.Admit, &ad); err != nil || !ad.Success {
		t.Errorf("hana's meeting:admit_guest after the drill: %s", res.Final.Admit)
	}
	for who, n := range res.Final.AdmissionCounts {
		if n != 1 {
			t.Errorf("%s received meeting:admission_status (admitted) %d times", who, n)
		}
	}
}

type percentiles struct {
	N   int  `json:"n"`
	P50 *int `json:"p50"`
	P90 *int `json:"p90"`
	P99 *int `json:"p99"`
	Max *int `json:"max"`
}

func (p percentiles) String() string {
	f := func(v *int) string {
		if v == nil {
			return "-"
		}
		return strconv.Itoa(*v) + "ms"
	}
	return fmt.Sprintf("n=%d p50=%s p90=%s p99=%s max=%s", p.N, f(p.P50), f(p.P90), f(p.P99), f(p.Max))
}

type drillResult struct {
	Sockets      int               `json:"sockets"`
	NotConnected []json.RawMessage `json:"not_connected"`
	Acks         struct {
		Events     int             `json:"events"`
		Attempts   int             `json:"attempts"`
		OK         int             `json:"ok"`
		Codes      map[string]int  `json:"codes"`
		Cut        int             `json:"cut"`
		RetriedOK  int             `json:"retried_ok"`
		Timeouts   int             `json:"timeouts"`
		Unanswered int             `json:"unanswered"`
		Lost       int             `json:"lost"`
		RTT        percentiles     `json:"rtt_ms"`
		CutLog     json.RawMessage `json:"cut_log"`
		LostLog    json.RawMessage `json:"lost_log"`
	} `json:"acks"`
	Rejoin struct {
		Sent     int            `json:"sent"`
		Ok       int            `json:"ok"`
		Codes    map[string]int `json:"codes"`
		Cut      int            `json:"cut"`
		Timeouts int            `json:"timeouts"`
	} `json:"rejoin"`
	Presence    json.RawMessage `json:"presence_after_baseline"`
	Flaps       int             `json:"flaps"`
	T0          int64           `json:"t0_ms"`
	FlapDetails json.RawMessage `json:"flap_details"`
	ReconnectMs struct {
		ViaNginx          percentiles     `json:"via_nginx"`
		ViaNginxPolling   percentiles     `json:"via_nginx_polling"`
		ViaNginxWebsocket percentiles     `json:"via_nginx_websocket"`
		Pinned            percentiles     `json:"pinned"`
		Worst             json.RawMessage `json:"worst_via_nginx"`
		SlowestHistories  json.RawMessage `json:"slowest_histories"`
	} `json:"reconnect_ms"`
	Disconnects struct {
		Total               int            `json:"total"`
		Reasons             map[string]int `json:"reasons"`
		ClientsDisconnected int            `json:"clients_disconnected"`
	} `json:"disconnects"`
	ConnectErrors int `json:"connect_errors"`
	Final         struct {
		CarolAccept        json.RawMessage `json:"carol_accept"`
		CallAcceptedCounts map[string]int  `json:"call_accepted_counts"`
		Admit              json.RawMessage `json:"admit"`
		AdmissionCounts    map[string]int  `json:"admission_counts"`
	} `json:"final"`
}

func (r *drillResult) report(t *testing.T) {
	t.Helper()
	a := r.Acks
	t.Logf("acks: %d heartbeats sent, %d ok, codes %v, %d cut by a transport close and sent again (%d then ok), %d timeouts, %d unanswered => acks lost %d; ack RTT %s",
		a.Events, a.OK, a.Codes, a.Cut, a.RetriedOK, a.Timeouts, a.Unanswered, a.Lost, a.RTT)
	if a.Cut > 0 {
		t.Logf("cut acks: %s", a.CutLog)
	}
	t.Logf("re-registrations in the call/meeting after reconnect: %+v", r.Rejoin)
	t.Logf("presence flaps: %d; presence transitions of drill users after the baseline: %s", r.Flaps, r.Presence)
	t.Logf("disconnects: %d (%d of %d sockets), reasons %v; connect_errors during reconnects %d",
		r.Disconnects.Total, r.Disconnects.ClientsDisconnected, r.Sockets, r.Disconnects.Reasons, r.ConnectErrors)
	t.Logf("reconnect time through nginx:        %s", r.ReconnectMs.ViaNginx)
	t.Logf("  websocket-only clients:            %s", r.ReconnectMs.ViaNginxWebsocket)
	t.Logf("  polling+upgrade clients:           %s", r.ReconnectMs.ViaNginxPolling)
	t.Logf("reconnect time pinned to one node:   %s (they wait for their node to come back)", r.ReconnectMs.Pinned)
	t.Logf("slowest reconnects through nginx: %s", r.ReconnectMs.Worst)
	t.Logf("their connection histories (ms after %s): %s", time.UnixMilli(r.T0).UTC().Format(time.RFC3339Nano), r.ReconnectMs.SlowestHistories)
	t.Logf("after the drill: carol call:accept %s, call:accepted counts %v; admit_guest %s, admission_status counts %v",
		r.Final.CarolAccept, r.Final.CallAcceptedCounts, r.Final.Admit, r.Final.AdmissionCounts)
}

// drill is the running drill.js: commands on stdin, one JSON object per
// line on stdout.
type drill struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan []byte
	mu     sync.Mutex
	stderr bytes.Buffer
}

func startDrill(t *testing.T, nodeBin string, args ...string) *drill {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	d := &drill{t: t, lines: make(chan []byte, 16)}
	d.cmd = exec.CommandContext(ctx, nodeBin, append([]string{"drill.js"}, args...)...)
	d.cmd.Dir = topologyDir
	d.cmd.Env = append(os.Environ(), "NO_COLOR=1")
	d.cmd.Stderr = &lockedWriter{mu: &d.mu, w: &d.stderr}
	d.cmd.WaitDelay = 5 * time.Second
	var err error
	if d.stdin, err = d.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 8<<20)
		for sc.Scan() {
			d.lines <- append([]byte(nil), sc.Bytes()...)
		}
		close(d.lines)
	}()
	t.Cleanup(func() {
		_ = d.stdin.Close()
		done := make(chan struct{})
		go func() { _ = d.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = d.cmd.Process.Kill()
			<-done
		}
		cancel()
		if t.Failed() || testing.Verbose() {
			t.Logf("drill.js stderr (last lines):\n%s", lastLines(d.log(), 60))
		}
	})
	return d
}

func (d *drill) log() string { d.mu.Lock(); defer d.mu.Unlock(); return d.stderr.String() }

// expect waits for the next line of the given type and decodes it into v.
func (d *drill) expect(typ string, timeout time.Duration, v any) {
	d.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case b, ok := <-d.lines:
			if !ok {
				d.t.Fatalf("drill.js exited while waiting for %q:\n%s", typ, lastLines(d.log(), 40))
			}
			var h struct {
				Type string `json:"type"`
			}
			if json.Unmarshal(b, &h) != nil || h.Type != typ {
				d.t.Logf("drill.js: unexpected line %s", b)
				continue
			}
			if err := json.Unmarshal(b, v); err != nil {
				d.t.Fatalf("drill.js %s line: %v\n%s", typ, err, b)
			}
			return
		case <-deadline:
			d.t.Fatalf("no %q from drill.js within %v:\n%s", typ, timeout, lastLines(d.log(), 40))
		}
	}
}

// command sends a command line and waits for its answer.
func (d *drill) command(cmd, typ string, timeout time.Duration, v any) {
	d.t.Helper()
	if _, err := io.WriteString(d.stdin, cmd+"\n"); err != nil {
		d.t.Fatalf("drill.js stdin: %v", err)
	}
	d.expect(typ, timeout, v)
}

// metricValue reads one unlabelled-or-labelled series from a node's /metrics.
func metricValue(t *testing.T, nodeURL, series string) float64 {
	t.Helper()
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(nodeURL + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

func connsOf(m *state.Meeting, user string) []string {
	if m == nil {
		return nil
	}
	return m.Conns[user]
}

func sessions(q []*state.Session) []string {
	var out []string
	for _, s := range q {
		out = append(out, s.ID+":"+s.Status)
	}
	return out
}

func sumCodes(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func at(m []string, i int) string {
	if len(m) > i {
		return m[i]
	}
	return "?"
}

// heartbeatSeries sums switchboard_events_total{event="presence:heartbeat"}
// over outcomes in a /metrics text, with process_start_time_seconds.
func heartbeatSeries(text string) (handled, started float64) {
	for _, l := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(l, `switchboard_events_total{event="presence:heartbeat"`):
			if i := strings.LastIndexByte(l, ' '); i > 0 {
				v, _ := strconv.ParseFloat(l[i+1:], 64)
				handled += v
			}
		case strings.HasPrefix(l, "process_start_time_seconds "):
			started, _ = strconv.ParseFloat(strings.TrimPrefix(l, "process_start_time_seconds "), 64)
		}
	}
	return handled, started
}

func getMetrics(url string) (string, bool) {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(url + "/metrics")
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err == nil && resp.StatusCode == http.StatusOK
}

func scrapeHeartbeats(url string) float64 {
	text, _ := getMetrics(url)
	h, _ := heartbeatSeries(text)
	return h
}

// scrapeHeartbeatsUntilExit scrapes a node every 20 ms until stop and
// returns the last heartbeat count of the process that answered first
// (a restarted process, with another start time, is ignored).
func scrapeHeartbeatsUntilExit(url string, stop <-chan struct{}) float64 {
	var last, start float64
	for i := 0; i < 10000; i++ {
		if text, ok := getMetrics(url); ok {
			h, st := heartbeatSeries(text)
			if start == 0 {
				start = st
			}
			if st == start {
				last = h
			}
		}
		select {
		case <-stop:
			return last
		case <-time.After(20 * time.Millisecond):
		}
	}
	return last
}

// minus is a without the elements of b.
func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
