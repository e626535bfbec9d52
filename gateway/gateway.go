// Package gateway is Switchboard's Socket.IO front: it authenticates
// handshakes, decodes and bounds each event's payload, calls the domain
// service, answers the ack and turns the service's deliveries into emits.
// One file per domain (meetings, calls, guests, presence) holds the handlers;
// this file holds the wiring.
package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"golang.org/x/time/rate"

	gojson "github.com/goccy/go-json"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/internal/warm"
	"github.com/switchboard/switchboard/service"
)

// Config holds the gateway's own limits; the rules' limits live in
// service.Config.
type Config struct {
	RequestTimeout  time.Duration
	MaxPayloadBytes int
	EventsPerSecond float64
	EventBurst      int
	PresenceGrace   time.Duration
	PresenceTTL     time.Duration
	SweepInterval   time.Duration
}

// DefaultConfig returns the contract's defaults.
func DefaultConfig() Config {
	return Config{
		RequestTimeout:  5 * time.Second,
		MaxPayloadBytes: 64 << 10,
		EventsPerSecond: 20,
		EventBurst:      40,
		PresenceGrace:   5 * time.Second,
		PresenceTTL:     120 * time.Second,
		SweepInterval:   time.Second,
	}
}

// Verifier checks member tokens.
type Verifier interface {
	Verify(token string) (auth.Claims, error)
}

// Gateway binds a Socket.IO server to the domain service.
type Gateway struct {
	cfg      Config
	io       *socket.Server
	svc      *service.Service
	verifier Verifier
	log      zerolog.Logger
	metrics  Metrics

	// member and guest map each event a socket of the namespace may emit
	// to its handler; built once, shared by every socket.
	member map[string]handler
	guest  map[string]handler

	mu    sync.Mutex
	conns map[socket.SocketId]*conn
	// byTransport finds the socket of a namespace on one Engine.IO
	// connection, to catch a second CONNECT for the same namespace.
	byTransport map[string]*conn
	// pending are cleanups of closed sockets that failed (the store was
	// unreachable); the sweep retries them so nothing stays registered.
	pending []*conn

	draining atomic.Bool

	// handlers runs the events' handlers on kept goroutines (see
	// warm.Pool): the library starts a goroutine for each burst of a
	// socket's events, whose stack the handler's work would grow anew.
	handlers *warm.Pool

	// roomsReady, when set, waits until the rooms a socket just joined
	// receive broadcasts from every node (the cluster adapter's
	// subscriptions are active).
	roomsReady func(ctx context.Context) error
}

// SetRoomsReady installs the wait for cross-node room subscriptions (the
// Redis adapter's Flush). With it, a handshake completes only once the
// socket's user and device rooms hear the whole cluster, so an event sent
// to the user right after the connect is not missed.
func (g *Gateway) SetRoomsReady(f func(ctx context.Context) error) { g.roomsReady = f }

// joinRooms puts a socket in its rooms before its handshake completes and
// waits until the cluster can reach them.
func (g *Gateway) joinRooms(ctx context.Context, s *socket.Socket, names ...string) {
	s.Join(rooms(names)...)
	if g.roomsReady != nil {
		if err := g.roomsReady(ctx); err != nil {
			g.log.Warn().Err(err).Str("event", "connect").Msg("room subscriptions not confirmed")
		}
	}
}

// Metrics receives the gateway's counters; nil methods are fine.
type Metrics interface {
	Event(event, outcome string, d time.Duration)
	Connected(namespace string, delta int)
}

type nopMetrics struct{}

func (nopMetrics) Event(string, string, time.Duration) {}
func (nopMetrics) Connected(string, int)               {}

// conn is the gateway's record of one socket.
type conn struct {
	sock  *socket.Socket
	actor service.Actor // members
	guest service.Guest // guests
	isGst bool
	limit *rate.Limiter // under mu, made at the first event (allow)

	// attached is closed once the socket's events are routed (attach).
	attached     chan struct{}
	attachedOnce sync.Once

	mu            sync.Mutex
	meetings      map[string]bool // made at the first join
	lastHeartbeat time.Time
	expired       bool
	// staleEngine: a sweep found the engine connection closed while the
	// socket had not fired disconnect. The library's close runs beside the
	// sweep (the engine is marked closed before its close reaches the
	// socket), so only the next sweep, finding the same, disconnects it.
	staleEngine bool
	// The lifecycle, under mu. active counts the events being handled.
	// closing (a drain is about to close the transport) and closed (the
	// socket went away) stop new events from being handled. The store
	// cleanup of a closed socket runs once no event is active (released),
	// so an event still being handled (a heartbeat) cannot write the
	// socket's presence back after its cleanup removed it.
	active   int
	closing  bool
	closed   bool
	released bool
}

// begin admits an event for handling; false once the socket is closing or
// closed (the event is neither applied nor answered: its ack could not
// reach the client, which sends it again on its next connection). Every
// admitted event calls end.
func (c *conn) begin() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.closed {
		return false
	}
	c.active++
	return true
}

// end finishes an admitted event. It reports true when the socket closed
// meanwhile and this was its last active event: the caller then runs the
// store cleanup that close deferred.
func (c *conn) end() (release bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.active--
	if c.closed && c.active == 0 && !c.released {
		c.released = true
		return true
	}
	return false
}

// quiesce stops admitting events and waits, at most until deadline, for
// the admitted ones to be answered. A drain calls it before it closes the
// transport, so it never cuts the ack of an event it applied.
func (c *conn) quiesce(deadline time.Time) {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	for time.Now().Before(deadline) {
		c.mu.Lock()
		idle := c.active == 0
		c.mu.Unlock()
		if idle {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (c *conn) joined() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.meetings))
	for id := range c.meetings {
		out = append(out, id)
	}
	return out
}

// New wires the handlers into io. The service must emit through
// g.Emitter() (see NewEmitter).
func New(cfg Config, io *socket.Server, svc *service.Service, v Verifier, m Metrics, log zerolog.Logger) *Gateway {
	if m == nil {
		m = nopMetrics{}
	}
	g := &Gateway{cfg: cfg, io: io, svc: svc, verifier: v, log: log, metrics: m, conns: map[socket.SocketId]*conn{},
		byTransport: map[string]*conn{},
		member:      map[string]handler{}, guest: map[string]handler{},
		handlers: warm.New(handlerWorkers, handlerWorkerIdle)}
	addTo := func(table map[string]handler) func(string, handler) {
		return func(event string, h handler) { table[event] = h }
	}
	g.meetingHandlers(addTo(g.member))
	g.callHandlers(addTo(g.member))
	g.presenceHandlers(addTo(g.member))
	g.memberGuestHandlers(addTo(g.member))
	g.guestHandlers(addTo(g.guest))
	members := io.Of("/", nil)
	members.Use(g.authenticateMember)
	members.On("connection", func(args ...any) { g.onMember(args[0].(*socket.Socket)) })
	guests := io.Of("/external", nil)
	guests.Use(g.authenticateGuest)
	guests.On("connection", func(args ...any) { g.onGuest(args[0].(*socket.Socket)) })
	return g
}

// Kept handler goroutines (Gateway.handlers): enough for the events that
// run at once on a busy node, each kept for a while after its last event.
const (
	handlerWorkers    = 64
	handlerWorkerIdle = 5 * time.Second
)

// NewEmitter returns the service.Emitter that delivers through io's adapters.
func NewEmitter(io *socket.Server, log zerolog.Logger) service.Emitter {
	return service.EmitterFunc(func(d service.Delivery) {
		data, err := plain(d.Data)
		if err != nil {
			log.Error().Err(err).Str("event", d.Event).Msg("encode broadcast")
			return
		}
		nsp := io.Of(d.Namespace, nil)
		var op *socket.BroadcastOperator
		if len(d.Rooms) > 0 {
			op = nsp.To(rooms(d.Rooms)...)
		} else {
			op = nsp.Except()
		}
		if len(d.Except) > 0 {
			op = op.Except(rooms(d.Except)...)
		}
		if err := op.Emit(d.Event, data); err != nil {
			log.Error().Err(err).Str("event", d.Event).Msg("broadcast")
		}
	})
}

// plainer is a value that makes its own plain form, equal to the JSON
// round trip (state.Meeting: every call and meeting event carries one).
type plainer interface{ Plain() any }

// plain turns a payload into JSON-shaped values (maps, slices, strings,
// numbers, booleans, nil) so every encoder — the local JSON one and the
// cluster adapter's msgpack — sends the same field names. Values already in
// that shape (the maps the service builds) are copied without encoding;
// a plainer makes its own; anything else (structs, typed slices and maps)
// goes through a JSON round trip, which is what defines the shape. Numbers
// keep their Go type, which both encoders write as JSON numbers.
func plain(v any) (any, error) {
	switch t := v.(type) {
	case nil, string, bool, int, int64, int32, uint, uint64, uint32:
		return t, nil
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return nil, fmt.Errorf("plain: unsupported number %v", t)
		}
		return t, nil
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			p, err := plain(e)
			if err != nil {
				return nil, err
			}
			out[k] = p
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			p, err := plain(e)
			if err != nil {
				return nil, err
			}
			out[i] = p
		}
		return out, nil
	case []string:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = e
		}
		return out, nil
	case plainer:
		return t.Plain(), nil
	}
	// github.com/goccy/go-json, the drop-in for encoding/json the Redis
	// store uses for meetings (held to encoding/json there), is two to
	// three times faster at this; TestPlainAgreesWithJSONRoundTrip holds
	// the result to encoding/json's round trip.
	b, err := gojson.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	if err := gojson.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func rooms(names []string) []socket.Room {
	out := make([]socket.Room, len(names))
	for i, n := range names {
		out[i] = socket.Room(n)
	}
	return out
}

// connectError refuses a handshake with data {code, message}.
func connectError(code, msg string) *socket.ExtendedError {
	return socket.NewExtendedError(msg, map[string]any{"code": code, "message": msg})
}

func authString(auth any, key string) string {
	m, ok := auth.(map[string]any)
	if !ok {
		return ""
	}
	s, _ := m[key].(string)
	return s
}

// forgetHandshake drops what the library keeps of a socket's handshake
// for the connection's life and the gateway does not use once the
// middleware has read the CONNECT packet: its auth payload (a member's
// token, a guest's session token: secrets the library would otherwise also
// put in the socket's description that fetchSockets sends to other nodes),
// and the copies of the upgrade request's headers and query string (the
// handshake's maps, the request's header map and the library's cached
// views of both), ~2 KiB per connection. The socket is in no room yet, and
// the library has built the handshake and read the request by then, so
// nothing else reads them concurrently. A later namespace CONNECT on the
// same connection sees empty headers and query; the gateway reads neither.
func forgetHandshake(s *socket.Socket) {
	h := s.Handshake()
	h.Auth, h.Headers, h.Query = nil, nil, nil
	if hc := s.Request(); hc != nil {
		hc.Headers().Replace(nil)
		hc.Query().Replace(nil)
		hc.Request().Header = nil
	}
}

func (g *Gateway) authenticateMember(s *socket.Socket, next func(*socket.ExtendedError)) {
	if g.draining.Load() {
		next(connectError(service.CodeUnavailable, "node is draining, reconnect"))
		return
	}
	token := authString(s.Handshake().Auth, "token")
	forgetHandshake(s)
	claims, err := g.verifier.Verify(token)
	if err != nil {
		g.log.Info().Str("outcome", "unauthorized").Str("event", "connect").Str("reason", err.Error()).Msg("handshake refused")
		next(connectError(service.CodeUnauthorized, "invalid or expired token"))
		return
	}
	a := service.Actor{UserID: claims.UserID, DeviceID: claims.DeviceID, Name: claims.Name, ConnID: string(s.Id())}
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.RequestTimeout)
	defer cancel()
	own := []string{service.UserRoom(a.UserID)}
	if a.DeviceID != "" {
		own = append(own, service.DeviceRoom(a.UserID, a.DeviceID))
	}
	g.joinRooms(ctx, s, own...)
	if err := g.svc.Connect(ctx, a); err != nil {
		e := service.AsError(err)
		g.log.Info().Str("outcome", e.Code).Str("event", "connect").Str("user_id", a.UserID).Msg("handshake refused")
		next(connectError(e.Code, e.Message))
		return
	}
	c := &conn{sock: s, actor: a, lastHeartbeat: g.svc.Now(), attached: make(chan struct{})}
	g.register(c)
	next(nil)
	g.awaitAttach(c)
}

func (g *Gateway) authenticateGuest(s *socket.Socket, next func(*socket.ExtendedError)) {
	if g.draining.Load() {
		next(connectError(service.CodeUnavailable, "node is draining, reconnect"))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.RequestTimeout)
	defer cancel()
	auth := s.Handshake().Auth
	forgetHandshake(s)
	sess, err := g.svc.AuthenticateGuest(ctx, authString(auth, "session_id"), authString(auth, "session_token"))
	if err != nil {
		e := service.AsError(err)
		g.log.Info().Str("outcome", e.Code).Str("event", "connect").Msg("guest handshake refused")
		next(connectError(e.Code, e.Message))
		return
	}
	gst := service.Guest{SessionID: sess.ID, MeetingID: sess.MeetingID, ConnID: string(s.Id())}
	g.joinRooms(ctx, s, service.GuestsRoom(gst.MeetingID), service.SessionRoom(gst.SessionID))
	if err := g.svc.GuestConnect(ctx, gst); err != nil {
		e := service.AsError(err)
		next(connectError(e.Code, e.Message))
		return
	}
	c := &conn{sock: s, guest: gst, isGst: true, attached: make(chan struct{})}
	g.register(c)
	next(nil)
	g.awaitAttach(c)
}

// awaitAttach holds the goroutine that runs the handshake middleware (the
// connection's reader) until the socket is attached, at most the request
// timeout. The library connects a socket in two steps: after the
// middleware, another goroutine writes the CONNECT ack and only then
// records the namespace on the client. Meanwhile the reader goes on, and a
// client that emits as soon as it has the ack (socket.io-client sends its
// buffered emits at once) has that event read before the namespace is
// recorded: the library takes it for a packet of an unknown namespace and
// closes the connection. Holding the reader until attach, which runs after
// the namespace is recorded, closes that window.
func (g *Gateway) awaitAttach(c *conn) {
	t := time.NewTimer(g.cfg.RequestTimeout)
	defer t.Stop()
	select {
	case <-c.attached:
	case <-t.C:
		g.log.Warn().Str("event", "connect").Str("outcome", "attach_timeout").Str("socket", string(c.sock.Id())).Msg("socket not attached within the request timeout")
	}
}

// markAttached releases awaitAttach; safe to call more than once and on a
// conn made without the channel.
func (c *conn) markAttached() {
	if c != nil && c.attached != nil {
		c.attachedOnce.Do(func() { close(c.attached) })
	}
}

// transportKey names a namespace on one Engine.IO connection.
func transportKey(s *socket.Socket) string {
	if ec := s.Conn(); ec != nil {
		return string(ec.Id()) + "|" + s.Nsp().Name()
	}
	return string(s.Id())
}

// register records a socket whose handshake succeeded. A second CONNECT
// for one namespace on one connection is normally read only after the first
// socket is attached (awaitAttach), and the library then closes the
// connection. Should it be read earlier (the wait timed out), the client
// gets a second server socket on the same connection, and the library
// routes the client's packets to whichever of the two finished connecting
// last. Only the newest socket is kept in the rooms (two would double every
// broadcast); the older one is released from rooms and store, but stays
// usable: its events are handled for the kept one (see target), and nothing
// is sent to the client, whose connection is shared by both.
func (g *Gateway) register(c *conn) {
	key := transportKey(c.sock)
	g.mu.Lock()
	old := g.byTransport[key]
	g.byTransport[key] = c
	g.conns[c.sock.Id()] = c
	g.mu.Unlock()
	g.metrics.Connected(c.namespace(), 1)
	if old != nil && old != c {
		g.log.Info().Str("event", "connect").Str("outcome", "duplicate").Msg("second CONNECT on one connection: released the older socket")
		leaveAll(old.sock)
		g.closed(old)
	}
}

// leaveAll takes s out of every room and out of the namespace's broadcasts
// (Leave alone keeps it in the adapter's socket list, which namespace-wide
// broadcasts reach).
func leaveAll(s *socket.Socket) { s.Nsp().Adapter().DelAll(s.Id()) }

// namespace names the namespace of the conn's socket.
func (c *conn) namespace() string {
	if c.isGst {
		return service.GuestsNamespace
	}
	return service.MembersNamespace
}

func (g *Gateway) conn(s *socket.Socket) *conn {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.conns[s.Id()]
}

// target is the conn that handles what socket s receives: the conn kept for
// its connection and namespace (s's own, unless s was released as a
// duplicate CONNECT), else own; nil when there is none.
func (g *Gateway) target(s *socket.Socket, own *conn) *conn {
	g.mu.Lock()
	defer g.mu.Unlock()
	if cur := g.byTransport[transportKey(s)]; cur != nil {
		return cur
	}
	return own
}

func (g *Gateway) onMember(s *socket.Socket) {
	g.attach(s, g.member, service.CodeInvalidPayload, "unknown event %q")
}

func (g *Gateway) onGuest(s *socket.Socket) {
	g.attach(s, g.guest, service.CodeForbidden, "guests may not emit %q")
}

// attach binds a connected socket's events to its handler table.
func (g *Gateway) attach(s *socket.Socket, table map[string]handler, code, format string) {
	own := g.conn(s)
	defer own.markAttached()
	switch kept := g.target(s, own); {
	case kept == nil:
		// Closed before its connection completed.
		s.Disconnect(true)
		return
	case kept != own:
		// Released as a duplicate before the library finished connecting
		// it, which joined it to its own room and so to every namespace
		// broadcast: leave again.
		leaveAll(s)
	}
	s.OnAny(func(args ...any) {
		if c := g.target(s, own); c != nil {
			// On a kept goroutine, while the socket's own waits: its
			// events stay in order.
			g.handlers.Run(func() { g.route(c, table, args, code, format) })
		}
	})
	s.On("disconnect", func(reason ...any) {
		ev := g.log.Info().Str("event", "disconnect").Str("socket", string(s.Id()))
		if len(reason) > 0 {
			ev = ev.Str("outcome", fmt.Sprint(reason[0]))
		}
		if len(reason) > 1 && reason[1] != nil {
			ev = ev.Str("detail", fmt.Sprint(reason[1]))
		}
		ev.Msg("socket closed")
		if own != nil {
			g.closed(own)
		}
		// A released duplicate that the client's namespace DISCONNECT
		// reached: the client left, so the kept socket goes too.
		if len(reason) > 0 && reason[0] == "client namespace disconnect" {
			if c := g.target(s, nil); c != nil && c != own {
				c.sock.Disconnect(false)
			}
		}
	})
}

// closed runs once per socket when it goes away: the socket leaves the
// gateway's indexes at once, and its store cleanup runs now or, if events
// are still being handled, after the last of them.
func (g *Gateway) closed(c *conn) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.markAttached() // gone: nothing to wait for
	release := c.active == 0
	c.released = release
	c.mu.Unlock()
	g.mu.Lock()
	delete(g.conns, c.sock.Id())
	if key := transportKey(c.sock); g.byTransport[key] == c {
		delete(g.byTransport, key)
	}
	g.mu.Unlock()
	g.metrics.Connected(c.namespace(), -1)
	if release {
		g.release(c)
	}
	// Otherwise the last active event releases it (conn.end).
}

// release runs the store cleanup of a closed socket, once, when none of its
// events is active; a failed cleanup is retried later.
func (g *Gateway) release(c *conn) {
	c.mu.Lock()
	expired := c.expired
	c.mu.Unlock()
	if !c.isGst && expired {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.RequestTimeout)
	defer cancel()
	if err := g.cleanup(ctx, c); err != nil {
		g.log.Warn().Err(err).Str("event", "disconnect").Msg("disconnect cleanup failed; will retry")
		g.mu.Lock()
		if len(g.pending) < maxPendingCleanups {
			g.pending = append(g.pending, c)
		}
		g.mu.Unlock()
	}
}

// maxPendingCleanups bounds the retry list during a long store outage; past
// it, presence TTLs and node reaping still clean up.
const maxPendingCleanups = 100_000

// cleanup releases what a closed socket held in the store.
func (g *Gateway) cleanup(ctx context.Context, c *conn) error {
	if c.isGst {
		return g.svc.GuestDisconnect(ctx, c.guest, g.cfg.PresenceGrace)
	}
	return g.svc.Disconnect(ctx, c.actor, c.joined(), g.cfg.PresenceGrace)
}

// retryCleanups runs the cleanups that failed, keeping those that fail
// again.
func (g *Gateway) retryCleanups(ctx context.Context) {
	g.mu.Lock()
	todo := g.pending
	g.pending = nil
	g.mu.Unlock()
	var failed []*conn
	for i, c := range todo {
		cctx, cancel := context.WithTimeout(ctx, g.cfg.RequestTimeout)
		err := g.cleanup(cctx, c)
		cancel()
		if err != nil {
			failed = append(failed, todo[i:]...) // the store is still away: stop here
			break
		}
	}
	if len(failed) > 0 {
		g.mu.Lock()
		g.pending = append(failed, g.pending...)
		g.mu.Unlock()
	}
}

// route dispatches one received event (args[0] is its name) to its handler
// in table; an event without one is refused with code.
func (g *Gateway) route(c *conn, table map[string]handler, args []any, code, format string) {
	if len(args) == 0 {
		return
	}
	name, _ := args[0].(string)
	h, ok := table[name]
	if !ok {
		err := service.Errorf(code, format, name)
		h = func(context.Context, *conn, json.RawMessage) (map[string]any, error) { return nil, err }
	}
	g.dispatch(c, name, args[1:], h)
}

// handler is the shape of every event handler: decode into its request,
// call the service, return the ack's fields.
type handler func(ctx context.Context, c *conn, payload json.RawMessage) (map[string]any, error)

func (g *Gateway) dispatch(c *conn, event string, args []any, h handler) {
	if !c.begin() {
		g.log.Debug().Str("event", event).Str("outcome", "dropped").Str("socket", string(c.sock.Id())).Msg("event after the socket began closing")
		return
	}
	defer func() {
		if c.end() {
			g.release(c)
		}
	}()
	start := time.Now()
	ack, payload := splitArgs(args)
	var once sync.Once
	reply := func(fields map[string]any, err error) {
		once.Do(func() { g.answer(c, event, start, ack, fields, err) })
	}
	if !g.allow(c) {
		reply(nil, service.Errorf(service.CodeRateLimited, "more than %g events per second", g.cfg.EventsPerSecond))
		return
	}
	raw, err := encodePayload(payload, g.cfg.MaxPayloadBytes)
	if err != nil {
		reply(nil, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.RequestTimeout)
	defer cancel()
	// The handler runs while the socket's own goroutine waits (on a kept
	// goroutine, see attach), so a socket's events are handled in order. Every store call honours ctx; should one not, a
	// timer still answers unavailable just after the request timeout (the
	// first answer wins).
	guard := time.AfterFunc(g.cfg.RequestTimeout+50*time.Millisecond, func() {
		reply(nil, service.Errorf(service.CodeUnavailable, "the state store did not answer in time"))
	})
	defer guard.Stop()
	defer func() {
		if r := recover(); r != nil {
			g.log.Error().Interface("panic", r).Str("event", event).Msg("handler panic")
			reply(nil, service.Errorf(service.CodeInternal, "internal error"))
		}
	}()
	f, err := h(ctx, c, raw)
	if err != nil && ctx.Err() != nil {
		err = service.Errorf(service.CodeUnavailable, "the state store did not answer in time")
	}
	reply(f, err)
}

// answer logs, counts and acks one handled event.
func (g *Gateway) answer(c *conn, event string, start time.Time, ack socket.Ack, fields map[string]any, err error) {
	outcome := "ok"
	var resp map[string]any
	if err != nil {
		e := service.AsError(err)
		outcome = e.Code
		resp = map[string]any{"success": false, "error": e.Message, "code": e.Code}
		ev := g.log.Info()
		if e.Code == service.CodeInternal || e.Code == service.CodeUnavailable {
			ev = g.log.Error().Err(e.Err)
		}
		ev.Str("event", event).Str("outcome", e.Code).Str("socket", string(c.sock.Id())).Msg(e.Message)
	} else {
		resp = map[string]any{"success": true}
		for k, v := range fields {
			resp[k] = v
		}
	}
	g.metrics.Event(event, outcome, time.Since(start))
	if ack != nil {
		if p, err := plain(resp); err == nil {
			ack([]any{p}, nil)
		}
	}
}

func splitArgs(args []any) (socket.Ack, any) {
	var ack socket.Ack
	if n := len(args); n > 0 {
		if a, ok := args[n-1].(socket.Ack); ok {
			ack = a
			args = args[:n-1]
		} else if a, ok := args[n-1].(func([]any, error)); ok {
			ack = a
			args = args[:n-1]
		}
	}
	var payload any
	if len(args) > 0 {
		payload = args[0]
	}
	return ack, payload
}

// encodePayload bounds the payload and returns it as JSON. A missing
// payload is an empty object. The node's parser (internal/sioparser)
// hands a payload over as the JSON it arrived as, already checked to be
// valid, which is taken as it is.
func encodePayload(p any, max int) (json.RawMessage, error) {
	if p == nil {
		return json.RawMessage("{}"), nil
	}
	if raw, ok := p.(json.RawMessage); ok {
		if string(raw) == "null" {
			return json.RawMessage("{}"), nil
		}
		if len(raw) > max {
			return nil, service.Errorf(service.CodeTooLarge, "payload is larger than %d bytes", max)
		}
		return raw, nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, service.Errorf(service.CodeInvalidPayload, "payload is not JSON")
	}
	if len(b) > max {
		return nil, service.Errorf(service.CodeTooLarge, "payload is larger than %d bytes", max)
	}
	return b, nil
}

// decode unmarshals a payload into a request; a payload that is not an
// object or has fields of the wrong type is invalid_payload.
func decode(raw json.RawMessage, into any) error {
	if len(raw) == 0 || raw[0] != '{' {
		return service.Errorf(service.CodeInvalidPayload, "payload must be an object")
	}
	if err := json.Unmarshal(raw, into); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return service.Errorf(service.CodeInvalidPayload, "field %s has the wrong type", te.Field)
		}
		return service.Errorf(service.CodeInvalidPayload, "payload is malformed")
	}
	return nil
}

// allow takes one event from the socket's budget (Config.EventsPerSecond,
// EventBurst). The bucket is made full at the first event, as it would be
// had it been made at connect: an idle socket holds none.
func (g *Gateway) allow(c *conn) bool {
	c.mu.Lock()
	if c.limit == nil {
		c.limit = rate.NewLimiter(rate.Limit(g.cfg.EventsPerSecond), g.cfg.EventBurst)
	}
	l := c.limit
	c.mu.Unlock()
	return l.Allow()
}

// joinMeeting puts the socket in a meeting room after a successful service
// call, and returns once the cluster can reach it there (before the ack).
func (g *Gateway) joinMeeting(ctx context.Context, c *conn, id string) {
	c.mu.Lock()
	if c.meetings == nil {
		c.meetings = map[string]bool{}
	}
	c.meetings[id] = true
	c.mu.Unlock()
	g.joinRooms(ctx, c.sock, service.MeetingRoom(id))
}

func (c *conn) leaveMeeting(id string) {
	c.mu.Lock()
	delete(c.meetings, id)
	c.mu.Unlock()
	c.sock.Leave(socket.Room(service.MeetingRoom(id)))
}
