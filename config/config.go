// Package config holds every setting of a Switchboard gateway node.
//
// Each setting is an environment variable SWITCHBOARD_<NAME> and a flag
// --<name> (lower case, underscores as dashes): SWITCHBOARD_RING_TIMEOUT and
// --ring-timeout. A flag overrides the environment, which overrides the
// default. Durations are Go duration strings ("60s", "1m30s", "168h").
//
// One declarative table, settings, drives parsing (Load), the flag set, the
// documentation (Markdown, Usage) and the redacted start-up line (String),
// so that none of them can drift from the others.
package config

import (
	"time"
)

// EnvPrefix starts the name of every environment variable.
const EnvPrefix = "SWITCHBOARD_"

// Config is the complete configuration of a node. Load returns it validated;
// its zero value is not usable (use Load or Default).
type Config struct {
	// Addr is the listen address of Socket.IO, REST, health and metrics.
	Addr string
	// NodeID names this node in the cluster; unique per node.
	NodeID string
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// DebugAddr, when set, is the listen address of the Go profiler
	// (net/http/pprof); empty means off.
	DebugAddr string
	// GCQuietPercent is the collector's GOGC while the node is quiet
	// (internal/gctune).
	GCQuietPercent int
	// GCMinHeadroomMiB is the least the heap may grow between collections
	// while the node is busy (internal/gctune); 0: off.
	GCMinHeadroomMiB int

	// RedisURL is a redis:// or rediss:// URL; empty (with no cluster and
	// no sentinel) means embedded in-memory mode.
	RedisURL string
	// RedisClusterAddrs are host:port seeds of a Redis Cluster.
	RedisClusterAddrs []string
	// RedisSentinelAddrs are host:port of Redis Sentinels.
	RedisSentinelAddrs []string
	// RedisSentinelMaster is the master name the Sentinels watch.
	RedisSentinelMaster string
	// RedisShardedPubSub uses SSUBSCRIBE/SPUBLISH for room channels.
	RedisShardedPubSub bool
	// WSFrameSharing serves websockets with our transport (internal/wstransport);
	// false, with the socket.io library's.
	WSFrameSharing bool
	// WSMaxQueueBytes bounds what a websocket client may fall behind.
	WSMaxQueueBytes int
	// WSBroadcastDelay is how long a large fan-out's frames may wait to
	// share a write (internal/wstransport's Builder.BroadcastDelay); 0: off.
	WSBroadcastDelay time.Duration

	// JWTSecret is the HS256 shared secret.
	JWTSecret string
	// JWTPublicKey is the path of a PEM RSA or EC P-256 public key.
	JWTPublicKey string
	// JWTJWKS is the path of a JWKS file.
	JWTJWKS string
	// JWTIssuer, when set, is the required "iss" of member tokens.
	JWTIssuer string
	// JWTAudience, when set, must be among the "aud" of member tokens.
	JWTAudience string
	// JWTClockSkew is the tolerance for exp, nbf and iat.
	JWTClockSkew time.Duration
	// JWTReloadInterval is how often the key file is checked for changes.
	JWTReloadInterval time.Duration

	// RingTimeout: a recipient still ringing after it is missed.
	RingTimeout time.Duration
	// Heartbeat is the client heartbeat interval (informational; it bounds
	// PresenceTTL from below).
	Heartbeat time.Duration
	// PresenceTTL: a device without heartbeat for this long goes offline.
	PresenceTTL time.Duration
	// PresenceGrace delays every online → offline broadcast.
	PresenceGrace time.Duration
	// AdmissionCooldown: a declined guest may ask again after it.
	AdmissionCooldown time.Duration
	// GuestSessionTTL is the maximum lifetime of a guest session.
	GuestSessionTTL time.Duration
	// MeetingRetention: scheduled meetings are kept until end + retention.
	MeetingRetention time.Duration
	// MaxCallLength: an instant call ends at most this long after start.
	MaxCallLength time.Duration
	// ReminderLead: meeting:reminder is sent this long before the start.
	ReminderLead time.Duration
	// RequestTimeout bounds one event or REST request on the state store.
	RequestTimeout time.Duration
	// NodeLease is the TTL of the node's registration.
	NodeLease time.Duration
	// NodeRefresh is how often the lease is renewed; below NodeLease.
	NodeRefresh time.Duration
	// DrainTimeout: on SIGTERM the node exits within it.
	DrainTimeout time.Duration
	// JobPollInterval is how often due scheduled jobs are polled.
	JobPollInterval time.Duration
	// SweepInterval is how often local presence and socket upkeep runs.
	SweepInterval time.Duration
	// ProbeInterval is how often each pub/sub connection probes itself.
	ProbeInterval time.Duration

	// MaxPayloadBytes bounds one client event.
	MaxPayloadBytes int
	// MaxParticipants bounds the participants of a meeting.
	MaxParticipants int
	// MaxRecipients bounds the recipients of one call:notify.
	MaxRecipients int
	// MaxInviteLive bounds the user ids of one meeting:invite-live.
	MaxInviteLive int
	// EventsPerSecond is the sustained event rate per socket.
	EventsPerSecond int
	// EventBurst is the event burst per socket.
	EventBurst int
	// MaxConnsPerUser bounds the simultaneous connections of a user.
	MaxConnsPerUser int
	// MaxTitleBytes bounds a meeting title.
	MaxTitleBytes int
	// MaxDescriptionBytes bounds a meeting description.
	MaxDescriptionBytes int
	// MaxDisplayNameBytes bounds a display name.
	MaxDisplayNameBytes int
	// MaxEnvelopeBytes bounds one relayed or per-recipient envelope.
	MaxEnvelopeBytes int
	// MaxPresenceQuery bounds the user ids of one presence query.
	MaxPresenceQuery int
}

// Embedded reports whether no Redis is configured: the node keeps its state
// in memory and runs alone.
func (c Config) Embedded() bool {
	return c.RedisURL == "" && len(c.RedisClusterAddrs) == 0 && len(c.RedisSentinelAddrs) == 0
}

// Default returns the defaults of every setting, with a generated node id,
// as Load does with no flags and an empty environment.
func Default() Config {
	c, err := Load(nil, func(string) string { return "" })
	if err != nil {
		// The defaults are constants of the settings table; a failure is a
		// programming error caught by the package tests.
		panic("config: the defaults do not validate: " + err.Error())
	}
	return c
}
