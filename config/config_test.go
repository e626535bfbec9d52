package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/auth"
)

// envOf returns a getenv over m.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// wantDefaults is the configuration of SPEC 7 and 8 with nothing set;
// NodeID is generated and checked separately.
func wantDefaults() Config {
	return Config{
		Addr:                ":3000",
		GCQuietPercent:      25,
		GCMinHeadroomMiB:    32,
		WSFrameSharing:      true,
		WSMaxQueueBytes:     8 << 20,
		LogLevel:            "info",
		JWTClockSkew:        30 * time.Second,
		JWTReloadInterval:   30 * time.Second,
		RingTimeout:         60 * time.Second,
		Heartbeat:           60 * time.Second,
		PresenceTTL:         120 * time.Second,
		PresenceGrace:       5 * time.Second,
		AdmissionCooldown:   5 * time.Second,
		GuestSessionTTL:     24 * time.Hour,
		MeetingRetention:    7 * 24 * time.Hour,
		MaxCallLength:       24 * time.Hour,
		ReminderLead:        15 * time.Minute,
		RequestTimeout:      5 * time.Second,
		NodeLease:           10 * time.Second,
		NodeRefresh:         2 * time.Second,
		DrainTimeout:        20 * time.Second,
		JobPollInterval:     250 * time.Millisecond,
		SweepInterval:       time.Second,
		ProbeInterval:       5 * time.Second,
		MaxPayloadBytes:     64 << 10,
		MaxParticipants:     256,
		MaxRecipients:       64,
		MaxInviteLive:       100,
		EventsPerSecond:     20,
		EventBurst:          40,
		MaxConnsPerUser:     20,
		MaxTitleBytes:       4 << 10,
		MaxDescriptionBytes: 16 << 10,
		MaxDisplayNameBytes: 1 << 10,
		MaxEnvelopeBytes:    64 << 10,
		MaxPresenceQuery:    500,
	}
}

var generatedNodeID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,48}-[0-9a-f]{8}$`)

func TestDefaults(t *testing.T) {
	for name, load := range map[string]func() (Config, error){
		"Load":    func() (Config, error) { return Load(nil, envOf(nil)) },
		"Default": func() (Config, error) { return Default(), nil },
	} {
		t.Run(name, func(t *testing.T) {
			c, err := load()
			if err != nil {
				t.Fatal(err)
			}
			if !generatedNodeID.MatchString(c.NodeID) {
				t.Fatalf("generated NodeID %q does not look like host-suffix", c.NodeID)
			}
			c.NodeID = ""
			if want := wantDefaults(); !reflect.DeepEqual(c, want) {
				t.Fatalf("defaults\n got %s\nwant %s", c, want)
			}
			if !c.Embedded() {
				t.Fatal("defaults are not embedded mode")
			}
		})
	}
	a, b := Default(), Default()
	if a.NodeID == b.NodeID {
		t.Fatalf("two generated node ids are equal: %q", a.NodeID)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	pem := filepath.Join(dir, "public.pem")
	if err := os.WriteFile(pem, []byte("-----BEGIN PUBLIC KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want func(c *Config) // applied to the defaults
	}{
		{name: "env strings", env: map[string]string{
			"SWITCHBOARD_ADDR": "127.0.0.1:8080", "SWITCHBOARD_NODE_ID": "switchboard-7d9f-abcde",
			"SWITCHBOARD_LOG_LEVEL": "DEBUG", "SWITCHBOARD_JWT_SECRET": " secret with spaces, 32 bytes or more ",
			"SWITCHBOARD_JWT_ISSUER": "https://id.example", "SWITCHBOARD_JWT_AUDIENCE": "switchboard",
		}, want: func(c *Config) {
			c.Addr, c.NodeID, c.LogLevel = "127.0.0.1:8080", "switchboard-7d9f-abcde", "debug"
			c.JWTSecret = " secret with spaces, 32 bytes or more " // secrets are taken byte for byte
			c.JWTIssuer, c.JWTAudience = "https://id.example", "switchboard"
		}},
		{name: "env durations and limits", env: map[string]string{
			"SWITCHBOARD_RING_TIMEOUT": "45s", "SWITCHBOARD_PRESENCE_TTL": "3m", "SWITCHBOARD_PRESENCE_GRACE": "2s",
			"SWITCHBOARD_ADMISSION_COOLDOWN": "10s", "SWITCHBOARD_NODE_LEASE": "15s", "SWITCHBOARD_NODE_REFRESH": "3s",
			"SWITCHBOARD_DRAIN_TIMEOUT": "1m", "SWITCHBOARD_REQUEST_TIMEOUT": "2s", "SWITCHBOARD_HEARTBEAT": "30s",
			"SWITCHBOARD_GUEST_SESSION_TTL": "12h", "SWITCHBOARD_MEETING_RETENTION": "720h",
			"SWITCHBOARD_MAX_CALL_LENGTH": "8h", "SWITCHBOARD_REMINDER_LEAD": "5m", "SWITCHBOARD_JOB_POLL": "100ms",
			"SWITCHBOARD_SWEEP_INTERVAL": "2s", "SWITCHBOARD_PROBE_INTERVAL": "10s", "SWITCHBOARD_JWT_CLOCK_SKEW": "1m",
			"SWITCHBOARD_JWT_RELOAD_INTERVAL": "5m", "SWITCHBOARD_WS_BROADCAST_DELAY": "2ms",
			"SWITCHBOARD_MAX_PAYLOAD_BYTES": "1048576", "SWITCHBOARD_MAX_PARTICIPANTS": "1000",
			"SWITCHBOARD_MAX_RECIPIENTS": "10", "SWITCHBOARD_MAX_INVITE_LIVE": "5", "SWITCHBOARD_EVENTS_PER_SECOND": "50",
			"SWITCHBOARD_EVENT_BURST": "100", "SWITCHBOARD_MAX_CONNS_PER_USER": "3", "SWITCHBOARD_MAX_TITLE_BYTES": "100",
			"SWITCHBOARD_MAX_DESCRIPTION_BYTES": "200", "SWITCHBOARD_MAX_DISPLAY_NAME_BYTES": "300",
			"SWITCHBOARD_MAX_ENVELOPE_BYTES": "400", "SWITCHBOARD_MAX_PRESENCE_QUERY": "50",
			"SWITCHBOARD_GC_MIN_HEADROOM_MIB": "0",
		}, want: func(c *Config) {
			c.RingTimeout, c.PresenceTTL, c.PresenceGrace = 45*time.Second, 3*time.Minute, 2*time.Second
			c.AdmissionCooldown, c.NodeLease, c.NodeRefresh = 10*time.Second, 15*time.Second, 3*time.Second
			c.DrainTimeout, c.RequestTimeout, c.Heartbeat = time.Minute, 2*time.Second, 30*time.Second
			c.GuestSessionTTL, c.MeetingRetention, c.MaxCallLength = 12*time.Hour, 720*time.Hour, 8*time.Hour
			c.ReminderLead, c.JobPollInterval, c.SweepInterval = 5*time.Minute, 100*time.Millisecond, 2*time.Second
			c.ProbeInterval, c.JWTClockSkew, c.JWTReloadInterval = 10*time.Second, time.Minute, 5*time.Minute
			c.WSBroadcastDelay = 2 * time.Millisecond
			c.MaxPayloadBytes, c.MaxParticipants, c.MaxRecipients, c.MaxInviteLive = 1<<20, 1000, 10, 5
			c.EventsPerSecond, c.EventBurst, c.MaxConnsPerUser = 50, 100, 3
			c.MaxTitleBytes, c.MaxDescriptionBytes, c.MaxDisplayNameBytes = 100, 200, 300
			c.MaxEnvelopeBytes, c.MaxPresenceQuery = 400, 50
			c.GCMinHeadroomMiB = 0 // off
		}},
		{name: "redis URL", env: map[string]string{"SWITCHBOARD_REDIS_URL": "rediss://:pw@redis.example:6380/2"},
			want: func(c *Config) { c.RedisURL = "rediss://:pw@redis.example:6380/2" }},
		{name: "redis cluster with blanks", env: map[string]string{"SWITCHBOARD_REDIS_CLUSTER_ADDRS": " r0:6379, r1:6379,,[::1]:7000 ",
			"SWITCHBOARD_REDIS_SHARDED_PUBSUB": "true"},
			want: func(c *Config) {
				c.RedisClusterAddrs = []string{"r0:6379", "r1:6379", "[::1]:7000"}
				c.RedisShardedPubSub = true
			}},
		{name: "redis sentinel", env: map[string]string{"SWITCHBOARD_REDIS_SENTINEL_ADDRS": "s0:26379,s1:26379",
			"SWITCHBOARD_REDIS_SENTINEL_MASTER": "mymaster"},
			want: func(c *Config) {
				c.RedisSentinelAddrs = []string{"s0:26379", "s1:26379"}
				c.RedisSentinelMaster = "mymaster"
			}},
		{name: "public key file", env: map[string]string{"SWITCHBOARD_JWT_PUBLIC_KEY": pem},
			want: func(c *Config) { c.JWTPublicKey = pem }},
		{name: "JWKS file", env: map[string]string{"SWITCHBOARD_JWT_JWKS": pem},
			want: func(c *Config) { c.JWTJWKS = pem }},
		{name: "blank env counts as unset", env: map[string]string{"SWITCHBOARD_RING_TIMEOUT": "  ", "SWITCHBOARD_ADDR": ""},
			want: func(c *Config) {}},
		{name: "flags", args: []string{"--addr", ":4000", "--ring-timeout=30s", "-max-participants", "10",
			"--redis-url", "redis://localhost:6379", "--redis-sharded-pubsub", "--log-level", "warn"},
			want: func(c *Config) {
				c.Addr, c.RingTimeout, c.MaxParticipants = ":4000", 30*time.Second, 10
				c.RedisURL, c.RedisShardedPubSub, c.LogLevel = "redis://localhost:6379", true, "warn"
			}},
		{name: "flags override env",
			args: []string{"--ring-timeout", "30s", "--jwt-secret", "from-flag-0123456789abcdef0123456789", "--redis-sharded-pubsub=false"},
			env: map[string]string{"SWITCHBOARD_RING_TIMEOUT": "90s", "SWITCHBOARD_PRESENCE_GRACE": "1s",
				"SWITCHBOARD_JWT_SECRET": "from-env-0123456789abcdef0123456789", "SWITCHBOARD_REDIS_URL": "redis://r:6379",
				"SWITCHBOARD_REDIS_SHARDED_PUBSUB": "true"},
			want: func(c *Config) {
				c.RingTimeout, c.PresenceGrace, c.JWTSecret = 30*time.Second, time.Second, "from-flag-0123456789abcdef0123456789"
				c.RedisURL = "redis://r:6379"
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Load(tc.args, envOf(tc.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := wantDefaults()
			tc.want(&want)
			if want.NodeID == "" {
				if !generatedNodeID.MatchString(got.NodeID) {
					t.Fatalf("generated NodeID %q", got.NodeID)
				}
				got.NodeID = ""
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("\n got %#v\nwant %#v", got, want)
			}
			if got.JWTSecret != want.JWTSecret {
				t.Fatal("secret differs") // %#v above redacts it
			}
		})
	}
}

func TestEmbedded(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want bool
	}{
		{nil, true},
		{map[string]string{"SWITCHBOARD_REDIS_URL": "redis://r:6379"}, false},
		{map[string]string{"SWITCHBOARD_REDIS_CLUSTER_ADDRS": "r:6379"}, false},
		{map[string]string{"SWITCHBOARD_REDIS_SENTINEL_ADDRS": "s:26379", "SWITCHBOARD_REDIS_SENTINEL_MASTER": "m"}, false},
	} {
		c, err := Load(nil, envOf(tc.env))
		if err != nil {
			t.Fatal(err)
		}
		if c.Embedded() != tc.want {
			t.Errorf("%v: Embedded() = %v, want %v", tc.env, c.Embedded(), tc.want)
		}
	}
}

func TestValidationErrors(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(keyFile, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want []string // substrings of the error, one per expected problem
	}{
		{name: "bad duration", env: map[string]string{"SWITCHBOARD_RING_TIMEOUT": "soon"},
			want: []string{`SWITCHBOARD_RING_TIMEOUT: "soon" is not a duration`}},
		{name: "duration without unit", env: map[string]string{"SWITCHBOARD_PRESENCE_GRACE": "5"},
			want: []string{`SWITCHBOARD_PRESENCE_GRACE: "5" is not a duration`}},
		{name: "zero duration", env: map[string]string{"SWITCHBOARD_DRAIN_TIMEOUT": "0s"},
			want: []string{`SWITCHBOARD_DRAIN_TIMEOUT: "0s" must be positive`}},
		{name: "negative duration", env: map[string]string{"SWITCHBOARD_ADMISSION_COOLDOWN": "-5s"},
			want: []string{`SWITCHBOARD_ADMISSION_COOLDOWN: "-5s" must be positive`}},
		{name: "bad duration from flag names the flag", args: []string{"--ring-timeout", "x"},
			want: []string{`--ring-timeout: "x" is not a duration`}},
		{name: "empty flag value", args: []string{"--node-lease="},
			want: []string{`--node-lease: "" is not a duration`}},
		{name: "bad int", env: map[string]string{"SWITCHBOARD_MAX_PARTICIPANTS": "many"},
			want: []string{`SWITCHBOARD_MAX_PARTICIPANTS: "many" is not a positive whole number`}},
		{name: "zero int", env: map[string]string{"SWITCHBOARD_EVENT_BURST": "0"},
			want: []string{`SWITCHBOARD_EVENT_BURST: "0" is not a positive whole number`}},
		{name: "negative int", env: map[string]string{"SWITCHBOARD_MAX_CONNS_PER_USER": "-1"},
			want: []string{`SWITCHBOARD_MAX_CONNS_PER_USER: "-1" is not a positive whole number`}},
		{name: "negative int where 0 is off", env: map[string]string{"SWITCHBOARD_GC_MIN_HEADROOM_MIB": "-1"},
			want: []string{`SWITCHBOARD_GC_MIN_HEADROOM_MIB: "-1" is not a whole number, 0 or more`}},
		{name: "bad bool", env: map[string]string{"SWITCHBOARD_REDIS_SHARDED_PUBSUB": "yes", "SWITCHBOARD_REDIS_URL": "redis://r:1"},
			want: []string{`SWITCHBOARD_REDIS_SHARDED_PUBSUB: "yes" is not true or false`}},
		{name: "presence TTL not above heartbeat", env: map[string]string{"SWITCHBOARD_PRESENCE_TTL": "60s"},
			want: []string{"SWITCHBOARD_PRESENCE_TTL (1m0s) must be longer than SWITCHBOARD_HEARTBEAT (1m0s)"}},
		{name: "heartbeat flag above presence TTL", args: []string{"--heartbeat", "5m"},
			want: []string{"SWITCHBOARD_PRESENCE_TTL (2m0s) must be longer than --heartbeat (5m0s)"}},
		{name: "websocket queue below two payloads", env: map[string]string{"SWITCHBOARD_WS_MAX_QUEUE_BYTES": "100000"},
			want: []string{"SWITCHBOARD_WS_MAX_QUEUE_BYTES (100000) must be at least twice SWITCHBOARD_MAX_PAYLOAD_BYTES (65536)"}},
		{name: "negative broadcast delay", env: map[string]string{"SWITCHBOARD_WS_BROADCAST_DELAY": "-1ms"},
			want: []string{`SWITCHBOARD_WS_BROADCAST_DELAY: "-1ms" must not be negative`}},
		{name: "broadcast delay too long", env: map[string]string{"SWITCHBOARD_WS_BROADCAST_DELAY": "2s"},
			want: []string{"SWITCHBOARD_WS_BROADCAST_DELAY (2s) must be at most 100ms: members would see presence and meeting events lag"}},
		{name: "node refresh not below lease", env: map[string]string{"SWITCHBOARD_NODE_REFRESH": "10s"},
			want: []string{"SWITCHBOARD_NODE_REFRESH (10s) must be shorter than SWITCHBOARD_NODE_LEASE (10s)"}},
		{name: "lease below refresh", env: map[string]string{"SWITCHBOARD_NODE_LEASE": "1s"},
			want: []string{"SWITCHBOARD_NODE_REFRESH (2s) must be shorter than SWITCHBOARD_NODE_LEASE (1s)"}},
		{name: "secret and public key", env: map[string]string{"SWITCHBOARD_JWT_SECRET": "s3cr3t-value-0123456789abcdef0123456789", "SWITCHBOARD_JWT_PUBLIC_KEY": keyFile},
			want: []string{"set only one of SWITCHBOARD_JWT_SECRET, SWITCHBOARD_JWT_PUBLIC_KEY"}},
		{name: "all three key sources", env: map[string]string{"SWITCHBOARD_JWT_SECRET": "s3cr3t-value-0123456789abcdef0123456789",
			"SWITCHBOARD_JWT_PUBLIC_KEY": keyFile, "SWITCHBOARD_JWT_JWKS": keyFile},
			want: []string{"set only one of SWITCHBOARD_JWT_SECRET, SWITCHBOARD_JWT_PUBLIC_KEY, SWITCHBOARD_JWT_JWKS"}},
		{name: "missing key file", env: map[string]string{"SWITCHBOARD_JWT_JWKS": filepath.Join(dir, "nope.json")},
			want: []string{"SWITCHBOARD_JWT_JWKS: cannot read", "no such file"}},
		{name: "key path is a directory", env: map[string]string{"SWITCHBOARD_JWT_PUBLIC_KEY": dir},
			want: []string{"SWITCHBOARD_JWT_PUBLIC_KEY: ", "is not a regular file"}},
		{name: "redis URL scheme", env: map[string]string{"SWITCHBOARD_REDIS_URL": "http://user:hunter2@r:6379"},
			want: []string{"SWITCHBOARD_REDIS_URL: the scheme must be redis:// or rediss://"}},
		{name: "redis URL without scheme", env: map[string]string{"SWITCHBOARD_REDIS_URL": "localhost:6379"},
			want: []string{"SWITCHBOARD_REDIS_URL: the scheme must be"}},
		{name: "redis URL unparsable", env: map[string]string{"SWITCHBOARD_REDIS_URL": "redis://:hunter2@r:6379/%zz"},
			want: []string{"SWITCHBOARD_REDIS_URL: is not a valid URL"}},
		{name: "redis URL without host", env: map[string]string{"SWITCHBOARD_REDIS_URL": "redis:///0"},
			want: []string{"SWITCHBOARD_REDIS_URL: the URL has no host"}},
		{name: "debug addr not host:port", env: map[string]string{"SWITCHBOARD_DEBUG_ADDR": "6060"},
			want: []string{`SWITCHBOARD_DEBUG_ADDR: "6060" is not host:port`}},
		{name: "debug addr same as addr", env: map[string]string{"SWITCHBOARD_DEBUG_ADDR": ":3000"},
			want: []string{`SWITCHBOARD_DEBUG_ADDR must differ from SWITCHBOARD_ADDR`}},
		{name: "cluster addr without port", env: map[string]string{"SWITCHBOARD_REDIS_CLUSTER_ADDRS": "r0:6379,r1"},
			want: []string{`SWITCHBOARD_REDIS_CLUSTER_ADDRS: "r1" is not host:port`}},
		{name: "cluster addr bad port", env: map[string]string{"SWITCHBOARD_REDIS_CLUSTER_ADDRS": "r0:http"},
			want: []string{`SWITCHBOARD_REDIS_CLUSTER_ADDRS: "r0:http" has no valid port`}},
		{name: "cluster addr without host", env: map[string]string{"SWITCHBOARD_REDIS_CLUSTER_ADDRS": ":6379"},
			want: []string{`SWITCHBOARD_REDIS_CLUSTER_ADDRS: ":6379" has no host`}},
		{name: "sentinel without master", env: map[string]string{"SWITCHBOARD_REDIS_SENTINEL_ADDRS": "s:26379"},
			want: []string{"SWITCHBOARD_REDIS_SENTINEL_ADDRS needs SWITCHBOARD_REDIS_SENTINEL_MASTER"}},
		{name: "master without sentinels", env: map[string]string{"SWITCHBOARD_REDIS_SENTINEL_MASTER": "m"},
			want: []string{"SWITCHBOARD_REDIS_SENTINEL_MASTER is set but SWITCHBOARD_REDIS_SENTINEL_ADDRS is not"}},
		{name: "sentinel addr bad", env: map[string]string{"SWITCHBOARD_REDIS_SENTINEL_ADDRS": "s", "SWITCHBOARD_REDIS_SENTINEL_MASTER": "m"},
			want: []string{`SWITCHBOARD_REDIS_SENTINEL_ADDRS: "s" is not host:port`}},
		{name: "URL and cluster", env: map[string]string{"SWITCHBOARD_REDIS_URL": "redis://r:6379", "SWITCHBOARD_REDIS_CLUSTER_ADDRS": "r:6379"},
			want: []string{"set only one of SWITCHBOARD_REDIS_URL, SWITCHBOARD_REDIS_CLUSTER_ADDRS"}},
		{name: "cluster and sentinel", args: []string{"--redis-sentinel-addrs", "s:1"},
			env:  map[string]string{"SWITCHBOARD_REDIS_CLUSTER_ADDRS": "r:6379", "SWITCHBOARD_REDIS_SENTINEL_MASTER": "m"},
			want: []string{"set only one of SWITCHBOARD_REDIS_CLUSTER_ADDRS, --redis-sentinel-addrs"}},
		{name: "short JWT secret", env: map[string]string{"SWITCHBOARD_JWT_SECRET": "CHANGE-ME"},
			want: []string{"SWITCHBOARD_JWT_SECRET: is shorter than 32 bytes"}},
		{name: "development key as JWT secret", args: []string{"--jwt-secret", auth.DevelopmentSecret},
			want: []string{"--jwt-secret: is the published development key"}},
		{name: "sharded pub/sub without redis", env: map[string]string{"SWITCHBOARD_REDIS_SHARDED_PUBSUB": "true"},
			want: []string{"SWITCHBOARD_REDIS_SHARDED_PUBSUB needs a Redis"}},
		{name: "unknown log level", env: map[string]string{"SWITCHBOARD_LOG_LEVEL": "verbose"},
			want: []string{`SWITCHBOARD_LOG_LEVEL: "verbose" is not one of debug, info, warn, error`}},
		{name: "bad listen address", env: map[string]string{"SWITCHBOARD_ADDR": "3000"},
			want: []string{`SWITCHBOARD_ADDR: "3000" is not host:port`}},
		{name: "listen port out of range", env: map[string]string{"SWITCHBOARD_ADDR": ":70000"},
			want: []string{`SWITCHBOARD_ADDR: ":70000" has no valid port`}},
		{name: "node id with space", env: map[string]string{"SWITCHBOARD_NODE_ID": "node 1"},
			want: []string{`SWITCHBOARD_NODE_ID: "node 1" may hold only`}},
		{name: "node id with hash tag", env: map[string]string{"SWITCHBOARD_NODE_ID": "node{1}"},
			want: []string{`SWITCHBOARD_NODE_ID: "node{1}" may hold only`}},
		{name: "node id too long", env: map[string]string{"SWITCHBOARD_NODE_ID": strings.Repeat("n", maxNodeIDBytes+1)},
			want: []string{"SWITCHBOARD_NODE_ID: ", "is longer than 128 bytes"}},
		{name: "unknown flag", args: []string{"--ring-timout", "5s"},
			want: []string{"flag provided but not defined: -ring-timout"}},
		{name: "positional argument", args: []string{"serve"},
			want: []string{`unexpected argument "serve"`}},
		{name: "every problem at once",
			env: map[string]string{
				"SWITCHBOARD_RING_TIMEOUT": "x", "SWITCHBOARD_MAX_RECIPIENTS": "0", "SWITCHBOARD_LOG_LEVEL": "loud",
				"SWITCHBOARD_NODE_REFRESH": "1m", "SWITCHBOARD_REDIS_SENTINEL_ADDRS": "s:1",
			},
			want: []string{"5 problems", "SWITCHBOARD_RING_TIMEOUT", "SWITCHBOARD_MAX_RECIPIENTS", "SWITCHBOARD_LOG_LEVEL",
				"SWITCHBOARD_NODE_REFRESH (1m0s) must be shorter", "SWITCHBOARD_REDIS_SENTINEL_MASTER"}},
		{name: "bad value suppresses follow-on relation problem",
			env:  map[string]string{"SWITCHBOARD_PRESENCE_TTL": "forever"},
			want: []string{`SWITCHBOARD_PRESENCE_TTL: "forever" is not a duration`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(tc.args, envOf(tc.env))
			if err == nil {
				t.Fatalf("Load accepted: %s", c)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %q does not match ErrInvalid", err)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not *Error", err)
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q\ndoes not contain %q", msg, w)
				}
			}
			// Problems are counted: one per "want" line except for the
			// multi-problem case, which states its count.
			if !strings.Contains(tc.name, "every problem") && len(ce.Problems) != 1 {
				t.Errorf("got %d problems, want 1: %q", len(ce.Problems), ce.Problems)
			}
			for _, secret := range []string{"hunter2", "s3cr3t-value", "CHANGE-ME", auth.DevelopmentSecret} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q leaks a secret", msg)
				}
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help"} {
		_, err := Load([]string{arg}, envOf(map[string]string{"SWITCHBOARD_JWT_SECRET": "s3cr3t-value-0123456789abcdef0123456789"}))
		if !errors.Is(err, flag.ErrHelp) || errors.Is(err, ErrInvalid) {
			t.Fatalf("%s: %v, want flag.ErrHelp", arg, err)
		}
		msg := err.Error()
		for _, s := range settings {
			if !strings.Contains(msg, "--"+s.flag()+" ") || !strings.Contains(msg, s.env()) {
				t.Fatalf("usage lacks %s / --%s", s.env(), s.flag())
			}
		}
		if strings.Contains(msg, "s3cr3t-value-0123456789abcdef0123456789") {
			t.Fatal("usage prints the secret")
		}
	}
}

// TestTable checks the declarative table itself: every Config field is
// filled by exactly one setting, names and flags are unique and follow the
// naming rule, and every default parses.
func TestTable(t *testing.T) {
	var c Config
	v := reflect.ValueOf(&c).Elem()
	filled := make(map[uintptr]string)
	seen := make(map[string]bool)
	nameRule := regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$`)
	for _, s := range settings {
		if !nameRule.MatchString(s.name) {
			t.Errorf("setting name %q breaks the naming rule", s.name)
		}
		if seen[s.name] {
			t.Errorf("setting %s listed twice", s.name)
		}
		seen[s.name] = true
		if s.flag() != strings.ToLower(strings.ReplaceAll(s.name, "_", "-")) {
			t.Errorf("flag of %s is %q", s.name, s.flag())
		}
		if s.help == "" || !strings.HasSuffix(s.help, ".") {
			t.Errorf("setting %s has no full-sentence help", s.name)
		}
		ptr := reflect.ValueOf(s.field(&c)).Pointer()
		if prev, dup := filled[ptr]; dup {
			t.Errorf("settings %s and %s fill the same field", prev, s.name)
		}
		filled[ptr] = s.name
		if s.def != "" {
			var scratch Config
			if err := parseInto(s.field(&scratch), s.def, s.zero); err != nil {
				t.Errorf("default %q of %s %v", s.def, s.name, err)
			}
		}
		if s.redact != shown {
			if _, ok := s.field(&c).(*string); !ok {
				t.Errorf("redacted setting %s is not a string", s.name)
			}
		}
	}
	for i := range v.NumField() {
		if _, ok := filled[v.Field(i).Addr().Pointer()]; !ok {
			t.Errorf("Config.%s has no setting", v.Type().Field(i).Name)
		}
	}
}

// TestContractNames pins the names SPEC 8 says other tools rely on.
func TestContractNames(t *testing.T) {
	want := map[string]string{
		"SWITCHBOARD_ADDR": ":3000", "SWITCHBOARD_REDIS_URL": "", "SWITCHBOARD_JWT_SECRET": "",
		"SWITCHBOARD_JWT_PUBLIC_KEY": "", "SWITCHBOARD_JWT_JWKS": "", "SWITCHBOARD_REDIS_CLUSTER_ADDRS": "",
		"SWITCHBOARD_REDIS_SENTINEL_ADDRS": "", "SWITCHBOARD_REDIS_SENTINEL_MASTER": "", "SWITCHBOARD_NODE_ID": "",
		"SWITCHBOARD_LOG_LEVEL": "info", "SWITCHBOARD_RING_TIMEOUT": "60s", "SWITCHBOARD_PRESENCE_TTL": "120s",
		"SWITCHBOARD_PRESENCE_GRACE": "5s", "SWITCHBOARD_ADMISSION_COOLDOWN": "5s", "SWITCHBOARD_NODE_LEASE": "10s",
		"SWITCHBOARD_DRAIN_TIMEOUT": "20s",
	}
	for env, def := range want {
		i := slices.IndexFunc(settings, func(s setting) bool { return s.env() == env })
		if i < 0 {
			t.Errorf("%s is missing", env)
			continue
		}
		if settings[i].def != def {
			t.Errorf("%s defaults to %q, want %q", env, settings[i].def, def)
		}
	}
}

func TestRedaction(t *testing.T) {
	const secret = "s3cr3t-value-0123456789abcdef0123456789"
	c, err := Load(nil, envOf(map[string]string{
		"SWITCHBOARD_JWT_SECRET": secret,
		"SWITCHBOARD_REDIS_URL":  "rediss://default:hunter2@redis.example:6380/0?dial_timeout=3s&password=hunter3",
	}))
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	logger := zerolog.New(&logged)
	logger.Info().Object("config", c).Msg("starting")
	outputs := map[string]string{
		"String":  c.String(),
		"%v":      fmt.Sprintf("%v", c),
		"%+v":     fmt.Sprintf("%+v", c),
		"%#v":     fmt.Sprintf("%#v", c),
		"%s":      fmt.Sprintf("%s", c),
		"zerolog": logged.String(),
	}
	for name, out := range outputs {
		for _, leak := range []string{secret, "hunter2", "hunter3"} {
			if strings.Contains(out, leak) {
				t.Errorf("%s leaks %q: %s", name, leak, out)
			}
		}
		for _, want := range []string{"jwt_secret", "[redacted]", "redis.example:6380", "ring_timeout", "1m0s"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s lacks %q: %s", name, want, out)
			}
		}
	}
	r := c.Redacted()
	if r.JWTSecret != "[redacted]" || !strings.Contains(r.RedisURL, "default:xxxxx@redis.example:6380") {
		t.Fatalf("Redacted() = secret %q, url %q", r.JWTSecret, r.RedisURL)
	}
	if c.JWTSecret != secret {
		t.Fatal("Redacted changed the original")
	}

	// Without secrets, nothing claims to be redacted.
	d := Default()
	if strings.Contains(d.String(), "[redacted]") || strings.Contains(d.String(), "jwt_secret") {
		t.Fatalf("String of defaults shows an unset secret: %s", d)
	}
}

func TestMarkdown(t *testing.T) {
	md := Markdown()
	lines := strings.Split(strings.TrimSuffix(md, "\n"), "\n")
	if len(lines) != len(settings)+2 {
		t.Fatalf("%d lines for %d settings", len(lines), len(settings))
	}
	if lines[0] != "| Variable | Flag | Default | Meaning |" {
		t.Fatalf("header %q", lines[0])
	}
	for i, s := range settings {
		row := lines[i+2]
		if !strings.HasPrefix(row, "| `"+s.env()+"` | `--"+s.flag()+"` | ") || strings.Count(row, " | ") != 3 {
			t.Errorf("row %q", row)
		}
	}
	for _, want := range []string{"| `SWITCHBOARD_RING_TIMEOUT` | `--ring-timeout` | `60s` |", "| `SWITCHBOARD_REDIS_URL` | `--redis-url` | unset |",
		"| `SWITCHBOARD_NODE_ID` | `--node-id` | hostname + random suffix |"} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q", want)
		}
	}
}

// TestReadmeTable keeps the README's configuration table equal to
// Markdown(), when the README carries the markers.
func TestReadmeTable(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Skipf("no README: %v", err)
	}
	got, ok := readmeTable(string(data))
	if !ok {
		t.Skip("README.md has no <!-- config-table --> section")
	}
	if want := strings.TrimSpace(Markdown()); got != want {
		t.Fatalf("README.md configuration table differs from config.Markdown(); replace the section with:\n\n%s", want)
	}
}

// readmeTable returns the trimmed text between "<!-- config-table -->" and
// the next "<!-- /config-table -->" (or a second "<!-- config-table -->").
func readmeTable(readme string) (string, bool) {
	const open = "<!-- config-table -->"
	_, rest, ok := strings.Cut(readme, open)
	if !ok {
		return "", false
	}
	end := strings.Index(rest, "<!-- /config-table -->")
	if alt := strings.Index(rest, open); end < 0 || (alt >= 0 && alt < end) {
		end = alt
	}
	if end < 0 {
		return "", false
	}
	return strings.TrimSpace(rest[:end]), true
}

func TestReadmeTableMarkers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"a\n<!-- config-table -->\n| x |\n<!-- /config-table -->\nb", "| x |", true},
		{"a\n<!-- config-table -->\n| y |\n<!-- config-table -->\nb", "| y |", true},
		{"no markers", "", false},
		{"<!-- config-table --> unterminated", "", false},
	} {
		got, ok := readmeTable(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("readmeTable(%q) = %q, %v", tc.in, got, ok)
		}
	}
}
