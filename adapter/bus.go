package adapter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// routeKind says what a subscribed channel carries.
type routeKind uint8

const (
	routeBroadcast routeKind = iota // <prefix>#<nsp>#
	routeRoom                       // <prefix>#<nsp>#<room>#
	routeRequest                    // <prefix>-request#<nsp>#
	routeResponse                   // <prefix>-response#<nsp>#[<uid>#]
)

// route binds a channel to the adapter that handles it.
type route struct {
	kind routeKind
	a    *Adapter
	room string
}

// shard is one pub/sub connection and the channels it carries. In every
// mode but sharded pub/sub on Redis Cluster there is exactly one, keyed "";
// there, one per master node, keyed by its address, because an SSUBSCRIBE
// must reach the node that owns the channel's slot.
//
// Fields other than closed and ps are owned by the bus loop.
type shard struct {
	key     string
	ps      *goredis.PubSub
	probeCh string
	closed  atomic.Bool

	applied map[string]struct{}

	probeToken string
	probeSent  time.Time
	probeAcked bool
	everAcked  bool
	pongSeq    uint64
}

// busEvent is what a shard's receiver reports to the bus loop.
type busEvent struct {
	sh      *shard
	kind    eventKind
	err     error
	payload string
}

type eventKind uint8

const (
	evError eventKind = iota // the connection failed
	evPong                   // a barrier PING came back
	evProbe                  // a probe came back
	evUnsub                  // Redis dropped a subscription (slot migration)
)

type waiter struct {
	target uint64
	done   chan struct{}
}

// bus keeps the pub/sub subscriptions equal to the set of wanted channels
// (the routes), with as few commands as possible, and keeps them alive.
//
// One goroutine, the loop, owns the connections: it applies route changes
// in batches (SubscribeDelay), probes each connection, and tears a
// connection down and rebuilds it when it fails or a probe does not come
// back. Each connection has a receiver goroutine that hands messages
// straight to the adapters (in order) and reports everything else to the
// loop.
type bus struct {
	b       *Builder
	cluster *goredis.ClusterClient // set when Client is a Cluster client
	perNode bool                   // sharded pub/sub on a Cluster

	mu     sync.RWMutex
	routes map[string]route
	dirty  map[string]struct{} // channels whose route changed since the last apply

	kick    chan struct{}
	events  chan busEvent
	flushes chan chan struct{}
	healthy atomic.Bool
	nchan   atomic.Int64

	// Owned by the loop.
	shards   map[string]*shard
	where    map[string]*shard
	seq      uint64
	barrier  uint64 // seq of the last apply that sent a barrier
	lastCmd  uint64 // seq of the last apply that sent a (un)subscribe
	probeSeq uint64
	waiters  []waiter
	retrying bool
	// full makes the next apply compare every route with every
	// subscription instead of only the dirty channels: at the start, and
	// after a connection or a command failed.
	full bool
}

func newBus(b *Builder) *bus {
	bs := &bus{
		b:       b,
		routes:  make(map[string]route),
		dirty:   make(map[string]struct{}),
		full:    true,
		kick:    make(chan struct{}, 1),
		events:  make(chan busEvent, 64),
		flushes: make(chan chan struct{}),
		shards:  make(map[string]*shard),
		where:   make(map[string]*shard),
	}
	if cc, ok := b.cfg.Client.(*goredis.ClusterClient); ok {
		bs.cluster = cc
		bs.perNode = b.cfg.Sharded
	}
	return bs
}

// set routes channel ch to r (replacing any previous route) and schedules
// the subscription.
func (bs *bus) set(ch string, r route) {
	bs.mu.Lock()
	bs.routes[ch] = r
	bs.dirty[ch] = struct{}{}
	bs.mu.Unlock()
	bs.poke()
}

// del removes the route of ch if it still belongs to a and schedules the
// unsubscription.
func (bs *bus) del(ch string, a *Adapter) {
	bs.mu.Lock()
	if cur, ok := bs.routes[ch]; ok && cur.a == a {
		delete(bs.routes, ch)
		bs.dirty[ch] = struct{}{}
	}
	bs.mu.Unlock()
	bs.poke()
}

func (bs *bus) lookup(ch string) (route, bool) {
	bs.mu.RLock()
	r, ok := bs.routes[ch]
	bs.mu.RUnlock()
	return r, ok
}

func (bs *bus) poke() {
	select {
	case bs.kick <- struct{}{}:
	default:
	}
}

// report hands an event to the loop unless the bus is shutting down.
func (bs *bus) report(ev busEvent) {
	select {
	case bs.events <- ev:
	case <-bs.b.ctx.Done():
	}
}

// flush waits until every route change made before the call is applied
// and acknowledged by Redis (a PING sent after the commands came back on
// every connection).
func (bs *bus) flush(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case bs.flushes <- done:
	case <-ctx.Done():
		return ctx.Err()
	case <-bs.b.ctx.Done():
		return ErrClosed
	}
	select {
	case <-done:
		if bs.b.ctx.Err() != nil {
			return ErrClosed // released by the shutdown
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-bs.b.ctx.Done():
		return ErrClosed
	}
}

const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// run is the loop. It returns when the builder's context ends, after
// closing every connection.
func (bs *bus) run() {
	cfg := bs.b.cfg
	probeTick := time.NewTicker(cfg.ProbeInterval)
	defer probeTick.Stop()
	var (
		flushC, retryC, checkC <-chan time.Time
		backoff                = minBackoff
	)
	defer func() {
		for _, sh := range bs.shards {
			bs.closeShard(sh)
		}
		for _, w := range bs.waiters {
			close(w.done)
		}
	}()
	apply := func() {
		flushC = nil
		if err := bs.apply(); err != nil {
			bs.b.log.Warn().Err(err).Dur("retry_in", backoff).Msg("pub/sub subscription failed")
			bs.retrying = true
			retryC = time.After(backoff)
			backoff = min(2*backoff, maxBackoff)
		} else {
			bs.retrying = false
			retryC = nil
			backoff = minBackoff
		}
		bs.updateHealth()
	}
	apply()
	for {
		select {
		case <-bs.b.ctx.Done():
			return
		case <-bs.kick:
			if flushC == nil && retryC == nil {
				flushC = time.After(cfg.SubscribeDelay)
			}
		case done := <-bs.flushes:
			bs.waiters = append(bs.waiters, waiter{target: bs.seq + 1, done: done})
			if retryC == nil {
				apply()
			}
		case <-flushC:
			apply()
		case <-retryC:
			retryC = nil
			apply()
		case <-probeTick.C:
			bs.sendProbes()
			checkC = time.After(cfg.ProbeTimeout)
		case <-checkC:
			checkC = nil
			if bs.checkProbes() && retryC == nil {
				apply()
			}
		case ev := <-bs.events:
			if bs.shards[ev.sh.key] != ev.sh {
				continue // from a connection already replaced
			}
			switch ev.kind {
			case evError:
				bs.b.log.Warn().Err(ev.err).Str("shard", ev.sh.key).Msg("pub/sub connection lost: resubscribing")
				bs.failShard(ev.sh)
				if retryC == nil {
					apply()
				}
			case evPong:
				if seq, err := strconv.ParseUint(strings.TrimPrefix(ev.payload, "b:"), 10, 64); err == nil {
					ev.sh.pongSeq = max(ev.sh.pongSeq, seq)
					if ev.sh.probeToken == "" {
						bs.sendProbe(ev.sh)
					}
					bs.releaseWaiters()
				}
			case evProbe:
				if ev.payload == ev.sh.probeToken {
					ev.sh.probeAcked, ev.sh.everAcked = true, true
				}
			case evUnsub:
				// Redis dropped a subscription we still want (a slot moved):
				// forget it so that the next apply subscribes it again,
				// where it now belongs.
				if _, ok := ev.sh.applied[ev.payload]; ok && bs.where[ev.payload] == ev.sh {
					delete(ev.sh.applied, ev.payload)
					delete(bs.where, ev.payload)
					bs.full = true
					if bs.cluster != nil {
						bs.reloadCluster()
					}
					bs.poke()
				}
			}
			bs.updateHealth()
		}
	}
}

// apply makes the subscriptions match the routes: unsubscribes what is no
// longer wanted, subscribes what is missing (creating connections as
// needed), then sends a barrier PING on every connection. It looks only at
// the channels whose route changed since the last apply, so its cost
// follows the churn of rooms, not the number of rooms; after a failure
// (bs.full) it compares everything.
func (bs *bus) apply() error {
	ctx, cancel := context.WithTimeout(bs.b.ctx, bs.b.cfg.RequestTimeout)
	defer cancel()

	full := bs.full
	bs.full = false
	bs.mu.Lock()
	changed := make(map[string]bool, len(bs.dirty)) // channel -> wanted
	if full {
		for ch := range bs.routes {
			changed[ch] = true
		}
	} else {
		for ch := range bs.dirty {
			_, wanted := bs.routes[ch]
			changed[ch] = wanted
		}
	}
	clear(bs.dirty)
	bs.nchan.Store(int64(len(bs.routes)))
	bs.mu.Unlock()

	bs.seq++
	var errs []error
	if !bs.perNode && bs.shards[""] == nil {
		if _, err := bs.newShard(ctx, "", bs.b.cfg.Client); err != nil {
			bs.full = true
			return fmt.Errorf("open pub/sub connection: %w", err)
		}
	}
	gone := make(map[*shard][]string)
	if full {
		for _, sh := range bs.shards {
			for ch := range sh.applied {
				if !changed[ch] {
					gone[sh] = append(gone[sh], ch)
				}
			}
		}
	} else {
		for ch, wanted := range changed {
			if sh := bs.where[ch]; sh != nil && !wanted {
				gone[sh] = append(gone[sh], ch)
			}
		}
	}
	for sh, chans := range gone {
		for _, ch := range chans {
			delete(sh.applied, ch)
			delete(bs.where, ch)
		}
		if err := bs.command(ctx, sh, false, chans); err != nil {
			errs = append(errs, err)
			bs.failShard(sh)
		}
	}
	adds := make(map[string][]string)
	nodes := make(map[string]goredis.UniversalClient)
	for ch, wanted := range changed {
		if !wanted || bs.where[ch] != nil {
			continue
		}
		key, node, err := bs.shardFor(ctx, ch)
		if err != nil {
			errs = append(errs, err)
			bs.full = true
			continue
		}
		adds[key] = append(adds[key], ch)
		nodes[key] = node
	}
	for key, chans := range adds {
		sh := bs.shards[key]
		if sh == nil {
			var err error
			if sh, err = bs.newShard(ctx, key, nodes[key]); err != nil {
				errs = append(errs, err)
				bs.full = true
				continue
			}
		}
		if err := bs.command(ctx, sh, true, chans); err != nil {
			errs = append(errs, err)
			bs.failShard(sh)
			continue
		}
		for _, ch := range chans {
			sh.applied[ch] = struct{}{}
			bs.where[ch] = sh
		}
	}
	if len(errs) == 0 && !bs.full && bs.lastCmd <= bs.barrier {
		// Nothing was sent since the last barrier (a join to a room this
		// node already follows), and nothing failed: whoever waits for
		// this apply waits for that barrier.
		for i := range bs.waiters {
			if bs.waiters[i].target == bs.seq {
				bs.waiters[i].target = bs.barrier
			}
		}
	}
	if bs.needsBarrier(full) {
		bs.barrier = bs.seq
		barrier := "b:" + strconv.FormatUint(bs.seq, 10)
		for _, sh := range bs.shards {
			if err := sh.ps.Ping(ctx, barrier); err != nil {
				errs = append(errs, fmt.Errorf("ping %q: %w", sh.key, err))
				bs.failShard(sh)
			}
		}
	}
	bs.releaseWaiters()
	return errors.Join(errs...)
}

// needsBarrier tells whether the apply numbered bs.seq must end with a
// barrier PING on every connection: when a flush waits for it (registered
// since the last barrier), when a connection has not answered a barrier
// yet (its first probe follows its first barrier), and after a failure
// (full). Otherwise nobody waits for it, and a later barrier covers its
// commands too: Redis answers a connection's commands in order. Applies
// that only unsubscribe (the end of a call) send none, nor do flushes that
// found nothing to send (the callee's devices joining a call room their
// nodes already follow).
func (bs *bus) needsBarrier(full bool) bool {
	if full {
		return true
	}
	for _, w := range bs.waiters {
		if w.target > bs.barrier {
			return true
		}
	}
	for _, sh := range bs.shards {
		if sh.pongSeq == 0 {
			return true
		}
	}
	return false
}

// shardFor tells which connection must carry channel ch.
func (bs *bus) shardFor(ctx context.Context, ch string) (string, goredis.UniversalClient, error) {
	if !bs.perNode {
		return "", bs.b.cfg.Client, nil
	}
	node, err := bs.cluster.MasterForKey(ctx, ch)
	if err != nil {
		return "", nil, fmt.Errorf("find the shard of a channel: %w", err)
	}
	return node.Options().Addr, node, nil
}

// newShard opens a pub/sub connection, subscribes it to its probe channel
// and starts its receiver.
func (bs *bus) newShard(ctx context.Context, key string, client goredis.UniversalClient) (*shard, error) {
	sh := &shard{key: key, applied: make(map[string]struct{})}
	if bs.b.cfg.Sharded {
		sh.ps = client.SSubscribe(ctx)
	} else {
		sh.ps = client.Subscribe(ctx)
	}
	sh.probeCh = bs.probeChannel(ctx, key)
	if sh.probeCh != "" {
		if err := bs.command(ctx, sh, true, []string{sh.probeCh}); err != nil {
			_ = sh.ps.Close()
			return nil, err
		}
	}
	bs.shards[key] = sh
	bs.b.wg.Add(1)
	go bs.receive(sh)
	// The first probe goes out when the first barrier comes back, so that
	// "healthy" implies that every channel of this apply is subscribed.
	return sh, nil
}

// probeChannel names the channel a connection probes itself on. With one
// connection per node it must hash to a slot of that node: the first of
// `<prefix>-probe#<uid>#<n>#` that does. It is not a socket.io channel, so
// Node adapters never hear it.
func (bs *bus) probeChannel(ctx context.Context, key string) string {
	base := bs.b.cfg.Prefix + "-probe#" + bs.b.uid + "#"
	if !bs.perNode {
		return base
	}
	for n := range 2048 {
		ch := base + strconv.Itoa(n) + "#"
		if k, _, err := bs.shardFor(ctx, ch); err == nil && k == key {
			return ch
		}
	}
	bs.b.log.Warn().Str("shard", key).Msg("no probe channel found for shard: it will not be probed")
	return ""
}

// command (un)subscribes sh to chans, in as many commands as needed: one
// per hash slot with one connection per node (Redis Cluster refuses a
// multi-slot SSUBSCRIBE), else chunks of 512.
func (bs *bus) command(ctx context.Context, sh *shard, subscribe bool, chans []string) error {
	bs.lastCmd = bs.seq
	var groups [][]string
	if bs.perNode {
		bySlot := make(map[uint16][]string)
		for _, ch := range chans {
			s := slot(ch)
			bySlot[s] = append(bySlot[s], ch)
		}
		for _, g := range bySlot {
			groups = append(groups, g)
		}
	} else {
		groups = slices.Collect(slices.Chunk(chans, 512))
	}
	for _, g := range groups {
		var err error
		switch {
		case subscribe && bs.b.cfg.Sharded:
			err = sh.ps.SSubscribe(ctx, g...)
		case subscribe:
			err = sh.ps.Subscribe(ctx, g...)
		case bs.b.cfg.Sharded:
			err = sh.ps.SUnsubscribe(ctx, g...)
		default:
			err = sh.ps.Unsubscribe(ctx, g...)
		}
		if err != nil {
			verb := "subscribe"
			if !subscribe {
				verb = "unsubscribe"
			}
			return fmt.Errorf("%s %d channels on %q: %w", verb, len(g), sh.key, err)
		}
	}
	return nil
}

// failShard closes a connection that failed; its channels become missing
// and the next apply subscribes them on a new connection.
func (bs *bus) failShard(sh *shard) {
	if bs.shards[sh.key] != sh {
		return
	}
	// Unhealthy before any counter moves: whoever sees the counter sees
	// the state that goes with it.
	bs.healthy.Store(false)
	bs.b.stats.resubscribes.Add(1)
	bs.closeShard(sh)
	if bs.cluster != nil {
		bs.reloadCluster()
	}
}

func (bs *bus) closeShard(sh *shard) {
	if bs.shards[sh.key] == sh {
		delete(bs.shards, sh.key)
	}
	bs.full = true // its channels must be subscribed again elsewhere
	for ch := range sh.applied {
		if bs.where[ch] == sh {
			delete(bs.where, ch)
		}
	}
	if sh.closed.CompareAndSwap(false, true) {
		_ = sh.ps.Close()
	}
}

func (bs *bus) reloadCluster() {
	ctx, cancel := context.WithTimeout(bs.b.ctx, bs.b.cfg.RequestTimeout)
	defer cancel()
	bs.cluster.ReloadState(ctx)
}

// receive reads one connection until it fails or is closed.
func (bs *bus) receive(sh *shard) {
	defer bs.b.wg.Done()
	for {
		msg, err := sh.ps.Receive(bs.b.ctx)
		if err != nil {
			if sh.closed.Load() || bs.b.ctx.Err() != nil {
				return
			}
			bs.report(busEvent{sh: sh, kind: evError, err: err})
			return
		}
		switch m := msg.(type) {
		case *goredis.Message:
			if sh.closed.Load() {
				// Replaced: its successor subscribed after this flag was
				// set, so anything read from here on may be delivered
				// there too. Dropping it avoids a duplicate.
				return
			}
			if m.Channel == sh.probeCh {
				bs.report(busEvent{sh: sh, kind: evProbe, payload: m.Payload})
				continue
			}
			bs.b.dispatch(m.Channel, m.Payload)
		case *goredis.Pong:
			bs.report(busEvent{sh: sh, kind: evPong, payload: m.Payload})
		case *goredis.Subscription:
			if m.Kind == "sunsubscribe" || m.Kind == "unsubscribe" {
				bs.report(busEvent{sh: sh, kind: evUnsub, payload: m.Channel})
			}
		}
	}
}

// sendProbes starts a probe round on every connection.
func (bs *bus) sendProbes() {
	for _, sh := range bs.shards {
		if sh.pongSeq > 0 { // else its first probe follows its first barrier
			bs.sendProbe(sh)
		}
	}
}

func (bs *bus) sendProbe(sh *shard) {
	if sh.probeCh == "" {
		return
	}
	bs.probeSeq++
	sh.probeToken = strconv.FormatUint(bs.probeSeq, 10)
	sh.probeSent = time.Now()
	sh.probeAcked = false
	ch, token := sh.probeCh, sh.probeToken
	bs.b.wg.Add(1)
	go func() {
		defer bs.b.wg.Done()
		ctx, cancel := context.WithTimeout(bs.b.ctx, bs.b.cfg.ProbeTimeout)
		defer cancel()
		var err error
		if bs.b.cfg.Sharded {
			err = bs.b.cfg.Client.SPublish(ctx, ch, token).Err()
		} else {
			err = bs.b.cfg.Client.Publish(ctx, ch, token).Err()
		}
		if err != nil && bs.b.ctx.Err() == nil {
			bs.b.log.Debug().Err(err).Msg("probe publish failed")
		}
	}()
}

// checkProbes tears down every connection whose probe did not come back in
// time. It reports whether any was.
func (bs *bus) checkProbes() bool {
	failed := false
	for _, sh := range bs.shards {
		if sh.probeToken == "" || sh.probeAcked || time.Since(sh.probeSent) < bs.b.cfg.ProbeTimeout {
			continue
		}
		bs.healthy.Store(false)
		bs.b.stats.probeFailures.Add(1)
		bs.b.log.Warn().Str("shard", sh.key).Msg("pub/sub probe did not come back: resubscribing")
		bs.failShard(sh)
		failed = true
	}
	bs.updateHealth()
	return failed
}

// updateHealth: healthy when no resubscription is pending, the connections
// that must exist do, and each has answered a probe and has no overdue one.
func (bs *bus) updateHealth() {
	ok := !bs.retrying && (bs.perNode || bs.shards[""] != nil)
	for _, sh := range bs.shards {
		if sh.probeCh == "" {
			continue
		}
		if !sh.everAcked || (!sh.probeAcked && time.Since(sh.probeSent) > bs.b.cfg.ProbeTimeout) {
			ok = false
		}
	}
	bs.healthy.Store(ok)
}

// releaseWaiters closes the flush waiters whose barrier came back on every
// connection.
func (bs *bus) releaseWaiters() {
	if len(bs.waiters) == 0 {
		return
	}
	low := bs.seq
	for _, sh := range bs.shards {
		low = min(low, sh.pongSeq)
	}
	if bs.retrying {
		return
	}
	bs.waiters = slices.DeleteFunc(bs.waiters, func(w waiter) bool {
		if w.target <= low {
			close(w.done)
			return true
		}
		return false
	})
}
