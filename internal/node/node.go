// Package node assembles one Switchboard gateway node: the state store, the
// Socket.IO server with its adapter, the gateway handlers, the HTTP API on
// the same port, and the background loops (scheduled jobs, node lease and
// reaping, presence sweep). cmd/switchboard builds one from configuration;
// tests build them in-process with a fake clock.
package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/switchboard/switchboard/adapter"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/gateway"
	"github.com/switchboard/switchboard/internal/sioparser"
	"github.com/switchboard/switchboard/internal/wstransport"
	"github.com/switchboard/switchboard/service"
	"github.com/switchboard/switchboard/state"
)

// Options configure a node. Zero durations take the contract's defaults.
type Options struct {
	Service service.Config
	Gateway gateway.Config
	Store   state.Store
	// Adapter carries broadcasts between nodes; nil means one node, with
	// the in-memory adapter.Local.
	Adapter socket.AdapterConstructor
	// AdapterHealthy reports the adapter's pub/sub health for readiness.
	AdapterHealthy func() bool
	Verifier       gateway.Verifier
	Clock          func() time.Time
	Logger         zerolog.Logger

	NodeLease    time.Duration
	NodeRefresh  time.Duration
	JobPoll      time.Duration
	DrainTimeout time.Duration
	PingInterval time.Duration
	PingTimeout  time.Duration
	// Loops false leaves the background loops to the test (RunDue, Sweep).
	Loops bool
	// LibraryWebSocket serves websockets with the socket.io library's
	// transport instead of internal/wstransport.
	LibraryWebSocket bool
	// WSMaxQueue is our transport's MaxQueue; zero keeps its default.
	WSMaxQueue int
	// WSBroadcastDelay is our transport's BroadcastDelay.
	WSBroadcastDelay time.Duration
}

// Node is one running gateway node.
type Node struct {
	opts    Options
	IO      *socket.Server
	Service *service.Service
	Gateway *gateway.Gateway
	API     *api.Server
	Metrics *api.Metrics
	log     zerolog.Logger

	srv     *http.Server
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	leaseOK bool
	// claimAfter holds off reaping after this node was cut off from the
	// store: every other node's lease may have run out during the same
	// outage, and they need one refresh period to renew it.
	claimAfter time.Time
}

// New assembles a node; Serve starts it.
func New(o Options) (*Node, error) {
	if o.Store == nil || o.Verifier == nil {
		return nil, errors.New("node: a store and a verifier are required")
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	def(&o.NodeLease, 10*time.Second)
	def(&o.NodeRefresh, 2*time.Second)
	def(&o.JobPoll, 250*time.Millisecond)
	def(&o.DrainTimeout, 20*time.Second)
	def(&o.PingInterval, 25*time.Second)
	def(&o.PingTimeout, 20*time.Second)
	log := o.Logger.With().Str("node", o.Service.NodeID).Logger()

	sopts := socket.DefaultServerOptions()
	sopts.SetPingInterval(o.PingInterval)
	sopts.SetPingTimeout(o.PingTimeout)
	maxMessage := int64(o.Gateway.MaxPayloadBytes) + 16<<10
	sopts.SetMaxHttpBufferSize(maxMessage)
	sopts.SetServeClient(false)
	// Packets of plain JSON values (every ack and emit of the gateway) are
	// encoded in one pass instead of the library's copy, walk and
	// reflection, with the same bytes.
	sopts.SetParser(sioparser.NewParser())
	sopts.SetCors(&types.Cors{Origin: "*", Credentials: true})
	// Our websocket transport builds each broadcast's frame once for all
	// its recipients and writes a connection's waiting broadcast frames
	// with one system call (see internal/wstransport).
	var ws *wstransport.Builder
	if !o.LibraryWebSocket {
		ws = wstransport.NewBuilder()
		ws.PingDelay = min(wstransport.DefaultPingDelay, o.PingTimeout/10)
		ws.MaxMessage = maxMessage
		if o.WSMaxQueue > 0 {
			ws.MaxQueue = o.WSMaxQueue
		}
		ws.BroadcastDelay = o.WSBroadcastDelay
		sopts.SetTransports(types.NewSet[socket.TransportCtor](socket.Polling, ws))
	}
	// Without Redis, the in-memory adapter that hands broadcasts straight
	// to our websocket transport (adapter.Local; the Redis adapter
	// delivers locally through it too).
	if o.Adapter != nil {
		sopts.SetAdapter(o.Adapter)
	} else {
		sopts.SetAdapter(adapter.LocalBuilder{})
	}
	io := socket.NewServer(nil, sopts)

	n := &Node{opts: o, IO: io, log: log, Metrics: api.NewMetrics()}
	if ws != nil {
		n.Metrics.WebSocket(func() api.WebSocketStats {
			s := ws.Stats()
			return api.WebSocketStats{Direct: s.Direct, SlowClients: s.SlowClients, Flushers: s.Flushers, OutboxWrites: s.OutboxWrites}
		})
	}
	if b, ok := o.Adapter.(interface{ Stats() adapter.Stats }); ok {
		n.Metrics.PubSub(func() api.PubSubStats {
			s := b.Stats()
			return api.PubSubStats{Published: s.Published, Received: s.Received, Ignored: s.Ignored, Dropped: s.Dropped,
				Malformed: s.Malformed, Resubscribes: s.Resubscribes, ProbeFailures: s.ProbeFailures, Channels: s.Channels, Healthy: s.Healthy}
		})
	}
	n.Service = service.New(o.Service, o.Store, gateway.NewEmitter(io, log), o.Clock, log)
	n.Gateway = gateway.New(o.Gateway, io, n.Service, o.Verifier, n.Metrics, log)
	if f, ok := o.Adapter.(interface{ Flush(context.Context) error }); ok {
		n.Gateway.SetRoomsReady(f.Flush)
	}
	n.API = api.New(api.Config{RequestTimeout: o.Gateway.RequestTimeout}, n.Service, o.Verifier, n.ready, n.Metrics.Registry, log)
	sio := io.ServeHandler(nil)
	if ws != nil {
		ws.TakeHeartbeats(io.Engine())
	}
	n.API.Echo().Any("/socket.io/*", echo.WrapHandler(n.refuseNewWhileDraining(libraryRequest(sio))))
	return n, nil
}

// refuseNewWhileDraining answers a new Engine.IO handshake (no sid), or a
// request for a session this node does not hold, with 503 while the node
// drains, so a load balancer retries it on another node
// (nginx proxy_next_upstream http_503, HAProxy retry-on 503). A Socket.IO
// connect_error would instead stop the standard clients from reconnecting.
func (n *Node) refuseNewWhileDraining(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Gateway.Draining() && !n.holds(r.URL.Query().Get("sid")) {
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"error":"node is draining","code":"unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// libraryRequest gives the socket.io library its own shallow copy of each
// request, trimmed of what the library keeps for the life of a connection
// and does not need:
//
//   - The headers that neither the library nor the gateway reads: cookies
//     and credentials (members authenticate with the token in the CONNECT
//     payload) and browser hints. A browser's cookies would otherwise cost
//     every connection their size again. What the library does read stays
//     (Origin, Host, Upgrade, Connection, Sec-WebSocket-*, Content-Type,
//     Content-Length, Accept-Encoding, User-Agent, X-Forwarded-*), in a new
//     header: net/textproto shares one array between the value lists of a
//     request's headers, which any header kept would otherwise keep whole.
//   - For a WebSocket upgrade, the HTTP server's contexts (the
//     connection's and the request's, with their values and cancellation
//     links, ~0.3 KiB): the copy gets a context of its own, canceled when
//     the handler returns as the server cancels the request's. A polling
//     request keeps the server's context, whose cancellation tells the
//     library that a long poll's client went away.
//
// Being a copy, it also lets the gateway clear the header map once a
// socket has connected (gateway.forgetHandshake) without touching the
// request the HTTP server and Echo still hold.
func libraryRequest(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(context.Background())
			defer cancel()
		}
		kept := make(http.Header, len(r.Header))
		for name, values := range r.Header {
			if !unusedHeader(name) {
				kept[name] = slices.Clone(values)
			}
		}
		own := r.WithContext(ctx)
		own.Header = kept
		h.ServeHTTP(w, own)
	})
}

// unusedHeader reports whether the canonical header name is one that
// libraryRequest removes.
func unusedHeader(name string) bool {
	switch name {
	case "Cookie", "Authorization", "Proxy-Authorization", "Accept", "Accept-Language", "Referer",
		"Cache-Control", "Pragma", "Dnt", "Priority", "Upgrade-Insecure-Requests":
		return true
	}
	return strings.HasPrefix(name, "Sec-Fetch-") || strings.HasPrefix(name, "Sec-Ch-")
}

// holds reports whether this node holds the Engine.IO session sid (a
// polling session that hashes back here during a drain after its handshake
// went elsewhere is not ours: 503 lets the balancer pass it on).
func (n *Node) holds(sid string) bool {
	if sid == "" {
		return false
	}
	_, ok := n.IO.Engine().Clients().Load(sid)
	return ok
}

func def(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// Handler is the node's HTTP handler (REST, health, metrics, Socket.IO).
func (n *Node) Handler() http.Handler { return n.API.Handler() }

// ready is the readiness check: the store answers, pub/sub is healthy, the
// node holds its lease, and it is not draining.
func (n *Node) ready(ctx context.Context) error {
	if n.Gateway.Draining() {
		return errors.New("draining")
	}
	if err := n.opts.Store.Ping(ctx); err != nil {
		return fmt.Errorf("state store: %w", err)
	}
	if n.opts.AdapterHealthy != nil && !n.opts.AdapterHealthy() {
		return errors.New("pub/sub unhealthy")
	}
	return nil
}

// Serve listens on l and runs the background loops until Shutdown.
func (n *Node) Serve(l net.Listener) error {
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.srv = &http.Server{Handler: n.Handler(), ReadHeaderTimeout: 10 * time.Second}
	// Register before serving so that reaping never races the first
	// connections.
	n.refreshLease(ctx)
	if n.opts.Loops {
		n.loop(ctx, n.opts.JobPoll, func(ctx context.Context) {
			for i := 0; i < 10; i++ {
				if k, err := n.Service.RunDue(ctx, 100); err != nil || k < 100 {
					if err != nil {
						n.log.Warn().Err(err).Msg("run due jobs")
					}
					return
				}
			}
		})
		n.loop(ctx, n.opts.NodeRefresh, n.refreshLease)
		n.wg.Add(1)
		go func() { defer n.wg.Done(); n.Gateway.Sweep(ctx) }()
	}
	n.log.Info().Str("addr", l.Addr().String()).Msg("serving")
	err := n.srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (n *Node) loop(ctx context.Context, every time.Duration, f func(context.Context)) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				f(ctx)
			}
		}
	}()
}

// refreshLease renews this node's lease, re-registers what it holds when the
// lease was lost, and turns dead nodes into reaping jobs.
func (n *Node) refreshLease(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, n.opts.NodeRefresh)
	defer cancel()
	now := n.opts.Clock()
	lost, err := n.opts.Store.Nodes().Refresh(cctx, n.opts.Service.NodeID, n.opts.NodeLease, now)
	n.mu.Lock()
	if err != nil {
		n.claimAfter = now.Add(n.opts.NodeLease)
		n.mu.Unlock()
		n.log.Warn().Err(err).Msg("node lease refresh")
		return
	}
	first := !n.leaseOK
	n.leaseOK = true
	if first || lost {
		// Our own lease was missing: so may be everyone's. Give the
		// others a lease period to come back before judging them dead.
		n.claimAfter = now.Add(n.opts.NodeLease)
	}
	claim := !now.Before(n.claimAfter)
	n.mu.Unlock()
	if lost && !first {
		k := n.Gateway.Restore(cctx)
		n.log.Warn().Int("restored", k).Msg("lease was lost: re-registered local sockets")
	}
	if !claim {
		return
	}
	if dead, err := n.Service.ClaimDeadNodes(cctx); err != nil {
		n.log.Warn().Err(err).Msg("claim dead nodes")
	} else if len(dead) > 0 {
		n.log.Info().Strs("dead_nodes", dead).Msg("scheduled reaping")
	}
}

// Shutdown drains the node (SPEC 6): readiness false, clients' transports
// closed over the first half of the drain timeout, registration removed,
// server closed, all within the drain timeout.
func (n *Node) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.opts.DrainTimeout)
	defer cancel()
	n.Gateway.Drain(ctx, n.opts.DrainTimeout/2)
	if err := n.opts.Store.Nodes().Deregister(ctx, n.opts.Service.NodeID); err != nil {
		n.log.Warn().Err(err).Msg("deregister")
	}
	if n.cancel != nil {
		n.cancel()
	}
	n.IO.Close(nil)
	var err error
	if n.srv != nil {
		err = n.srv.Shutdown(ctx)
	}
	n.wg.Wait()
	return err
}
