package loadtest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Scenario names.
const (
	ScenarioIdle     = "idle"
	ScenarioCall     = "call"
	ScenarioFanout   = "fanout"
	ScenarioPresence = "presence"
)

// Hard caps. They hold whatever the flags say, so that a typo cannot turn
// the tool into a denial of service against a shared machine or cluster.
const (
	MaxConns    = 50_000
	MaxDuration = 10 * time.Minute
	MaxCount    = 1_000_000
	MaxRate     = 10_000.0
	// MaxDevices bounds devices per user. The gateway refuses more than
	// SWITCHBOARD_MAX_CONNS_PER_USER (default 20) connections per user, so
	// more devices need a node started with a higher limit; the idle
	// scenario uses that to measure the memory of a connection without the
	// presence storm of connecting thousands of distinct users.
	MaxDevices             = 1000
	defaultMaxConnsPerUser = 20
	MaxURLs                = 64
	MaxBroadcasts          = 100_000
	MaxTimeout             = 2 * time.Minute
	MaxSetup               = 10 * time.Minute // connecting the population
	MaxConnectRate         = 20_000.0
	// MaxRun bounds a whole run's wall clock: setup, the scenario, the
	// wait for late deliveries and the teardown.
	MaxRun = MaxSetup + MaxDuration + 2*MaxTimeout + time.Minute
)

// Config is one run of the tool.
type Config struct {
	Scenario string
	// URLs are the nodes' base URLs; connections go round-robin.
	URLs []string
	// AllowRemote permits non-loopback targets.
	AllowRemote bool

	// Conns is the population of member connections (for presence: the
	// watchers are extra, see Watchers).
	Conns int
	// Devices per user; a user's devices go to different nodes when
	// there are at least as many URLs.
	Devices int

	// Duration bounds the scenario's active phase (idle: the hold).
	Duration time.Duration
	// Count bounds the operations (calls, broadcasts, churn cycles); 0
	// means rate × duration.
	Count int
	// Rate is the offered rate of operations per second (open loop).
	Rate float64

	// Secret signs the members' HS256 tokens (empty: the development key);
	// PrivateKeyFile signs RS256/ES256 instead.
	Secret         string
	PrivateKeyFile string

	// PIDs are server processes whose RSS and CPU are read from /proc.
	PIDs []int

	ConnectRate        float64
	ConnectConcurrency int
	ConnectTimeout     time.Duration
	AckTimeout         time.Duration
	// DeliveryTimeout is how long an expected delivery may take before it
	// counts as lost.
	DeliveryTimeout time.Duration
	// Quiet is how long the tool keeps listening after the last operation
	// so that duplicates have a chance to show.
	Quiet time.Duration

	// Watchers (presence) receive every presence broadcast.
	Watchers int
	// Hold (presence) is how long a churning device stays connected.
	Hold time.Duration
	// Talk (call) is how long a call lasts between call:accepted and the
	// leaves.
	Talk time.Duration
	// CookieBytes, when positive, makes every handshake carry what a
	// browser sends besides the protocol's headers: a Cookie of this many
	// bytes, a User-Agent, Accept-Language and client hints.
	CookieBytes int

	// PresenceGrace (presence) is the server's grace before
	// user_disconnected; the tool waits for it on top of DeliveryTimeout.
	PresenceGrace time.Duration

	// RunID prefixes the user ids of this run so that runs do not meet.
	RunID string
	// Log receives progress lines (nil: none).
	Log io.Writer
}

// Defaults fills unset fields with the defaults of the scenario.
func (c *Config) Defaults() {
	if c.Devices == 0 {
		c.Devices = 2
	}
	if c.Conns == 0 {
		switch c.Scenario {
		case ScenarioIdle:
			c.Conns = 1000
		case ScenarioCall:
			c.Conns = 400
		case ScenarioFanout:
			c.Conns = 100
		case ScenarioPresence:
			c.Conns = 0 // the churning devices are created on the fly
		}
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Rate == 0 {
		switch c.Scenario {
		case ScenarioFanout:
			c.Rate = 5
		default:
			c.Rate = 50
		}
	}
	if c.ConnectRate == 0 {
		c.ConnectRate = 2000
	}
	if c.ConnectConcurrency == 0 {
		c.ConnectConcurrency = 64
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = 5 * time.Second
	}
	if c.DeliveryTimeout == 0 {
		c.DeliveryTimeout = 5 * time.Second
	}
	if c.Quiet == 0 {
		c.Quiet = 500 * time.Millisecond
	}
	if c.Watchers == 0 && c.Scenario == ScenarioPresence {
		c.Watchers = 50
	}
	if c.Hold == 0 {
		c.Hold = time.Second
	}
	if c.PresenceGrace == 0 {
		c.PresenceGrace = 5 * time.Second
	}
}

// Ops returns how many operations the scenario schedules: Count, or
// Rate × Duration when Count is 0, and never more than either allows.
func (c *Config) Ops() int {
	byTime := int(c.Rate * c.Duration.Seconds())
	if byTime < 1 {
		byTime = 1
	}
	if c.Count > 0 && c.Count < byTime {
		return c.Count
	}
	return byTime
}

// Validate checks the configuration against the hard caps and the target
// guard. It returns every problem at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch c.Scenario {
	case ScenarioIdle, ScenarioCall, ScenarioFanout, ScenarioPresence:
	default:
		bad("unknown scenario %q (idle, call, fanout, presence)", c.Scenario)
	}
	if len(c.URLs) == 0 {
		bad("no node URL")
	}
	if len(c.URLs) > MaxURLs {
		bad("%d URLs: at most %d", len(c.URLs), MaxURLs)
	}
	for _, u := range c.URLs {
		if err := CheckTarget(u, c.AllowRemote); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Conns < 0 || c.Watchers < 0 || c.Count < 0 {
		bad("counts must not be negative")
	}
	if total := c.Conns + c.Watchers; total > MaxConns {
		bad("%d connections: at most %d", total, MaxConns)
	}
	if c.Devices < 1 || c.Devices > MaxDevices {
		bad("--devices %d: between 1 and %d", c.Devices, MaxDevices)
	}
	if c.Duration <= 0 || c.Duration > MaxDuration {
		bad("--duration %v: between 0 and %v", c.Duration, MaxDuration)
	}
	if c.Count > MaxCount {
		bad("--count %d: at most %d", c.Count, MaxCount)
	}
	if !(c.Rate > 0) || c.Rate > MaxRate {
		bad("--rate %g: between 0 and %g per second", c.Rate, MaxRate)
	}
	if !(c.ConnectRate > 0) || c.ConnectRate > MaxConnectRate {
		bad("--connect-rate %g: between 0 and %g per second", c.ConnectRate, MaxConnectRate)
	}
	if c.ConnectConcurrency < 1 || c.ConnectConcurrency > 1024 {
		bad("--connect-concurrency %d: between 1 and 1024", c.ConnectConcurrency)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"connect-timeout", c.ConnectTimeout}, {"ack-timeout", c.AckTimeout}, {"delivery-timeout", c.DeliveryTimeout},
		{"quiet", c.Quiet}, {"hold", c.Hold}, {"presence-grace", c.PresenceGrace}} {
		if d.v <= 0 || d.v > MaxTimeout {
			bad("--%s %v: between 0 and %v", d.name, d.v, MaxTimeout)
		}
	}
	if c.Talk < 0 || c.Talk > MaxTimeout {
		bad("--talk %v: between 0 and %v", c.Talk, MaxTimeout)
	}
	if c.CookieBytes < 0 || c.CookieBytes > 64<<10 {
		bad("--cookie-bytes %d: between 0 and 65536", c.CookieBytes)
	}
	if c.Secret != "" && c.PrivateKeyFile != "" {
		bad("give either --jwt-secret or --jwt-private-key, not both")
	}
	switch c.Scenario {
	case ScenarioCall:
		if c.Conns/c.Devices < 2 {
			bad("the call scenario needs at least two users (--conns ≥ 2 × --devices)")
		}
	case ScenarioFanout:
		if c.Conns/c.Devices < 2 {
			bad("the fanout scenario needs at least two users (--conns ≥ 2 × --devices)")
		}
		if c.Ops() > MaxBroadcasts {
			bad("%d broadcasts: at most %d", c.Ops(), MaxBroadcasts)
		}
	case ScenarioPresence:
		if c.Watchers < c.Devices {
			bad("the presence scenario needs --watchers ≥ --devices (watchers are devices of watcher users)")
		}
	case ScenarioIdle:
		if c.Conns < 1 {
			bad("the idle scenario needs --conns ≥ 1")
		}
	}
	for _, p := range c.PIDs {
		if p <= 0 {
			bad("--pids: %d is not a process id", p)
		}
	}
	return errors.Join(errs...)
}

// CheckTarget refuses a node URL whose host is not a loopback address
// (127.0.0.0/8, ::1, or "localhost") unless allowRemote. Host names other
// than localhost are refused without being resolved: a name that resolves
// to loopback today may not tomorrow.
func CheckTarget(raw string, allowRemote bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("URL %q: %v", raw, err)
	}
	switch u.Scheme {
	case "http", "https", "ws", "wss":
	default:
		return fmt.Errorf("URL %q: scheme must be http, https, ws or wss", raw)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("URL %q: no host", raw)
	}
	if allowRemote {
		return nil
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("URL %q: %s is not a loopback address; pass --allow-remote to load a remote node", raw, host)
}

// runBudget is the wall-clock bound of a whole run of c. Connecting the
// population gets MaxSetup whatever its size: how fast a node accepts
// connections is what the tool measures (each member's first connection is
// announced to every member, so connecting N users costs the node O(N²)
// deliveries), and a budget guessed from the connect rate would cut the
// measurement short.
func (c *Config) runBudget() time.Duration {
	tail := c.DeliveryTimeout + c.AckTimeout*4 + c.Quiet + c.Hold + c.Talk + c.PresenceGrace + 10*time.Second
	if tail > 2*MaxTimeout {
		tail = 2 * MaxTimeout
	}
	b := MaxSetup + c.Duration + tail
	if b > MaxRun {
		b = MaxRun
	}
	return b
}

// handshakeHeader is the extra header of every handshake: nil, or what a
// browser sends (CookieBytes).
func (c Config) handshakeHeader() http.Header {
	if c.CookieBytes <= 0 {
		return nil
	}
	return http.Header{
		"Cookie":             {"session=" + strings.Repeat("c", max(c.CookieBytes-len("session="), 0))},
		"User-Agent":         {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"},
		"Accept-Language":    {"en-GB,en-US;q=0.9,en;q=0.8"},
		"Sec-Ch-Ua":          {`"Chromium";v="131", "Not_A Brand";v="24"`},
		"Sec-Ch-Ua-Mobile":   {"?0"},
		"Sec-Ch-Ua-Platform": {`"Linux"`},
		"Origin":             {"https://app.example"},
	}
}
