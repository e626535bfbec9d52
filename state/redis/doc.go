// Package redis is the Redis implementation of the state stores: a single
// Redis, Sentinel or a Redis Cluster, through any goredis.UniversalClient.
//
// # Transitions
//
// Every method that changes state is one round trip: one Lua script (in
// lua/, named for what it does: joinMeeting, ringCall, decideAdmission,
// useLink, claimJobs, claimDeadNodes, ...) that checks the preconditions,
// writes and answers what changed, so Lua's atomicity is the transition's.
// Scripts are called by SHA (EVALSHA, falling back to EVAL, which caches the
// script, after a NOSCRIPT); Store.Preload loads them all at start-up. A
// script answers a pair: its flags (what changed, or the error code of a
// refusal) as a flat array of names and values, which needs no JSON on
// either side, and the document concerned exactly as stored, so a document
// is encoded once per change, not at all when nothing changed, and decoded
// once in Go.
//
// A script touches the keys of one hash slot only, so the same scripts run
// on Redis Cluster. Secondary indexes that live in other slots (a user's
// meeting list, a node's connections, a session's meeting) are written in
// the same pipeline as the script, still one round trip: those writes are
// idempotent, and readers repair what they find stale (an entry whose object
// is gone, or that a refused transition wrote).
//
// Ring also writes the ring-timeout job (the scheduleJobs script on the
// {jobs} keys, another slot) in the ring's pipeline: one round trip, two
// transitions, each atomic on its own. The job does not wait for the ring's
// answer, so it is written even when the ring is refused or rings nobody;
// the contract allows it, since such a job finds nobody ringing and does
// nothing. On Redis Cluster go-redis sends one pipeline per node, in
// parallel, still one round trip of latency.
//
// Two writes may need a second, idempotent round trip, both rare: Update
// when it moves a meeting's end later (the participants' indexes are
// extended to the new expiry), and InviteLive on a meeting that outlives
// Options.IndexTTL. CreateSession takes back the session it wrote when its
// id turns out to belong to another meeting (an id collision).
//
// # Time
//
// The clock is never read in Redis: every "now" comes from the caller. Times
// are stored in state.TimeLayout, whose strings sort in time order, so Lua
// compares them as strings; scores and TTLs are Unix milliseconds. A TTL is
// deadline − now as given, so tests can run on any timeline.
//
// # Encoding
//
// Meetings, sessions, links and jobs are stored as the JSON of their
// package state types (internal fields included) and edited by Lua's cjson.
// cjson encodes an empty table as {}, so the scripts never leave an empty
// table where Go expects an array (an empty list is dropped). A session's
// opaque keys are stored as a JSON string that Lua never parses. Meetings,
// which nearly every transition answers, are encoded and decoded in Go with
// github.com/goccy/go-json, a drop-in for encoding/json three times faster
// at decoding them; the tests hold it to encoding/json's results, so nodes
// built with either read each other's documents. The presence hash's
// per-connection entries, read on every presence query and ring, go through
// it too.
//
// # Keys
//
// Every key starts with Options.Prefix (default "sb"). The part in braces is
// the hash tag that puts the keys one script touches in one slot. Every key
// has a TTL computed from the caller's now, or an owner that removes what it
// holds:
//
//	key                          type    holds                                    lifetime
//	sb:{<mtg>}:meeting           string  meeting or call JSON, with _conns,       TTL: calls until end_time; meetings
//	                                     _answered, _reminded, _ring_deadline      until end_time + retention; calls are
//	                                                                               deleted when they end
//	sb:{<mtg>}:session:<sid>     string  guest session JSON (keys as a string)    TTL: the session's expires_at
//	sb:{<mtg>}:queue             zset    waiting session ids by queue time (ms)   TTL: the latest expiry of its sessions;
//	                                                                               deleted with a call
//	sb:{s:<sid>}:meeting         string  the meeting id of session <sid>          TTL: the session's expires_at
//	sb:{u:<user>}:meetings       set     ids of the user's meetings (ListForUser) TTL: the latest expiry of its meetings
//	                                                                               (at least Options.IndexTTL when unknown)
//	sb:{u:<user>}:presence       hash    st: last reported status; pd: offline    TTL: last connection expiry +
//	                                     pending; ls/lsx: last_seen and its end;   PresenceHold, or last_seen retention
//	                                     c:<conn>: connection JSON (expiry x in
//	                                     ms); n:<conn>: how many meetings it joined
//	sb:{u:<user>}:marks          set     the meetings each connection joined:     TTL: the presence hash's
//	                                     <len(conn)>:<conn><meeting>
//	sb:{node:<node>}:conns       hash    conn id → state.Conn JSON                TTL: connection expiry + PresenceHold;
//	                                                                               owner: Deregister deletes it
//	sb:{link:<token>}:link       string  invitation link JSON                     TTL: the link's expires_at
//	sb:{jobs}:due                zset    job id by due time, or lease deadline    owned: Done and Cancel remove jobs
//	                                     while claimed (ms)
//	sb:{jobs}:data               hash    job id → job JSON                        owned: Done and Cancel remove jobs
//	sb:{nodes}:leases            zset    node id by lease deadline (ms)           owned: ClaimDead and Deregister remove
//	                                                                               nodes
//
// # Errors
//
// A refused transition answers {"e": "<code>"}, mapped to the errors of
// package state (ErrNotFound, ErrConflict, ...). Anything that keeps Redis
// from answering (a refused or broken connection, a timeout, a cancelled
// context, LOADING, CLUSTERDOWN, ...) wraps state.ErrUnavailable. Build the
// client with ContextTimeoutEnabled so that a slow Redis is cut off at each
// call's deadline.
package redis
