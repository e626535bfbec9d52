// Command switchboard runs a Switchboard gateway node.
//
//	switchboard                 serve (embedded in-memory mode without SWITCHBOARD_REDIS_URL)
//	switchboard token --sub alice [--did phone] [--name Alice] [--ttl 24h]
//	switchboard healthcheck     exit 0 when GET /healthz of the local node answers 200
//
// Every setting is an environment variable with a flag of the same name
// (see the README's configuration table).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/adapter"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/config"
	"github.com/switchboard/switchboard/gateway"
	"github.com/switchboard/switchboard/internal/gctune"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/rawio"
	"github.com/switchboard/switchboard/internal/redislog"
	"github.com/switchboard/switchboard/service"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/memory"
	stateredis "github.com/switchboard/switchboard/state/redis"
)

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		os.Exit(1)
	}
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "token":
			return auth.TokenCommand(args[1:], getenv, stdout)
		case "healthcheck":
			return healthcheck(args[1:], getenv)
		}
	}
	cfg, err := config.Load(args, getenv)
	if err != nil {
		return err
	}
	return serve(cfg, stderr)
}

func healthcheck(args []string, getenv func(string) string) error {
	cfg, err := config.Load(args, getenv)
	if err != nil {
		return err
	}
	_, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return err
	}
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://127.0.0.1:" + port + "/healthz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz answered %d", resp.StatusCode)
	}
	return nil
}

func serve(cfg config.Config, stderr io.Writer) error {
	level, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil {
		return err
	}
	log := zerolog.New(stderr).Level(level).With().Timestamp().Logger()

	verifier, err := auth.NewVerifier(auth.KeyConfig{Secret: cfg.JWTSecret, PublicKeyFile: cfg.JWTPublicKey,
		JWKSFile: cfg.JWTJWKS, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, ClockSkew: cfg.JWTClockSkew})
	if err != nil {
		return err
	}
	if verifier.Development() {
		log.Warn().Msg("no JWT key configured: running with the INSECURE development key (switchboard token signs with it); set SWITCHBOARD_JWT_SECRET, SWITCHBOARD_JWT_PUBLIC_KEY or SWITCHBOARD_JWT_JWKS in production")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go verifier.Watch(ctx, cfg.JWTReloadInterval, func(err error) { log.Error().Err(err).Msg("reload JWT keys") })
	go gctune.New(gctune.Config{QuietPercent: cfg.GCQuietPercent, MinHeadroom: uint64(cfg.GCMinHeadroomMiB) << 20}, log).Run(ctx)

	opts := node.Options{
		Service:          serviceConfig(cfg),
		Gateway:          gatewayConfig(cfg),
		Verifier:         verifier,
		Logger:           log,
		NodeLease:        cfg.NodeLease,
		NodeRefresh:      cfg.NodeRefresh,
		JobPoll:          cfg.JobPollInterval,
		DrainTimeout:     cfg.DrainTimeout,
		Loops:            true,
		LibraryWebSocket: !cfg.WSFrameSharing,
		WSMaxQueue:       cfg.WSMaxQueueBytes,
		WSBroadcastDelay: cfg.WSBroadcastDelay,
	}
	var store state.Store
	if cfg.Embedded() {
		store = memory.New(time.Now)
		log.Info().Msg("embedded mode: in-memory state, one node (set SWITCHBOARD_REDIS_URL to join a cluster)")
	} else {
		// Before the first client: go-redis's dial errors become rate-limited
		// JSON lines.
		redislog.Install(redislog.New(log, 5*time.Second))
		client, err := redisClient(cfg)
		if err != nil {
			return err
		}
		defer client.Close() // after the store and the adapter that share it
		rs := stateredis.New(client, stateredis.Options{})
		pctx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
		if err := rs.Preload(pctx); err != nil {
			log.Warn().Err(err).Msg("preload Redis scripts (they load on first use)")
		}
		cancel()
		store = rs
		b := adapter.New(adapter.Config{Client: client, Sharded: cfg.RedisShardedPubSub, RequestTimeout: cfg.RequestTimeout, ProbeInterval: cfg.ProbeInterval, Logger: log})
		opts.Adapter = b
		opts.AdapterHealthy = b.Healthy
		defer b.Close()
	}
	defer store.Close()
	opts.Store = store

	n, err := node.New(opts)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	if cfg.DebugAddr != "" {
		stop, err := serveProfiler(cfg.DebugAddr, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	log.Info().Str("config", cfg.String()).Msg("starting")
	errc := make(chan error, 1)
	go func() { errc <- n.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info().Dur("drain_timeout", cfg.DrainTimeout).Msg("draining")
	if err := n.Shutdown(context.Background()); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Warn().Err(err).Msg("shutdown")
	}
	log.Info().Msg("stopped")
	return nil
}

// serveProfiler serves net/http/pprof on its own listener, so the profiler
// is never reachable through the public port. stop closes it.
func serveProfiler(addr string, log zerolog.Logger) (stop func(), err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	log.Warn().Str("addr", l.Addr().String()).Msg("profiler listening (SWITCHBOARD_DEBUG_ADDR); keep it off public networks")
	return func() { _ = srv.Close() }, nil
}

func redisClient(cfg config.Config) (goredis.UniversalClient, error) {
	// ContextTimeoutEnabled makes a hung (not stopped) Redis answer at the
	// request deadline, so acks say unavailable in time.
	switch {
	case len(cfg.RedisClusterAddrs) > 0:
		return goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: cfg.RedisClusterAddrs, ContextTimeoutEnabled: true,
			Dialer: redisDialer(0)}), nil
	case len(cfg.RedisSentinelAddrs) > 0:
		return goredis.NewFailoverClient(&goredis.FailoverOptions{MasterName: cfg.RedisSentinelMaster,
			SentinelAddrs: cfg.RedisSentinelAddrs, ContextTimeoutEnabled: true, Dialer: redisDialer(0)}), nil
	}
	o, err := goredis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("SWITCHBOARD_REDIS_URL: %w", err)
	}
	o.ContextTimeoutEnabled = true
	if o.TLSConfig == nil {
		o.Dialer = redisDialer(o.DialTimeout) // a dial_timeout in the URL applies
	}
	return goredis.NewClient(o), nil
}

// redisDialer dials Redis as go-redis does without TLS (a 5 s dial timeout
// unless timeout is set, a 5-minute keep-alive) and makes the connection's
// reads and writes raw system calls (internal/rawio): a node's Redis
// traffic is many small commands and replies, and through the net package
// each could cost a thread hand-off under load.
func redisDialer(timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return rawio.Dialer(&net.Dialer{Timeout: timeout, KeepAlive: 5 * time.Minute})
}

func serviceConfig(c config.Config) service.Config {
	s := service.DefaultConfig()
	s.NodeID = c.NodeID
	s.RingTimeout = c.RingTimeout
	s.PresenceTTL = c.PresenceTTL
	s.PresenceGrace = c.PresenceGrace
	s.AdmissionCooldown = c.AdmissionCooldown
	s.MeetingRetention = c.MeetingRetention
	s.MaxCallLength = c.MaxCallLength
	s.GuestSessionTTL = c.GuestSessionTTL
	s.ReminderLead = c.ReminderLead
	s.MaxParticipants = c.MaxParticipants
	s.MaxRecipients = c.MaxRecipients
	s.MaxInviteLive = c.MaxInviteLive
	s.MaxConnsPerUser = c.MaxConnsPerUser
	s.MaxTitleBytes = c.MaxTitleBytes
	s.MaxDescriptionBytes = c.MaxDescriptionBytes
	s.MaxDisplayNameBytes = c.MaxDisplayNameBytes
	s.MaxEnvelopeBytes = c.MaxEnvelopeBytes
	s.MaxPresenceQuery = c.MaxPresenceQuery
	return s
}

func gatewayConfig(c config.Config) gateway.Config {
	g := gateway.DefaultConfig()
	g.RequestTimeout = c.RequestTimeout
	g.MaxPayloadBytes = c.MaxPayloadBytes
	g.EventsPerSecond = float64(c.EventsPerSecond)
	g.EventBurst = c.EventBurst
	g.PresenceGrace = c.PresenceGrace
	g.PresenceTTL = c.PresenceTTL
	if c.SweepInterval > 0 {
		g.SweepInterval = c.SweepInterval
	}
	return g
}
