package redis_test

import (
	"context"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/redis"
	"github.com/switchboard/switchboard/state/statetest"
)

// TestConformance runs the state suite on one redis-server, flushed before
// every subtest.
func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	statetest.Run(t, func(t *testing.T) state.Store {
		st, _ := freshStore(t, srv)
		t.Cleanup(func() { _ = st.Close() })
		return st
	})
}

// TestConformanceRESP2 runs the state suite through a client that speaks
// RESP2 (the others speak go-redis's default, RESP3): the scripts' answers
// are Lua values that Redis converts by the client's protocol.
func TestConformanceRESP2(t *testing.T) {
	srv := redistest.Start(t)
	statetest.Run(t, func(t *testing.T) state.Store {
		c := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), Protocol: 2, ContextTimeoutEnabled: true, Dialer: redistest.Dialer()})
		if err := c.FlushAll(context.Background()).Err(); err != nil {
			t.Fatalf("FLUSHALL: %v", err)
		}
		st := redis.New(c, redis.Options{CloseClient: true})
		t.Cleanup(func() { _ = st.Close() })
		return st
	})
}

// TestConformanceCluster runs the state suite on a three-master Redis
// Cluster, every master flushed before every subtest.
func TestConformanceCluster(t *testing.T) {
	cluster := redistest.StartCluster(t)
	admin := cluster.Client(t)
	statetest.Run(t, func(t *testing.T) state.Store {
		ctx := context.Background()
		err := admin.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			return c.FlushAll(ctx).Err()
		})
		if err != nil {
			t.Fatalf("FLUSHALL: %v", err)
		}
		c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: cluster.Addrs(), ContextTimeoutEnabled: true, Dialer: redistest.Dialer()})
		st := redis.New(c, redis.Options{CloseClient: true})
		t.Cleanup(func() { _ = st.Close() })
		return st
	})
}
