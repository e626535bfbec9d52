package adapter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// ErrClosed is returned by operations on a closed Builder or Adapter.
var ErrClosed = errors.New("adapter: closed")

// ErrRequestTimeout is wrapped by the error of a request between nodes
// that not every live peer answered in time.
var ErrRequestTimeout = errors.New("adapter: request timed out")

// Stats is a snapshot of a Builder's counters, for metrics. Counters only
// grow.
type Stats struct {
	// Published counts messages Redis accepted (broadcasts, requests,
	// responses; probes excluded).
	Published uint64
	// Received counts pub/sub messages received (probes excluded).
	Received uint64
	// Ignored counts received messages deliberately not delivered: our own,
	// another namespace's, or a room with no local member.
	Ignored uint64
	// Dropped counts messages lost here: not published (queue full, Redis
	// error, payload that cannot be encoded) or received but malformed.
	Dropped uint64
	// Malformed counts the received messages that could not be decoded
	// (also in Dropped).
	Malformed uint64
	// Resubscribes counts pub/sub connections torn down and re-created with
	// all their channels (connection lost, probe lost, Redis restarted).
	Resubscribes uint64
	// ProbeFailures counts probes that did not come back in time.
	ProbeFailures uint64
	// Channels is the number of channels currently wanted.
	Channels int64
	// Healthy is Healthy() at the time of the snapshot.
	Healthy bool
}

type counters struct {
	published, received, ignored, dropped, malformed, resubscribes, probeFailures atomic.Uint64
}

// Builder is the adapter constructor to give the socket.io server
// (server.SetAdapter(builder) or ServerOptions.SetAdapter(builder)). It
// owns what a node shares across namespaces: the pub/sub connection(s),
// the publish queue, the node's uid, health and counters. Create one per
// server with New and Close it after the server.
type Builder struct {
	cfg Config
	uid string
	// own is how every broadcast this node publishes begins (see
	// broadcastPrefix): its own copy, which Redis sends back, is dropped
	// without decoding.
	own string
	log zerolog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	bus   *bus
	pub   *publisher
	stats counters

	mu       sync.Mutex
	adapters map[string]*Adapter
	closed   bool
}

var _ socket.AdapterConstructor = (*Builder)(nil)

// New starts a Builder: its pub/sub connection(s), probes and publisher
// run until Close. cfg.Client is required (New panics without it: that is
// a wiring error, not a runtime condition); the Builder does not close it.
func New(cfg Config) *Builder {
	if cfg.Client == nil {
		panic("adapter: Config.Client is required")
	}
	cfg = cfg.withDefaults()
	b := &Builder{
		cfg:      cfg,
		uid:      newID(),
		adapters: make(map[string]*Adapter),
	}
	b.own = broadcastPrefix(b.uid)
	b.log = cfg.Logger.With().Str("component", "adapter").Str("uid", b.uid).Logger()
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.bus = newBus(b)
	b.pub = newPublisher(b)
	b.wg.Add(2)
	go func() { defer b.wg.Done(); b.bus.run() }()
	go func() { defer b.wg.Done(); b.pub.run() }()
	return b
}

// New implements socket.AdapterConstructor: the socket.io server calls it
// once per namespace. A second adapter for the same namespace name
// replaces (and closes) the first.
func (b *Builder) New(nsp socket.Namespace) socket.Adapter {
	a := newAdapter(b, nsp)
	b.mu.Lock()
	old := b.adapters[nsp.Name()]
	b.adapters[nsp.Name()] = a
	closed := b.closed
	b.mu.Unlock()
	if old != nil {
		old.Close()
	}
	if closed {
		a.stop() // local-only
	} else {
		a.start()
	}
	return a
}

// UID is this node's id on the wire: messages carrying it are ours.
func (b *Builder) UID() string { return b.uid }

// Healthy reports whether every pub/sub connection is subscribed and
// answered its last probe in time. It is false until the first probe came
// back (a few milliseconds after New), while Redis is unreachable and
// while a connection is being re-created. Use it for readiness.
func (b *Builder) Healthy() bool { return b.bus.healthy.Load() && b.ctx.Err() == nil }

// Stats returns a snapshot of the counters.
func (b *Builder) Stats() Stats {
	return Stats{
		Published:     b.stats.published.Load(),
		Received:      b.stats.received.Load(),
		Ignored:       b.stats.ignored.Load(),
		Dropped:       b.stats.dropped.Load(),
		Malformed:     b.stats.malformed.Load(),
		Resubscribes:  b.stats.resubscribes.Load(),
		ProbeFailures: b.stats.probeFailures.Load(),
		Channels:      b.bus.nchan.Load(),
		Healthy:       b.Healthy(),
	}
}

// Flush waits until every subscription change made before the call (rooms
// created or deleted on this node) is in effect in Redis. Joining a room
// and emitting to it from another node at once may otherwise race the
// SUBSCRIBE by a few milliseconds; a caller that must not miss a message
// (a test, or an ack to a client that it "has joined") can wait here.
func (b *Builder) Flush(ctx context.Context) error { return b.bus.flush(ctx) }

// Close stops the Builder: adapters stop publishing, the pub/sub
// connections close, and queued messages get one request timeout to be
// published. It is idempotent.
func (b *Builder) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	adapters := make([]*Adapter, 0, len(b.adapters))
	for _, a := range b.adapters {
		adapters = append(adapters, a)
	}
	b.mu.Unlock()
	for _, a := range adapters {
		a.stop()
	}
	b.cancel()
	b.wg.Wait()
	return nil
}

// dispatch hands a received message to the adapter whose channel it came
// on. It runs on a receiver goroutine, in the order Redis delivered.
func (b *Builder) dispatch(channel, payload string) {
	b.stats.received.Add(1)
	r, ok := b.bus.lookup(channel)
	if !ok {
		b.stats.ignored.Add(1) // unsubscribed a moment ago
		return
	}
	switch r.kind {
	case routeBroadcast, routeRoom:
		r.a.onBroadcast(r.room, payload)
	case routeRequest:
		r.a.onRequest(payload)
	case routeResponse:
		r.a.onResponse(payload)
	}
}

// peers counts the nodes serving namespace channel reqCh, this one
// included.
func (b *Builder) peers(ctx context.Context, reqCh string) (int, error) {
	if b.cfg.Peers != nil {
		n, err := b.cfg.Peers(ctx)
		if err != nil {
			return 0, fmt.Errorf("count peers: %w", err)
		}
		return n, nil
	}
	numsub := func(c goredis.UniversalClient) (int64, error) {
		var (
			m   map[string]int64
			err error
		)
		if b.cfg.Sharded {
			m, err = c.PubSubShardNumSub(ctx, reqCh).Result()
		} else {
			m, err = c.PubSubNumSub(ctx, reqCh).Result()
		}
		return m[reqCh], err
	}
	cc, isCluster := b.cfg.Client.(*goredis.ClusterClient)
	switch {
	case !isCluster:
		n, err := numsub(b.cfg.Client)
		if err != nil {
			return 0, fmt.Errorf("count subscribers: %w", err)
		}
		return int(n), nil
	case b.cfg.Sharded:
		node, err := cc.MasterForKey(ctx, reqCh)
		if err != nil {
			return 0, fmt.Errorf("find the shard of the request channel: %w", err)
		}
		n, err := numsub(node)
		if err != nil {
			return 0, fmt.Errorf("count subscribers: %w", err)
		}
		return int(n), nil
	default:
		// Classic subscriptions live on whichever node the subscriber is
		// connected to: add them up over every node.
		var total atomic.Int64
		err := cc.ForEachShard(ctx, func(ctx context.Context, node *goredis.Client) error {
			n, err := numsub(node)
			total.Add(n)
			return err
		})
		if err != nil {
			return 0, fmt.Errorf("count subscribers: %w", err)
		}
		return int(total.Load()), nil
	}
}

// newID returns 16 random hex characters (uids and request ids).
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
