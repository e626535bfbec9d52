package adapter

import (
	"context"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"
)

// errQueueFull is returned when the publish queue has no room.
var errQueueFull = errors.New("publish queue full")

// outgoing is one message waiting to be published. done, when set,
// receives the outcome (buffered, never blocks the publisher).
type outgoing struct {
	channel string
	payload []byte
	done    chan error
}

// publisher publishes messages in the order they were queued, from one
// goroutine, pipelining whatever has accumulated so that a burst costs one
// round trip. A broadcast never waits for Redis: when the queue is full it
// is dropped and counted.
type publisher struct {
	b     *Builder
	queue chan outgoing
}

// maxBatch bounds one pipeline.
const maxBatch = 256

func newPublisher(b *Builder) *publisher {
	return &publisher{b: b, queue: make(chan outgoing, b.cfg.PublishQueue)}
}

// publish queues a message without blocking; it reports false (and counts
// a drop) when the queue is full or the builder is closed.
func (p *publisher) publish(channel string, payload []byte) bool {
	if p.b.ctx.Err() != nil {
		p.b.stats.dropped.Add(1)
		return false
	}
	select {
	case p.queue <- outgoing{channel: channel, payload: payload}:
		return true
	default:
		if p.b.stats.dropped.Add(1)%1000 == 1 {
			p.b.log.Warn().Uint64("dropped_total", p.b.stats.dropped.Load()).Msg("publish queue full: message dropped")
		}
		return false
	}
}

// publishWait queues a message, waiting for room in the queue, and then
// waits until Redis accepted it.
func (p *publisher) publishWait(ctx context.Context, channel string, payload []byte) error {
	done := make(chan error, 1)
	select {
	case p.queue <- outgoing{channel: channel, payload: payload, done: done}:
	case <-ctx.Done():
		p.b.stats.dropped.Add(1)
		return fmt.Errorf("%w: %w", errQueueFull, ctx.Err())
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run publishes until the builder's context ends, then tries to publish
// what is left for at most one request timeout.
func (p *publisher) run() {
	batch := make([]outgoing, 0, maxBatch)
	for {
		select {
		case m := <-p.queue:
			batch = append(batch[:0], m)
		case <-p.b.ctx.Done():
			p.drain()
			return
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case m := <-p.queue:
				batch = append(batch, m)
			default:
				break fill
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), p.b.cfg.RequestTimeout)
		p.send(ctx, batch)
		cancel()
	}
}

func (p *publisher) drain() {
	ctx, cancel := context.WithTimeout(context.Background(), p.b.cfg.RequestTimeout)
	defer cancel()
	for {
		batch := make([]outgoing, 0, maxBatch)
	fill:
		for len(batch) < maxBatch {
			select {
			case m := <-p.queue:
				batch = append(batch, m)
			default:
				break fill
			}
		}
		if len(batch) == 0 {
			return
		}
		p.send(ctx, batch)
	}
}

// send publishes one batch in a pipeline and reports each outcome.
func (p *publisher) send(ctx context.Context, batch []outgoing) {
	cmds := make([]*goredis.IntCmd, len(batch))
	_, err := p.b.cfg.Client.Pipelined(ctx, func(pipe goredis.Pipeliner) error {
		for i, m := range batch {
			if p.b.cfg.Sharded {
				cmds[i] = pipe.SPublish(ctx, m.channel, m.payload)
			} else {
				cmds[i] = pipe.Publish(ctx, m.channel, m.payload)
			}
		}
		return nil
	})
	if err != nil {
		p.b.log.Warn().Err(err).Int("messages", len(batch)).Msg("publish failed")
	}
	for i, m := range batch {
		cerr := cmds[i].Err()
		if cerr != nil {
			p.b.stats.dropped.Add(1)
			cerr = fmt.Errorf("publish: %w", cerr)
		} else {
			p.b.stats.published.Add(1)
		}
		if m.done != nil {
			m.done <- cerr
		}
	}
}
