package adapter

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// pendingRequest collects the answers to one request of this node.
type pendingRequest struct {
	expected  int
	responses []message
	done      chan struct{}
}

// ackRequest routes the answers to one BroadcastWithAck of this node.
type ackRequest struct {
	clientCount func(uint64)
	ack         socket.Ack
}

// requestAll publishes req on the namespace's request channel and waits
// for one answer from each other live node: as many as Redis counts
// subscribers to the request channel (or Config.Peers says), minus this
// node. A node that crashed is not counted once Redis has seen its
// connection close, so it is never waited for. It waits at most
// RequestTimeout; then it returns the answers it has with an error
// wrapping ErrRequestTimeout.
func (a *Adapter) requestAll(req *request) ([]message, error) {
	if a.stopped.Load() {
		return nil, ErrClosed
	}
	timeout := a.b.cfg.RequestTimeout
	ctx, cancel := context.WithTimeout(a.ctx, timeout)
	defer cancel()
	n, err := a.b.peers(ctx, a.reqCh)
	if err != nil {
		return nil, err
	}
	if n <= 1 {
		return nil, nil
	}
	req.UID, req.RequestID = a.b.uid, newID()
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	p := &pendingRequest{expected: n - 1, done: make(chan struct{})}
	a.mu.Lock()
	a.pending[req.RequestID] = p
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.pending, req.RequestID)
		a.mu.Unlock()
	}()
	if err := a.b.pub.publishWait(ctx, a.reqCh, body); err != nil {
		return nil, fmt.Errorf("publish request: %w", err)
	}
	select {
	case <-p.done:
		a.mu.Lock()
		defer a.mu.Unlock()
		return p.responses, nil
	case <-ctx.Done():
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.ctx.Err() != nil {
			return p.responses, ErrClosed
		}
		return p.responses, fmt.Errorf("%w: %d of %d peers answered within %s",
			ErrRequestTimeout, len(p.responses), p.expected, timeout)
	}
}

// publishRequest publishes a request that expects no answer.
func (a *Adapter) publishRequest(req *request) error {
	req.UID = a.b.uid
	body, err := json.Marshal(req)
	if err != nil {
		a.b.stats.dropped.Add(1)
		return fmt.Errorf("encode request: %w", err)
	}
	if !a.b.pub.publish(a.reqCh, body) {
		return errQueueFull
	}
	return nil
}

// respond publishes an answer to a request: on the requester's own
// response channel when the request names it (the Node adapter 8.x always
// listens there too), else on the shared one.
func (a *Adapter) respond(m message, body []byte) {
	ch := a.respCh
	if uid := m.str("uid"); uid != "" {
		ch = a.respCh + uid + "#"
	}
	a.b.pub.publish(ch, body)
}

func (a *Adapter) respondJSON(m message, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		a.b.stats.dropped.Add(1)
		a.b.log.Warn().Err(err).Str("nsp", a.name).Msg("response cannot be encoded")
		return
	}
	a.respond(m, body)
}

// ServerCount returns the number of nodes serving this namespace (at least
// 1), from Config.Peers or PUBSUB NUMSUB of the request channel.
func (a *Adapter) ServerCount() int64 {
	ctx, cancel := context.WithTimeout(a.ctx, a.b.cfg.RequestTimeout)
	defer cancel()
	n, err := a.b.peers(ctx, a.reqCh)
	if err != nil {
		a.b.log.Warn().Err(err).Str("nsp", a.name).Msg("server count unavailable: assuming 1")
		return 1
	}
	return int64(max(n, 1))
}

// BroadcastWithAck delivers locally and, unless Local, asks the other
// nodes to deliver too (a BROADCAST request, as the Node adapter does);
// their client counts and acknowledgements come back to
// clientCountCallback and ack for as long as the broadcast's timeout
// (flags.Timeout, else RequestTimeout).
func (a *Adapter) BroadcastWithAck(packet *parser.Packet, opts *socket.BroadcastOptions, clientCountCallback func(uint64), ack socket.Ack) {
	if isLocal(opts) || a.stopped.Load() {
		a.Local.BroadcastWithAck(packet, opts, clientCountCallback, ack)
		return
	}
	packet.Nsp = a.name
	args, consumed, err := normalizeArgs(packet.Data)
	if consumed {
		packet.Data = args
	}
	if err == nil {
		err = a.publishBroadcastRequest(args, opts, clientCountCallback, ack)
	}
	if err != nil {
		a.b.stats.dropped.Add(1)
		a.b.log.Warn().Err(err).Str("nsp", a.name).Msg("broadcast with ack not published")
	}
	a.Local.BroadcastWithAck(packet, opts, clientCountCallback, ack)
}

func (a *Adapter) publishBroadcastRequest(args []any, opts *socket.BroadcastOptions, clientCount func(uint64), ack socket.Ack) error {
	timeout := a.b.cfg.RequestTimeout
	if opts != nil && opts.Flags != nil && opts.Flags.Timeout != nil && *opts.Flags.Timeout > 0 {
		timeout = *opts.Flags.Timeout
	}
	ms := timeout.Milliseconds()
	id := newID()
	body, err := encodeMsgpack(broadcastRequest{
		UID:       a.b.uid,
		RequestID: id,
		Type:      reqBroadcast,
		Packet:    wirePacket{Type: packetEvent, Data: args, Nsp: a.name},
		Opts: wireOpts{
			Rooms:  roomStrings(opts, true),
			Except: roomStrings(opts, false),
			Flags:  flagsOf(opts, &ms),
		},
	})
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.acks[id] = &ackRequest{clientCount: clientCount, ack: ack}
	a.mu.Unlock()
	// We cannot know when every remote client has answered: forget the
	// request when its timeout is over, as the Node adapter does.
	time.AfterFunc(timeout, func() {
		a.mu.Lock()
		delete(a.acks, id)
		a.mu.Unlock()
	})
	if !a.b.pub.publish(a.reqCh, body) {
		return errQueueFull
	}
	return nil
}

// FetchSockets returns the matching sockets of every node: the local ones
// (as *socket.Socket) and the remote ones (as SocketDetails whose Data is
// the JSON-decoded socket data). On timeout the callback gets what
// arrived and an error wrapping ErrRequestTimeout. The returned function
// blocks until the answers are in.
func (a *Adapter) FetchSockets(opts *socket.BroadcastOptions) func(func([]socket.SocketDetails, error)) {
	return func(callback func([]socket.SocketDetails, error)) {
		var sockets []socket.SocketDetails
		a.Local.FetchSockets(opts)(func(local []socket.SocketDetails, _ error) { sockets = local })
		if isLocal(opts) {
			callback(sockets, nil)
			return
		}
		resps, err := a.requestAll(&request{Type: reqRemoteFetch, Opts: requestOptsOf(opts)})
		for _, r := range resps {
			list, _ := r["sockets"].([]any)
			for _, s := range list {
				if rs, ok := parseRemoteSocket(s); ok {
					sockets = append(sockets, rs)
				}
			}
		}
		callback(sockets, err)
	}
}

// AddSockets makes the matching sockets of every node join rooms.
func (a *Adapter) AddSockets(opts *socket.BroadcastOptions, rooms []socket.Room) {
	a.Local.AddSockets(opts, rooms)
	if a.onlyHere(opts) {
		return
	}
	_ = a.publishRequest(&request{Type: reqRemoteJoin, Opts: requestOptsOf(opts), Rooms: roomNames(rooms)})
}

// DelSockets makes the matching sockets of every node leave rooms.
func (a *Adapter) DelSockets(opts *socket.BroadcastOptions, rooms []socket.Room) {
	a.Local.DelSockets(opts, rooms)
	if a.onlyHere(opts) {
		return
	}
	_ = a.publishRequest(&request{Type: reqRemoteLeave, Opts: requestOptsOf(opts), Rooms: roomNames(rooms)})
}

// DisconnectSockets disconnects the matching sockets of every node. It
// does not wait for the other nodes (nor does the Node adapter).
func (a *Adapter) DisconnectSockets(opts *socket.BroadcastOptions, status bool) {
	a.Local.DisconnectSockets(opts, status)
	if a.onlyHere(opts) {
		return
	}
	_ = a.publishRequest(&request{Type: reqRemoteDisconnect, Opts: requestOptsOf(opts), Close: &status})
}

// onlyHere: the operation is Local, the adapter is stopped, or it targets
// exactly one local socket (a RemoteSocket of this node).
func (a *Adapter) onlyHere(opts *socket.BroadcastOptions) bool {
	if isLocal(opts) || a.stopped.Load() {
		return true
	}
	rooms := roomStrings(opts, true)
	return len(rooms) == 1 && a.isPrivate(socket.Room(rooms[0]))
}

// ServerSideEmit sends packet ([event, ...args]) to the namespace on the
// other nodes. With a socket.Ack as last element it waits (in the
// background) for one answer per other live node and calls the ack with
// them, or with what arrived and an error after RequestTimeout. A handler
// on the receiving side gets a socket.Ack as last argument and answers
// with its first argument.
func (a *Adapter) ServerSideEmit(packet []any) error {
	if a.stopped.Load() {
		return ErrClosed
	}
	if n := len(packet); n > 0 {
		if ack, ok := packet[n-1].(socket.Ack); ok {
			data := packet[:n-1]
			go func() {
				resps, err := a.requestAll(&request{Type: reqServerSideEmit, Data: data})
				out := make([]any, 0, len(resps))
				for _, r := range resps {
					out = append(out, r["data"])
				}
				ack(out, err)
			}()
			return nil
		}
	}
	if err := a.publishRequest(&request{Type: reqServerSideEmit, Data: packet}); err != nil {
		return fmt.Errorf("server side emit: %w", err)
	}
	return nil
}

// onRequest handles a request from another node or from an emitter. Our
// own requests (same uid) are ignored: this node already applied them.
// Requests that may run user code (server-side emits, disconnections) run
// on their own goroutine so that a handler that itself makes a request
// cannot stall the pub/sub receiver; the others run in order with the
// broadcasts.
func (a *Adapter) onRequest(payload string) {
	m, err := decodeMessage(payload)
	if err != nil {
		a.b.stats.malformed.Add(1)
		a.b.stats.dropped.Add(1)
		return
	}
	if m.str("uid") == a.b.uid {
		a.b.stats.ignored.Add(1)
		return
	}
	id := m.str("requestId")
	switch m.typ() {
	case reqSockets:
		rooms, _ := stringList(m["rooms"])
		a.respondJSON(m, map[string]any{"requestId": id, "sockets": a.Local.Sockets(roomSet(rooms)).Keys()})
	case reqAllRooms:
		a.respondJSON(m, map[string]any{"requestId": id, "rooms": a.index.roomNames()})
	case reqRemoteJoin, reqRemoteLeave, reqRemoteDisconnect:
		rooms, except, ok := m.roomsAndExcept()
		if !ok {
			a.b.stats.ignored.Add(1) // the pre-8.x single-socket form
			return
		}
		opts := &socket.BroadcastOptions{Rooms: roomSet(rooms), Except: roomSet(except)}
		targets, _ := stringList(m["rooms"])
		switch m.typ() {
		case reqRemoteJoin:
			a.Local.AddSockets(opts, toRooms(targets))
		case reqRemoteLeave:
			a.Local.DelSockets(opts, toRooms(targets))
		default:
			closeConn, _ := m["close"].(bool)
			go a.Local.DisconnectSockets(opts, closeConn)
		}
	case reqRemoteFetch:
		rooms, except, _ := m.roomsAndExcept()
		opts := &socket.BroadcastOptions{Rooms: roomSet(rooms), Except: roomSet(except)}
		var list []any
		a.Local.FetchSockets(opts)(func(local []socket.SocketDetails, _ error) {
			list = make([]any, 0, len(local))
			for _, s := range local {
				list = append(list, socketJSON(s))
			}
		})
		a.respondJSON(m, map[string]any{"requestId": id, "sockets": list})
	case reqServerSideEmit:
		data, ok := m["data"].([]any)
		if !ok || len(data) == 0 {
			a.b.stats.malformed.Add(1)
			return
		}
		if id != "" {
			var once sync.Once
			data = append(data, socket.Ack(func(args []any, _ error) {
				once.Do(func() {
					var arg any
					if len(args) > 0 {
						arg = args[0]
					}
					a.respondJSON(m, map[string]any{"type": reqServerSideEmit, "requestId": id, "data": arg})
				})
			}))
		}
		go a.Nsp().OnServerSideEmit(data)
	case reqBroadcast:
		a.onBroadcastRequest(m, id)
	default:
		a.b.stats.ignored.Add(1)
	}
}

// onBroadcastRequest delivers a BROADCAST (with ack) request to the local
// sockets and reports the client count and each acknowledgement.
func (a *Adapter) onBroadcastRequest(m message, id string) {
	pkt, _ := m["packet"].(map[string]any)
	data, ok := pkt["data"].([]any)
	rooms, except, okOpts := m.roomsAndExcept()
	if !ok || !okOpts || id == "" {
		a.b.stats.malformed.Add(1)
		return
	}
	flags := &socket.BroadcastFlags{}
	if t, ok := m.timeoutOf(); ok {
		flags.Timeout = &t
	}
	a.Local.BroadcastWithAck(
		&parser.Packet{Type: parser.EVENT, Nsp: a.name, Data: data},
		&socket.BroadcastOptions{Rooms: roomSet(rooms), Except: roomSet(except), Flags: flags},
		func(n uint64) {
			a.respondJSON(m, map[string]any{"type": reqBroadcastClientCount, "requestId": id, "clientCount": n})
		},
		func(args []any, _ error) {
			var arg any
			if len(args) > 0 {
				arg = args[0]
			}
			body, err := encodeMsgpack(map[string]any{"type": reqBroadcastAck, "requestId": id, "packet": arg})
			if err != nil {
				a.b.stats.dropped.Add(1)
				return
			}
			a.respond(m, body)
		},
	)
}

// onResponse routes an answer to the request of this node it belongs to.
func (a *Adapter) onResponse(payload string) {
	m, err := decodeMessage(payload)
	if err != nil {
		a.b.stats.malformed.Add(1)
		a.b.stats.dropped.Add(1)
		return
	}
	id := m.str("requestId")
	a.mu.Lock()
	if ar, ok := a.acks[id]; ok {
		a.mu.Unlock()
		switch m.typ() {
		case reqBroadcastClientCount:
			if n, ok := toInt(m["clientCount"]); ok && n >= 0 {
				ar.clientCount(uint64(n))
			}
		case reqBroadcastAck:
			ar.ack([]any{m["packet"]}, nil)
		}
		return
	}
	p, ok := a.pending[id]
	if !ok || len(p.responses) >= p.expected {
		a.mu.Unlock()
		a.b.stats.ignored.Add(1)
		return
	}
	p.responses = append(p.responses, m)
	if len(p.responses) == p.expected {
		close(p.done)
	}
	a.mu.Unlock()
}

// remoteSocket is a socket of another node, as FetchSockets returns it.
type remoteSocket struct {
	id        socket.SocketId
	handshake *socket.Handshake
	rooms     *types.Set[socket.Room]
	data      any
}

func (r *remoteSocket) Id() socket.SocketId            { return r.id }
func (r *remoteSocket) Handshake() *socket.Handshake   { return r.handshake }
func (r *remoteSocket) Rooms() *types.Set[socket.Room] { return r.rooms }
func (r *remoteSocket) Data() any                      { return r.data }

func parseRemoteSocket(v any) (*remoteSocket, bool) {
	s, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	id, _ := s["id"].(string)
	if id == "" {
		return nil, false
	}
	rooms, _ := stringList(s["rooms"])
	rs := &remoteSocket{id: socket.SocketId(id), rooms: roomSet(rooms), data: s["data"], handshake: &socket.Handshake{}}
	if raw, err := json.Marshal(s["handshake"]); err == nil {
		_ = json.Unmarshal(raw, rs.handshake)
	}
	return rs, true
}

// socketJSON is a local socket as a REMOTE_FETCH answer carries it. Data
// that cannot be encoded as JSON is sent as null.
func socketJSON(s socket.SocketDetails) map[string]any {
	data := s.Data()
	if _, err := json.Marshal(data); err != nil {
		data = nil
	}
	var rooms []socket.Room
	if r := s.Rooms(); r != nil {
		rooms = r.Keys()
	}
	return map[string]any{"id": s.Id(), "handshake": s.Handshake(), "rooms": rooms, "data": data}
}

func requestOptsOf(opts *socket.BroadcastOptions) *requestOpts {
	return &requestOpts{Rooms: roomStrings(opts, true), Except: roomStrings(opts, false)}
}

func roomNames(rooms []socket.Room) []string {
	out := make([]string, len(rooms))
	for i, r := range rooms {
		out[i] = string(r)
	}
	return out
}

func toRooms(names []string) []socket.Room {
	out := make([]socket.Room, len(names))
	for i, n := range names {
		out[i] = socket.Room(n)
	}
	return out
}

// msgpackScratch holds the buffers messages are encoded in before they are
// copied out at their final size: a message grown from nothing took four
// or five allocations.
var msgpackScratch = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxMsgpackScratch is the largest buffer kept for reuse.
const maxMsgpackScratch = 64 << 10

// encodeMsgpack encodes v compactly, as notepack.io would.
func encodeMsgpack(v any) ([]byte, error) {
	buf := msgpackScratch.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxMsgpackScratch {
			msgpackScratch.Put(buf)
		}
	}()
	enc := msgpack.GetEncoder()
	defer msgpack.PutEncoder(enc)
	enc.Reset(buf)
	enc.UseCompactInts(true)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode msgpack: %w", err)
	}
	return bytes.Clone(buf.Bytes()), nil
}
