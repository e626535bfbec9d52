package config

import "strings"

// redaction says how a setting's value is shown in String and Markdown.
type redaction int

const (
	// shown: the value is not sensitive.
	shown redaction = iota
	// secret: the value is never shown.
	secret
	// redisURL: the value is a URL whose password is masked.
	redisURL
)

// setting is one row of the declarative table.
type setting struct {
	// name is the suffix of the environment variable, SWITCHBOARD_<name>;
	// the flag is its lower-case, dashed form.
	name string
	// def is the default as text; "" means unset.
	def string
	// docDef replaces def in the documentation when the default is
	// computed (the node id).
	docDef string
	// help is one Markdown sentence (or two) on the meaning.
	help string
	// redact says whether the value may be shown.
	redact redaction
	// field returns a pointer to the Config field the setting fills:
	// *string, *[]string, *bool, *int or *time.Duration.
	field func(*Config) any
	// zero accepts 0 for a number or a duration (which must be positive
	// otherwise): the setting's "off".
	zero bool
}

// env returns the environment variable name.
func (s setting) env() string { return EnvPrefix + s.name }

// flag returns the flag name without dashes in front.
func (s setting) flag() string { return strings.ToLower(strings.ReplaceAll(s.name, "_", "-")) }

// settings is the single source of truth for every setting, in the order of
// the documentation. It is never modified.
var settings = []setting{
	// Node.
	{name: "ADDR", def: ":3000",
		help:  "Listen address (`host:port`) of Socket.IO, REST, health and metrics.",
		field: func(c *Config) any { return &c.Addr }},
	{name: "NODE_ID", docDef: "hostname + random suffix",
		help:  "Name of this node in the cluster; must differ between nodes. Letters, digits, `.`, `_`, `-`, `:`; at most 128 bytes.",
		field: func(c *Config) any { return &c.NodeID }},
	{name: "LOG_LEVEL", def: "info",
		help:  "`debug`, `info`, `warn` or `error`.",
		field: func(c *Config) any { return &c.LogLevel }},
	{name: "DEBUG_ADDR",
		help: "Listen address of the Go profiler (`/debug/pprof/`), e.g. `127.0.0.1:6060`; empty: off. " +
			"Separate from `SWITCHBOARD_ADDR` so it is never exposed with the public port; bind it to loopback.",
		field: func(c *Config) any { return &c.DebugAddr }},
	{name: "GC_QUIET_PERCENT", def: "25",
		help: "Go collector's `GOGC` while the node is quiet (it allocates less than a tenth of its live heap in 5 s, twice in a row, " +
			"with at least 64 MiB live): the free memory goes back to the system, and the heap may grow only this share before the next collection. " +
			"The first busy period puts the process's own `GOGC` back (100 unless set). At or above that `GOGC`: off.",
		field: func(c *Config) any { return &c.GCQuietPercent }},
	{name: "GC_MIN_HEADROOM_MIB", def: "32", zero: true,
		help: "Least the Go heap may grow between collections while the node is busy, in MiB: with a small live heap " +
			"(a node carrying calls keeps ~10 MiB) `GOGC=100` collects several times a second; the node raises `GOGC` " +
			"to give the heap this much (at most 1000, never below the process's own). Costs up to this much RSS. `0`: off.",
		field: func(c *Config) any { return &c.GCMinHeadroomMiB }},

	// Redis.
	{name: "REDIS_URL", redact: redisURL,
		help: "Redis holding the shared state, `redis://` or `rediss://` (TLS), with credentials and database in the URL. " +
			"With no Redis at all (no URL, cluster or sentinel): embedded in-memory mode, one node only.",
		field: func(c *Config) any { return &c.RedisURL }},
	{name: "REDIS_CLUSTER_ADDRS",
		help:  "Comma-separated `host:port` seeds of a Redis Cluster, instead of the URL.",
		field: func(c *Config) any { return &c.RedisClusterAddrs }},
	{name: "REDIS_SENTINEL_ADDRS",
		help:  "Comma-separated `host:port` of Redis Sentinels, instead of the URL; needs `SWITCHBOARD_REDIS_SENTINEL_MASTER`.",
		field: func(c *Config) any { return &c.RedisSentinelAddrs }},
	{name: "REDIS_SENTINEL_MASTER",
		help:  "Name of the master the Sentinels watch.",
		field: func(c *Config) any { return &c.RedisSentinelMaster }},
	{name: "REDIS_SHARDED_PUBSUB", def: "false",
		help: "Carry room broadcasts over sharded pub/sub (`SSUBSCRIBE`, Redis 7+), which spreads the load over a cluster's shards. " +
			"The Node `@socket.io/redis-emitter` and classic adapter are not heard in this mode.",
		field: func(c *Config) any { return &c.RedisShardedPubSub }},
	{name: "WS_FRAME_SHARING", def: "true",
		help: "Serve websockets with Switchboard's transport (`internal/wstransport`): a broadcast's frame is built once for all recipients " +
			"and written without the engine's per-packet path, a large fan-out's by writers beside it, several frames per write " +
			"(presence to 10,000 members in 0.2 s instead of seconds). " +
			"`false` serves them with the socket.io library's transport.",
		field: func(c *Config) any { return &c.WSFrameSharing }},
	{name: "WS_MAX_QUEUE_BYTES", def: "8388608",
		help: "Most bytes a websocket client may fall behind (frames queued because it does not read fast enough); " +
			"past it the connection is closed (`transport error`), so a stalled client cannot hold the node's memory. " +
			"Switchboard's transport only.",
		field: func(c *Config) any { return &c.WSMaxQueueBytes }},
	{name: "WS_BROADCAST_DELAY", def: "0s", zero: true,
		help: "How long a large fan-out's frames (to 8 or more of the node's sockets: presence, big meetings) may wait so that " +
			"the broadcasts a socket gets meanwhile share one write: fewer system calls for the node and fewer wake-ups for clients, " +
			"for at most this much more latency on those broadcasts. Events to a few sockets (a call's ring) are never held, " +
			"and carry the waiting frames with them. `0s`: off. At most `100ms`. Switchboard's transport only.",
		field: func(c *Config) any { return &c.WSBroadcastDelay }},

	// Member tokens.
	{name: "JWT_SECRET", redact: secret,
		help: "HS256 shared secret of member tokens (at least 32 random bytes). " +
			"With none of secret, public key and JWKS the node runs with the published, insecure development key.",
		field: func(c *Config) any { return &c.JWTSecret }},
	{name: "JWT_PUBLIC_KEY",
		help:  "Path of a PEM RSA (RS256) or EC P-256 (ES256) public key or certificate, instead of the secret.",
		field: func(c *Config) any { return &c.JWTPublicKey }},
	{name: "JWT_JWKS",
		help:  "Path of a JWKS file of RSA and EC P-256 keys selected by `kid`, instead of the secret; replace the file to rotate keys.",
		field: func(c *Config) any { return &c.JWTJWKS }},
	{name: "JWT_ISSUER",
		help:  "Required `iss` of member tokens; unset: not checked.",
		field: func(c *Config) any { return &c.JWTIssuer }},
	{name: "JWT_AUDIENCE",
		help:  "Required `aud` of member tokens; unset: not checked.",
		field: func(c *Config) any { return &c.JWTAudience }},
	{name: "JWT_CLOCK_SKEW", def: "30s",
		help:  "Tolerance for the clocks of token issuers, applied to `exp`, `nbf` and `iat`.",
		field: func(c *Config) any { return &c.JWTClockSkew }},
	{name: "JWT_RELOAD_INTERVAL", def: "30s",
		help:  "How often the public key or JWKS file is checked for changes.",
		field: func(c *Config) any { return &c.JWTReloadInterval }},

	// Calls, presence, guests, meetings.
	{name: "RING_TIMEOUT", def: "60s",
		help:  "How long a call rings a recipient before it counts as missed.",
		field: func(c *Config) any { return &c.RingTimeout }},
	{name: "HEARTBEAT", def: "60s",
		help:  "Interval at which clients send `presence:heartbeat` (informational: the presence TTL must exceed it).",
		field: func(c *Config) any { return &c.Heartbeat }},
	{name: "PRESENCE_TTL", def: "120s",
		help:  "A device that sent no heartbeat for this long goes offline.",
		field: func(c *Config) any { return &c.PresenceTTL }},
	{name: "PRESENCE_GRACE", def: "5s",
		help:  "Delay of every online → offline broadcast and of a disconnected guest's leave; a reconnect within it cancels them.",
		field: func(c *Config) any { return &c.PresenceGrace }},
	{name: "ADMISSION_COOLDOWN", def: "5s",
		help:  "How long a declined guest waits before asking to join again.",
		field: func(c *Config) any { return &c.AdmissionCooldown }},
	{name: "GUEST_SESSION_TTL", def: "24h",
		help:  "Longest lifetime of a guest session.",
		field: func(c *Config) any { return &c.GuestSessionTTL }},
	{name: "MEETING_RETENTION", def: "168h",
		help:  "How long a scheduled meeting is kept after its end time.",
		field: func(c *Config) any { return &c.MeetingRetention }},
	{name: "MAX_CALL_LENGTH", def: "24h",
		help:  "An instant call ends at the latest this long after it starts.",
		field: func(c *Config) any { return &c.MaxCallLength }},
	{name: "REMINDER_LEAD", def: "15m",
		help:  "How long before a meeting starts its participants get `meeting:reminder`.",
		field: func(c *Config) any { return &c.ReminderLead }},

	// Cluster and operations.
	{name: "REQUEST_TIMEOUT", def: "5s",
		help:  "Deadline of one event or REST request on the state store; past it the client gets `unavailable`.",
		field: func(c *Config) any { return &c.RequestTimeout }},
	{name: "NODE_LEASE", def: "10s",
		help:  "TTL of a node's registration in Redis; a node silent for this long is reaped by another.",
		field: func(c *Config) any { return &c.NodeLease }},
	{name: "NODE_REFRESH", def: "2s",
		help:  "How often a node renews its lease; must be below the lease.",
		field: func(c *Config) any { return &c.NodeRefresh }},
	{name: "DRAIN_TIMEOUT", def: "20s",
		help:  "On SIGTERM, the time within which a node hands its clients to other nodes and exits.",
		field: func(c *Config) any { return &c.DrainTimeout }},
	{name: "JOB_POLL", def: "250ms",
		help:  "How often a node looks for due scheduled work (reminders, ring timeouts, expiries, reaping).",
		field: func(c *Config) any { return &c.JobPollInterval }},
	{name: "SWEEP_INTERVAL", def: "1s",
		help:  "How often a node expires the presence of its silent sockets and cleans up stale ones.",
		field: func(c *Config) any { return &c.SweepInterval }},
	{name: "PROBE_INTERVAL", def: "5s",
		help:  "How often each pub/sub connection sends itself a probe; one that does not come back triggers a resubscribe.",
		field: func(c *Config) any { return &c.ProbeInterval }},

	// Limits.
	{name: "MAX_PAYLOAD_BYTES", def: "65536",
		help:  "Largest client event payload.",
		field: func(c *Config) any { return &c.MaxPayloadBytes }},
	{name: "MAX_PARTICIPANTS", def: "256",
		help:  "Most participants of one meeting or call.",
		field: func(c *Config) any { return &c.MaxParticipants }},
	{name: "MAX_RECIPIENTS", def: "64",
		help:  "Most recipients of one `call:notify` (and participants given to `call:create`).",
		field: func(c *Config) any { return &c.MaxRecipients }},
	{name: "MAX_INVITE_LIVE", def: "100",
		help:  "Most user ids of one `meeting:invite-live`.",
		field: func(c *Config) any { return &c.MaxInviteLive }},
	{name: "EVENTS_PER_SECOND", def: "20",
		help:  "Sustained client events per socket per second; excess is answered `rate_limited`.",
		field: func(c *Config) any { return &c.EventsPerSecond }},
	{name: "EVENT_BURST", def: "40",
		help:  "Burst of client events per socket above the sustained rate.",
		field: func(c *Config) any { return &c.EventBurst }},
	{name: "MAX_CONNS_PER_USER", def: "20",
		help:  "Most simultaneous connections of one user; the next handshake is refused `rate_limited`.",
		field: func(c *Config) any { return &c.MaxConnsPerUser }},
	{name: "MAX_TITLE_BYTES", def: "4096",
		help:  "Largest meeting title (opaque, may be ciphertext).",
		field: func(c *Config) any { return &c.MaxTitleBytes }},
	{name: "MAX_DESCRIPTION_BYTES", def: "16384",
		help:  "Largest meeting description.",
		field: func(c *Config) any { return &c.MaxDescriptionBytes }},
	{name: "MAX_DISPLAY_NAME_BYTES", def: "1024",
		help:  "Largest display name of a guest or caller.",
		field: func(c *Config) any { return &c.MaxDisplayNameBytes }},
	{name: "MAX_ENVELOPE_BYTES", def: "65536",
		help:  "Largest encrypted envelope, relayed (`meeting:signal`) or per recipient.",
		field: func(c *Config) any { return &c.MaxEnvelopeBytes }},
	{name: "MAX_PRESENCE_QUERY", def: "500",
		help:  "Most user ids of one presence query.",
		field: func(c *Config) any { return &c.MaxPresenceQuery }},
}

// lookup returns the setting that fills the field ptr points to, for
// cross-field problems that name their variables. It panics on a pointer
// that no setting fills (a programming error caught by the tests).
func lookup(c *Config, ptr any) setting {
	for _, s := range settings {
		if s.field(c) == ptr {
			return s
		}
	}
	panic("config: no setting for field")
}
