package adapter

import (
	"context"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// Defaults of Config.
const (
	DefaultPrefix         = "socket.io"
	DefaultRequestTimeout = 5 * time.Second
	DefaultProbeInterval  = 5 * time.Second
	DefaultProbeTimeout   = 2 * time.Second
	DefaultSubscribeDelay = 5 * time.Millisecond
	DefaultPublishQueue   = 8192
)

// Config configures a Builder. Only Client is required.
type Config struct {
	// Client carries both publishing and the pub/sub connections. Any
	// UniversalClient works: a single node, Sentinel (failover) or Cluster.
	Client goredis.UniversalClient

	// Prefix is the key prefix of the channels ("socket.io", as the Node
	// adapter and emitter use by default).
	Prefix string

	// Sharded uses Redis 7 sharded pub/sub (SSUBSCRIBE/SPUBLISH) on the same
	// channel names. On Redis Cluster it spreads the pub/sub load over the
	// shards instead of broadcasting every message on the cluster bus. The
	// Node emitter and the classic Node adapter publish with PUBLISH and are
	// not heard in this mode.
	Sharded bool

	// RequestTimeout bounds every request between nodes (FetchSockets,
	// ServerSideEmit with ack, BroadcastWithAck without its own timeout,
	// ServerCount). Default 5 s.
	RequestTimeout time.Duration

	// ProbeInterval is how often each pub/sub connection publishes a probe
	// to itself; ProbeTimeout is how long the probe may take to come back
	// before the connection is torn down and every channel resubscribed.
	// ProbeTimeout is clamped below ProbeInterval. Defaults 5 s and 2 s.
	ProbeInterval, ProbeTimeout time.Duration

	// SubscribeDelay is the window over which room creations and deletions
	// are coalesced into one SUBSCRIBE and one UNSUBSCRIBE. Default 5 ms.
	SubscribeDelay time.Duration

	// PublishQueue is the number of messages that may wait to be published.
	// When it is full, broadcasts are dropped (and counted) rather than
	// blocking the caller. Default 8192.
	PublishQueue int

	// Peers, when set, tells how many nodes (this one included) serve the
	// cluster, for ServerCount and for how many answers a request waits.
	// The default asks Redis how many connections subscribe to the
	// namespace's request channel (PUBSUB NUMSUB, or SHARDNUMSUB when
	// Sharded), which drops a crashed node as soon as Redis sees its
	// connection close.
	Peers func(ctx context.Context) (int, error)

	// SubscribeSocketRooms also subscribes to the channel of each local
	// socket's private room (room name == socket id). Off by default: this
	// adapter publishes an emit to a single socket id on the namespace
	// channel instead, which every node hears. Turn it on only when a Node
	// emitter emits to socket ids (it publishes those on the room channel).
	SubscribeSocketRooms bool

	// ListenSharedResponses also subscribes to the shared response channel
	// `<prefix>-response#<nsp>#`, where Node adapters without
	// publishOnSpecificResponseChannel answer requests. Needed only in a
	// cluster mixed with such Node nodes.
	ListenSharedResponses bool

	// Logger receives connection and subscription events. Payloads are never
	// logged.
	Logger zerolog.Logger
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	if c.ProbeTimeout <= 0 {
		c.ProbeTimeout = DefaultProbeTimeout
	}
	if c.ProbeTimeout >= c.ProbeInterval {
		c.ProbeTimeout = c.ProbeInterval * 3 / 4
	}
	if c.SubscribeDelay <= 0 {
		c.SubscribeDelay = DefaultSubscribeDelay
	}
	if c.PublishQueue <= 0 {
		c.PublishQueue = DefaultPublishQueue
	}
	return c
}
