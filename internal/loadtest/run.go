// Package loadtest is the engine of switchboard-load, the tool SREs use to
// size Switchboard replicas: it opens many authenticated member connections
// over one or more nodes and drives the scenarios of the contract (idle
// connections, instant calls, meeting fan-out, presence churn) at an offered
// rate, measuring per-step latencies, exactly-once delivery and the servers'
// memory and CPU.
//
// Design notes:
//
//   - Client. The tool speaks Engine.IO v4 / Socket.IO v5 over websocket
//     itself (client.go, on gorilla/websocket) rather than with the library
//     client of internal/testclient, because the tool shares the machine's
//     cores with the servers it measures. Measured on the 2-core development
//     machine with TestClientCost (cmd/switchboard-load/README.md), the
//     library client costs 60 KiB and 2 goroutines per connection and
//     27 µs of CPU per received event; this one 12 KiB, 1 goroutine, 8 µs.
//   - Open loop. Operations start on a fixed schedule, start + i/rate, each
//     in its own goroutine, whether or not earlier ones finished; a slow
//     server therefore shows as latency and lost deliveries, not as a lower
//     offered rate (the "coordinated omission" of closed-loop tools). If the
//     tool itself cannot keep up, the lag behind the schedule is reported,
//     and operations beyond the in-flight cap are dropped and counted, never
//     queued.
//   - Bounds. Every run is bounded in connections, operations and wall clock
//     (Max* constants), and targets loopback unless allowed otherwise.
package loadtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	json "github.com/goccy/go-json"

	"github.com/switchboard/switchboard/auth"
)

// Run executes the configured scenario and returns its report. cfg must
// have passed Validate (Run validates again).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.RunID == "" {
		cfg.RunID = strconv.FormatInt(time.Now().UnixNano()%1_000_000_000, 36)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.runBudget())
	defer cancel()
	r := &runner{cfg: cfg, rep: newReport(cfg)}
	r.key = auth.SigningKey{Secret: cfg.Secret, PrivateKeyFile: cfg.PrivateKeyFile}
	r.tokenTTL = cfg.runBudget() + time.Hour
	if cfg.Secret == "" && cfg.PrivateKeyFile == "" {
		r.rep.note("tokens are signed with the development key (auth.DevelopmentSecret): a node configured with a real key refuses them; pass --jwt-secret or set SWITCHBOARD_JWT_SECRET")
	}
	if cfg.Devices > defaultMaxConnsPerUser {
		r.rep.note("%d devices per user: the nodes must run with SWITCHBOARD_MAX_CONNS_PER_USER ≥ %d (default %d)", cfg.Devices, cfg.Devices, defaultMaxConnsPerUser)
	}
	self0, _ := ReadProc(0)
	var err error
	switch cfg.Scenario {
	case ScenarioIdle:
		err = r.idle(ctx)
	case ScenarioCall:
		err = r.call(ctx)
	case ScenarioFanout:
		err = r.fanout(ctx)
	case ScenarioPresence:
		err = r.presence(ctx)
	}
	if self1, e := ReadProc(0); e == nil {
		r.rep.Client = ClientCost{RSSKiB: self1.RSSKiB, CPUSeconds: (self1.CPU - self0.CPU).Seconds()}
	}
	r.rep.Events = r.events.snapshot()
	r.rep.Errors = r.errs.Map()
	r.rep.ElapsedSeconds = time.Since(r.rep.Started).Seconds()
	if err == nil && ctx.Err() != nil {
		r.rep.note("the run hit its wall-clock bound (%v) and was cut short", cfg.runBudget())
	}
	return r.rep, err
}

// runner is the state of one run shared by the scenarios.
type runner struct {
	cfg      Config
	rep      *Report
	key      auth.SigningKey
	tokenTTL time.Duration
	errs     Counter
	events   eventCounter
}

func (r *runner) logf(format string, args ...any) {
	if r.cfg.Log != nil {
		fmt.Fprintf(r.cfg.Log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
	}
}

// fail counts an error of a step: the ack's code, or the client-side cause.
func (r *runner) fail(step string, a Ack, err error) {
	switch {
	case errors.Is(err, ErrAckTimeout):
		r.errs.Add(step+": ack_timeout", 1)
	case errors.Is(err, ErrClosed):
		r.errs.Add(step+": closed", 1)
	case err != nil:
		r.errs.Add(step+": send_error", 1)
	case !a.Success:
		code := a.Code
		if code == "" {
			code = "unknown"
		}
		r.errs.Add(step+": "+code, 1)
	}
}

// ok reports whether an emit succeeded, counting the error otherwise.
func (r *runner) ok(step string, a Ack, err error) bool {
	if err == nil && a.Success {
		return true
	}
	r.fail(step, a, err)
	return false
}

// --- population -------------------------------------------------------

// member is one connection of the population: user index, device index.
type member struct {
	User, Device int
}

// population lays out Conns connections as users × devices. Connection k
// is device k % D of user k / D and goes to URL k % len(URLs), so a user's
// devices land on different nodes whenever there are at least D URLs.
type population struct {
	run     string
	prefix  string // "u" for members, "w" for watchers, ...
	devices int
	users   int
	urls    []string
	clients []*Client
}

func newPopulation(cfg Config, prefix string, conns int) *population {
	users := conns / cfg.Devices
	return &population{run: cfg.RunID, prefix: prefix, devices: cfg.Devices, users: users, urls: cfg.URLs,
		clients: make([]*Client, users*cfg.Devices)}
}

func (p *population) size() int                  { return len(p.clients) }
func (p *population) member(k int) member        { return member{User: k / p.devices, Device: k % p.devices} }
func (p *population) index(user, device int) int { return user*p.devices + device }
func (p *population) url(k int) string           { return p.urls[k%len(p.urls)] }
func (p *population) userID(u int) string        { return userID(p.run, p.prefix, u) }
func (p *population) client(u, d int) *Client    { return p.clients[p.index(u, d)] }

func userID(run, prefix string, u int) string { return "lt-" + run + "-" + prefix + strconv.Itoa(u) }
func deviceID(d int) string                   { return "d" + strconv.Itoa(d) }

// authFor mints the handshake auth object of a member.
func (r *runner) authFor(user, device string) ([]byte, error) {
	tok, err := auth.Mint(r.key, auth.Claims{UserID: user, DeviceID: device, Name: "load " + user}, r.tokenTTL)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]string{"token": tok})
}

// dialCode classifies a failed dial for the error table.
func dialCode(err error) string {
	var ce *ConnectError
	switch {
	case errors.As(err, &ce):
		return "connect: " + ce.Code
	case errors.Is(err, context.DeadlineExceeded), os.IsTimeout(err):
		return "connect: timeout"
	default:
		return "connect: transport"
	}
}

// connect dials the whole population at the configured connect rate with
// bounded concurrency. Failed connections stay nil in p.clients.
func (r *runner) connect(ctx context.Context, p *population, h Handler) ConnectReport {
	n := p.size()
	lat := NewLatency()
	var next, connected, failed atomic.Int64
	start := time.Now()
	interval := time.Duration(float64(time.Second) / r.cfg.ConnectRate)
	var wg sync.WaitGroup
	workers := min(r.cfg.ConnectConcurrency, n)
	var firstErr atomic.Value
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1) - 1)
				if k >= n || ctx.Err() != nil {
					return
				}
				if d := time.Until(start.Add(time.Duration(k) * interval)); d > 0 {
					if !sleepCtx(ctx, d) {
						return
					}
				}
				m := p.member(k)
				a, err := r.authFor(p.userID(m.User), deviceID(m.Device))
				if err != nil {
					r.errs.Add("connect: token", 1)
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				c, err := Dial(ctx, DialOptions{URL: p.url(k), Auth: a, Timeout: r.cfg.ConnectTimeout, Handler: h, Tag: k, Header: r.cfg.handshakeHeader()})
				if err != nil {
					r.errs.Add(dialCode(err), 1)
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				lat.Add(c.Connected.Sub(c.Started))
				p.clients[k] = c
				if v := connected.Add(1); v%5000 == 0 {
					r.logf("connected %d/%d", v, n)
				}
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	rep := ConnectReport{Attempted: int64(n), Connected: connected.Load(), Failed: failed.Load(),
		WallSeconds: wall.Seconds(), Latency: lat.Summary()}
	if wall > 0 {
		rep.PerSecond = float64(rep.Connected) / wall.Seconds()
	}
	if e, ok := firstErr.Load().(string); ok {
		rep.FirstError = e
	}
	r.logf("connected %d/%d in %v (%.0f/s), %d failed", rep.Connected, n, wall.Round(time.Millisecond), rep.PerSecond, rep.Failed)
	return rep
}

// closeAll closes every client with bounded concurrency.
func closeAll(clients []*Client) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 128)
	for _, c := range clients {
		if c == nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(c *Client) {
			defer func() { <-sem; wg.Done() }()
			c.Close()
		}(c)
	}
	wg.Wait()
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// --- open-loop schedule -----------------------------------------------

// maxInFlight bounds the operations running at once; beyond it new ones
// are dropped (see the package comment).
func (r *runner) maxInFlight() int {
	n := int(r.cfg.Rate * (r.cfg.AckTimeout*4 + r.cfg.DeliveryTimeout*3 + r.cfg.Talk).Seconds())
	return max(100, min(n, 50_000))
}

// schedule starts op(i) for i = 0, 1, ... at start + i/rate, each in its
// own goroutine, until ops operations were scheduled, the duration passed
// or ctx ended, then waits for them. lag records how late each start was.
func (r *runner) schedule(ctx context.Context, ops int, lag *Latency, op func(i int)) ScheduleReport {
	interval := time.Duration(float64(time.Second) / r.cfg.Rate)
	limit := r.maxInFlight()
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(r.cfg.Duration)
	rep := ScheduleReport{OfferedPerSecond: r.cfg.Rate}
	for i := 0; i < ops; i++ {
		target := start.Add(time.Duration(i) * interval)
		if !target.Before(end) {
			break
		}
		if d := time.Until(target); d > 0 && !sleepCtx(ctx, d) {
			break
		}
		if ctx.Err() != nil {
			break
		}
		rep.Scheduled++
		select {
		case sem <- struct{}{}:
		default:
			rep.Dropped++
			continue
		}
		lag.Add(time.Since(target))
		rep.Started++
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			op(i)
		}(i)
	}
	rep.WindowSeconds = time.Since(start).Seconds()
	wg.Wait()
	rep.ElapsedSeconds = time.Since(start).Seconds()
	rep.Lag = lag.Summary()
	return rep
}

// --- server measurements ----------------------------------------------

// sampleServers reads every --pids process.
func (r *runner) sampleServers() []ProcSample {
	out := make([]ProcSample, len(r.cfg.PIDs))
	for i, pid := range r.cfg.PIDs {
		s, err := ReadProc(pid)
		if err != nil {
			r.rep.note("pid %d: %v", pid, err)
		}
		out[i] = s
	}
	return out
}

// serverReport turns before/after samples into per-server figures; perConn
// divides the RSS growth by conns (0: not reported), perOp divides the CPU
// by ops (0: not reported).
func (r *runner) serverReport(before, after []ProcSample, conns int64, ops int64) []ServerReport {
	var out []ServerReport
	var totalCPU time.Duration
	for i, pid := range r.cfg.PIDs {
		s := ServerReport{PID: pid, RSSBeforeKiB: before[i].RSSKiB, RSSAfterKiB: after[i].RSSKiB,
			CPUSeconds: (after[i].CPU - before[i].CPU).Seconds()}
		totalCPU += after[i].CPU - before[i].CPU
		if conns > 0 {
			s.RSSPerConnKiB = float64(after[i].RSSKiB-before[i].RSSKiB) / float64(conns)
		}
		out = append(out, s)
	}
	if ops > 0 && len(out) > 0 {
		r.rep.ServerCPUPerOpMs = float64(totalCPU) / float64(time.Millisecond) / float64(ops)
	}
	return out
}

// settle lets the broadcasts caused by connecting (presence) drain before a
// measurement starts.
func (r *runner) settle(ctx context.Context) {
	sleepCtx(ctx, r.cfg.Quiet+time.Second)
}

// counting is a Handler that only counts events by name.
func (r *runner) counting(_ *Client, ev Event) { r.events.add(ev.Name) }

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
