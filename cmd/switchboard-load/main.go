// Command switchboard-load is the load tool SREs use to size Switchboard
// replicas. It opens many authenticated member connections over one or
// more nodes (round-robin; a user's devices on different nodes), signs the
// tokens itself, drives a scenario at an offered rate (open loop), and
// reports latencies per step, lost and duplicate deliveries, errors by code,
// and the servers' memory and CPU.
//
//	switchboard-load --scenario idle --conns 5000 --duration 30s --pids $(pidof switchboard)
//	switchboard-load --scenario call --rate 200 --duration 10s --urls http://127.0.0.1:3001,http://127.0.0.1:3002
//	switchboard-load --scenario fanout --conns 400 --devices 2 --rate 5 --count 50
//	switchboard-load --scenario presence --watchers 1000 --rate 20 --duration 20s
//
// Scenarios:
//
//	idle      connect --conns, hold for --duration; connect rate and, with
//	          --pids, server RSS per connection ((after - before) / conns).
//	call      instant calls at --rate: call:create → call:notify →
//	          call:incoming on every callee device → call:accept →
//	          call:accepted → meeting:leave by both → call:ended.
//	fanout    one meeting with every user as participant and every socket
//	          registered; the owner sends meeting:update at --rate; latency
//	          per recipient.
//	presence  fresh users connect, heartbeat, disconnect at --rate; --watchers
//	          count presence:user_connected / user_disconnected.
//
// Every run is bounded (at most 50,000 connections, 10 minutes of scenario,
// 1,000,000 operations, and a wall-clock cap on the whole run) and targets
// loopback only unless --allow-remote is given. The exit status is 0 on
// success, 1 on a usage or setup error, and 2 with --strict when a delivery
// was lost or duplicated or a step failed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/switchboard/switchboard/internal/loadtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// exitStrict is the status of a run that completed with losses, duplicates
// or errors under --strict.
const exitStrict = 2

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, opts, err := parseFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "switchboard-load:", err)
		return 1
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "switchboard-load: refusing to run:\n "+strings.ReplaceAll(err.Error(), "\n", "\n "))
		return 1
	}
	limit, lerr := loadtest.RaiseNoFile()
	if lerr != nil {
		fmt.Fprintln(stderr, "switchboard-load: raising RLIMIT_NOFILE:", lerr)
	}
	if need := fdsNeeded(cfg); limit > 0 && need > limit {
		fmt.Fprintf(stderr, "switchboard-load: this run needs about %d file descriptors but RLIMIT_NOFILE is %d (the hard limit cannot be raised here); lower --conns or run as a user allowed to raise it\n", need, limit)
		return 1
	}
	if opts.quiet {
		cfg.Log = nil
	}
	rep, err := loadtest.Run(ctx, cfg)
	if err != nil && rep == nil {
		fmt.Fprintln(stderr, "switchboard-load:", err)
		return 1
	}
	rep.NoFileLimit = limit
	rep.Procs = runtime.GOMAXPROCS(0)
	if opts.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if werr := enc.Encode(rep); werr != nil {
			fmt.Fprintln(stderr, "switchboard-load:", werr)
			return 1
		}
	} else if werr := rep.WriteTable(stdout); werr != nil {
		fmt.Fprintln(stderr, "switchboard-load:", werr)
		return 1
	}
	if err != nil {
		fmt.Fprintln(stderr, "switchboard-load:", err)
		return 1
	}
	if opts.strict && (rep.Lost() > 0 || rep.Duplicates() > 0 || len(rep.Errors) > 0 || rep.Connect.Failed > 0) {
		return exitStrict
	}
	return 0
}

// fdsNeeded estimates the descriptors of a run: one per connection, the
// churning ones of the presence scenario, and slack for the runtime.
func fdsNeeded(cfg loadtest.Config) uint64 {
	n := cfg.Conns + cfg.Watchers + 64
	if cfg.Scenario == loadtest.ScenarioPresence {
		n += int(cfg.Rate*cfg.Hold.Seconds()) + 16
	}
	return uint64(n)
}

const usage = `usage: switchboard-load --scenario idle|call|fanout|presence [flags]

Opens authenticated member connections over the --urls nodes (loopback only
unless --allow-remote) and drives a scenario at an offered rate (open loop).
  idle      connect --conns, hold for --duration; each node's live heap per connection
            (from its /metrics); with --pids, server RSS per connection
  call      call:create → call:notify → call:incoming on every callee device →
            call:accept → call:accepted → meeting:leave × 2 → call:ended, at --rate
  fanout    one meeting, every socket registered; meeting:update at --rate
  presence  fresh users connect/heartbeat/disconnect at --rate; --watchers count
            presence:user_connected / user_disconnected
Hard caps: 50,000 connections, 10m duration, 1,000,000 operations.

`

type outputOptions struct {
	json   bool
	quiet  bool
	strict bool
}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (loadtest.Config, outputOptions, error) {
	var (
		cfg  loadtest.Config
		o    outputOptions
		urls string
		pids string
	)
	fs := flag.NewFlagSet("switchboard-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Scenario, "scenario", loadtest.ScenarioIdle, "idle, call, fanout or presence")
	fs.StringVar(&urls, "urls", "http://127.0.0.1:3000", "comma-separated node base URLs; connections go round-robin")
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", false, "allow non-loopback node URLs")
	fs.IntVar(&cfg.Conns, "conns", 0, "member connections (default: idle 1000, call 400, fanout 100; presence: see --watchers)")
	fs.IntVar(&cfg.Devices, "devices", 2, "devices per user (1-1000; over 20 needs nodes with SWITCHBOARD_MAX_CONNS_PER_USER raised); a user's devices go to different nodes")
	fs.DurationVar(&cfg.Duration, "duration", 0, "scenario duration (idle: the hold), at most 10m (default 10s)")
	fs.IntVar(&cfg.Count, "count", 0, "operations (calls, broadcasts, churn cycles); 0: rate × duration")
	fs.Float64Var(&cfg.Rate, "rate", 0, "offered operations per second, open loop (default: 50; fanout 5)")
	fs.StringVar(&cfg.Secret, "jwt-secret", "", "HS256 secret that signs the tokens (default $SWITCHBOARD_JWT_SECRET, else the development key)")
	fs.StringVar(&cfg.PrivateKeyFile, "jwt-private-key", "", "PEM RSA/EC private key that signs the tokens instead (default $SWITCHBOARD_JWT_PRIVATE_KEY)")
	fs.StringVar(&pids, "pids", "", "comma-separated server process ids: RSS and CPU are read from /proc")
	fs.Float64Var(&cfg.ConnectRate, "connect-rate", 0, "new connections per second while connecting the population (default 2000)")
	fs.IntVar(&cfg.ConnectConcurrency, "connect-concurrency", 0, "handshakes in flight while connecting (default 64)")
	fs.DurationVar(&cfg.ConnectTimeout, "connect-timeout", 0, "handshake timeout (default 10s)")
	fs.DurationVar(&cfg.AckTimeout, "ack-timeout", 0, "ack timeout (default 5s)")
	fs.DurationVar(&cfg.DeliveryTimeout, "delivery-timeout", 0, "an expected delivery later than this counts as lost (default 5s)")
	fs.DurationVar(&cfg.Quiet, "quiet", 0, "listening time after the last operation, for late duplicates (default 500ms)")
	fs.DurationVar(&cfg.Talk, "talk", 0, "call: how long each call lasts between call:accepted and the leaves (default 0)")
	fs.IntVar(&cfg.CookieBytes, "cookie-bytes", 0, "send browser headers with every handshake: a Cookie of this many bytes, User-Agent, Accept-Language, client hints (0: none)")
	fs.IntVar(&cfg.Watchers, "watchers", 0, "presence: watcher connections, --devices per watcher user (default 50)")
	fs.DurationVar(&cfg.Hold, "hold", 0, "presence: how long a churning device stays connected (default 1s)")
	fs.DurationVar(&cfg.PresenceGrace, "presence-grace", 0, "presence: the servers' SWITCHBOARD_PRESENCE_GRACE (default 5s)")
	fs.StringVar(&cfg.RunID, "run-id", "", "prefix of this run's user ids (default: random)")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	fs.BoolVar(&o.quiet, "q", false, "no progress lines on stderr")
	fs.BoolVar(&o.strict, "strict", false, "exit 2 when a delivery was lost or duplicated or a step failed")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, o, err
	}
	if fs.NArg() > 0 {
		return cfg, o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, u := range strings.Split(urls, ",") {
		if u = strings.TrimSpace(u); u != "" {
			cfg.URLs = append(cfg.URLs, strings.TrimSuffix(u, "/"))
		}
	}
	if pids != "" {
		for _, s := range strings.Split(pids, ",") {
			p, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return cfg, o, fmt.Errorf("--pids: %q is not a number", s)
			}
			cfg.PIDs = append(cfg.PIDs, p)
		}
	}
	if cfg.Secret == "" && cfg.PrivateKeyFile == "" {
		cfg.Secret = getenv("SWITCHBOARD_JWT_SECRET")
		if cfg.Secret == "" {
			cfg.PrivateKeyFile = getenv("SWITCHBOARD_JWT_PRIVATE_KEY")
		}
	}
	cfg.Log = stderr
	return cfg, o, nil
}
