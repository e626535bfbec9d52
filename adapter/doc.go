// Package adapter is Switchboard's Socket.IO adapter over Redis pub/sub for
// the zishang520 socket.io server (servers/socket/v3). It carries room
// broadcasts and cluster requests between gateway nodes, speaking the wire
// format of the Node @socket.io/redis-adapter 8.x classic adapter, so that
// @socket.io/redis-emitter 5.x (and Node adapters) interoperate.
//
// # Wiring
//
//	b := adapter.New(adapter.Config{Client: redisClient, Logger: log})
//	defer b.Close()                       // after the server is closed
//	opts := socket.DefaultServerOptions()
//	opts.SetAdapter(b)                    // or io.SetAdapter(b)
//	io := socket.NewServer(nil, opts)
//
// One Builder per server (node). It serves every namespace, shares one
// pub/sub connection between them (one per master with sharded pub/sub on
// a Cluster), and exposes Healthy (for /readyz), Stats (counters for
// Prometheus) and Flush (wait until this node's room subscriptions are in
// Redis).
//
// # Wire format (prefix "socket.io")
//
// Broadcast: msgpack [uid, {type: 2, data: [event, ...args], nsp},
// {rooms: [...], except: [...], flags: {volatile?, compress?}}] published
// on "socket.io#<nsp>#<room>#" when it targets exactly one room, else on
// "socket.io#<nsp>#". A message without packet nsp belongs to "/".
// Binary arguments are msgpack bin ([]byte in Go, Buffer in Node).
// Arguments that are not plain JSON shapes (structs, json.Marshaler) are
// converted through encoding/json first, so a remote client sees what a
// local one sees.
//
// Requests: JSON on "socket.io-request#<nsp>#" with the 8.x request types
// (REMOTE_JOIN 2, REMOTE_LEAVE 3, REMOTE_DISCONNECT 4, REMOTE_FETCH 5,
// SERVER_SIDE_EMIT 6, SOCKETS 0, ALL_ROOMS 1; BROADCAST 7 in msgpack).
// Answers go to the requester's own channel
// "socket.io-response#<nsp>#<uid>#" (a Node 8.x adapter always listens
// there too); Config.ListenSharedResponses also hears the shared
// "socket.io-response#<nsp>#" where Node adapters answer by default.
//
// # Receiving only what a node needs
//
// Unlike the Node adapter (PSUBSCRIBE "socket.io#<nsp>#*"), a node
// SUBSCRIBEs to exact channels: "socket.io#<nsp>#", the request channel,
// its response channel, and "socket.io#<nsp>#<room>#" for each room that
// has at least one local member. Room creations and deletions (the
// embedded adapter's "create-room"/"delete-room" events) are coalesced
// over Config.SubscribeDelay (5 ms) into one SUBSCRIBE and one
// UNSUBSCRIBE. Consequences:
//
//   - A socket that joins a room hears that room's broadcasts only once the
//     SUBSCRIBE is in effect, a few milliseconds later. Builder.Flush waits
//     for it (a PING sent after the commands came back). Only awaited
//     changes send that barrier: unsubscriptions nobody waits for do not,
//     and a flush with nothing new to send waits for the last barrier.
//   - Private rooms (room name == socket id) are not subscribed: this
//     adapter publishes an emit to one room that looks like a socket id
//     (20 or 24 base64url characters) on "socket.io#<nsp>#", which every
//     node hears and filters; an emit to a local socket id is not published
//     at all. The Node emitter publishes `to(socketId)` on the room channel:
//     set Config.SubscribeSocketRooms when it must reach socket ids.
//
// Messages carrying our uid are ignored: our own broadcasts, which Redis
// sends back to us, by their first bytes, before decoding. A message on a
// room channel is delivered only while the room has local members.
//
// The bus remembers which channels' routes changed since its last round of
// commands and looks only at those, so a room's creation costs the same
// whatever the number of rooms; after a failed connection or command it
// compares every route with every subscription once.
//
// # Local delivery
//
// Both this adapter and a node without Redis deliver to local sockets
// through Local, the library's in-memory adapter with its own Broadcast:
// the packet is encoded once and its frame handed to each recipient's
// transport when the transport implements PreEncodedSender
// (internal/wstransport does), skipping the library's per-recipient
// client and engine path; other transports get it through the engine.
//
// # Health
//
// Each pub/sub connection publishes a probe to a channel it subscribes to
// ("socket.io-probe#<uid>#", no socket.io channel) every ProbeInterval; if
// it is not back within ProbeTimeout, the connection is closed and a new
// one subscribes every current channel. A connection that fails (Redis
// restart, CLIENT KILL) is re-created the same way, with backoff from 50 ms
// to 2 s. Healthy is true once every connection's probe came back and
// nothing is pending re-creation.
//
// # Requests between nodes
//
// FetchSockets, ServerSideEmit with ack and BroadcastWithAck wait for one
// answer per other live node: the number of subscribers of the namespace's
// request channel (PUBSUB NUMSUB, summed over the nodes of a Cluster, or
// SHARDNUMSUB), or Config.Peers when set. A crashed node's connection is
// closed by the kernel, so Redis stops counting it at once and nobody
// waits for it; a hung node costs at most RequestTimeout (5 s), after
// which the answers that arrived are returned with an error wrapping
// ErrRequestTimeout. AddSockets, DelSockets and DisconnectSockets apply
// locally and publish without waiting, as the Node adapter does.
//
// # Sharded pub/sub
//
// Config.Sharded uses SSUBSCRIBE/SPUBLISH on the same channel names (Redis
// 7). On a Cluster this keeps each message on the shard that owns its
// channel instead of broadcasting it on the cluster bus; the adapter keeps
// one pub/sub connection per master and subscribes per hash slot. The Node
// emitter and classic Node adapters use PUBLISH and are not heard.
//
// # Known limits
//
//   - Ordering holds per publishing node (one publish queue, pipelined);
//     there is no ordering between nodes.
//   - The publish queue (Config.PublishQueue) never blocks a broadcast: when
//     Redis is slow or down, overflowing messages are dropped and counted
//     in Stats.Dropped.
//   - FetchSockets returns remote sockets whose Data is JSON-decoded (maps,
//     float64 numbers), not the original Go type.
//   - v3.0.6 of the server library sends CONNECT before it can route the
//     socket's packets: a client that emits right on "connect" may be
//     disconnected. The tests make the server emit "ready" from its
//     connection handler and clients wait for it.
package adapter
