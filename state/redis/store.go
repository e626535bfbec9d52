package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/state"
)

// Options configure a Store. The zero value is usable.
type Options struct {
	// Prefix starts every key. Default "sb".
	Prefix string

	// IndexTTL is the least time a user's meeting index lives after a write
	// whose meeting expiry the writer does not know (InviteLive). When the
	// meeting outlives it, a follow-up pipeline extends the index. Default
	// 8 days (the default retention of 7 days plus the longest call).
	IndexTTL time.Duration

	// PresenceHold is how long a user's presence record outlives the expiry
	// of their last connection, and how long it lives at least while an
	// offline transition is pending, so that SettleOffline still finds what
	// it must settle after the presence grace. Default 10 minutes.
	PresenceHold time.Duration

	// CloseClient makes Close close the client. Leave it false when the
	// client is shared (with the pub/sub adapter, say): its creator closes
	// it once every user is done.
	CloseClient bool
}

func (o Options) withDefaults() Options {
	if o.Prefix == "" {
		o.Prefix = "sb"
	}
	if o.IndexTTL <= 0 {
		o.IndexTTL = 8 * 24 * time.Hour
	}
	if o.PresenceHold <= 0 {
		o.PresenceHold = 10 * time.Minute
	}
	return o
}

// Store is the Redis implementation of state.Store. It works on a single
// Redis, on Sentinel and on Redis Cluster: every transition is one Lua
// script whose keys share a hash slot.
//
// Build the client with ContextTimeoutEnabled so that a slow Redis answers
// within each call's context deadline; an unreachable Redis is reported as
// state.ErrUnavailable.
type Store struct {
	c    goredis.UniversalClient
	opts Options
	keys keys
	sc   *scripts
}

var _ state.Store = (*Store)(nil)

// New returns a Store on c. The caller keeps c, unless Options.CloseClient
// hands it over.
func New(c goredis.UniversalClient, opts Options) *Store {
	opts = opts.withDefaults()
	return &Store{c: c, opts: opts, keys: keys{p: opts.Prefix}, sc: compileScripts()}
}

// cluster reports whether the store runs on a Redis Cluster, where one
// script may touch the keys of one slot only.
func (s *Store) cluster() bool {
	_, ok := s.c.(*goredis.ClusterClient)
	return ok
}

// Meetings implements state.Store.
func (s *Store) Meetings() state.Meetings { return (*meetings)(s) }

// Presence implements state.Store.
func (s *Store) Presence() state.Presence { return (*presence)(s) }

// Guests implements state.Store.
func (s *Store) Guests() state.Guests { return (*guests)(s) }

// Links implements state.Store.
func (s *Store) Links() state.Links { return (*links)(s) }

// Jobs implements state.Store.
func (s *Store) Jobs() state.Jobs { return (*jobs)(s) }

// Nodes implements state.Store.
func (s *Store) Nodes() state.Nodes { return (*nodes)(s) }

// Ping implements state.Store.
func (s *Store) Ping(ctx context.Context) error {
	return s.fail("ping", s.c.Ping(ctx).Err())
}

// Close implements state.Store. It closes the client when
// Options.CloseClient is set, and does nothing otherwise: the Store holds no
// connection of its own.
func (s *Store) Close() error {
	if s.opts.CloseClient {
		return s.c.Close()
	}
	return nil
}

// Preload loads every script into Redis (every master of a cluster), so that
// the first call of each transition does not pay for a NOSCRIPT fallback.
// Optional: scripts load themselves on first use too.
func (s *Store) Preload(ctx context.Context) error {
	for _, sc := range s.sc.all() {
		if err := sc.Load(ctx, s.c).Err(); err != nil {
			return s.fail("load scripts", err)
		}
	}
	return nil
}

// ---- keys ----

// keys builds key names. A key says what it holds; the part in braces is
// its hash tag, so that the keys one script touches share a slot. See the
// package documentation for the whole table.
type keys struct{ p string }

func (k keys) meeting(id string) string { return k.p + ":{" + id + "}:meeting" }
func (k keys) queue(meetingID string) string {
	return k.p + ":{" + meetingID + "}:queue"
}
func (k keys) session(meetingID, id string) string {
	return k.p + ":{" + meetingID + "}:session:" + id
}
func (k keys) sessionMeeting(id string) string { return k.p + ":{s:" + id + "}:meeting" }
func (k keys) userMeetings(user string) string { return k.p + ":{u:" + user + "}:meetings" }
func (k keys) presence(user string) string     { return k.p + ":{u:" + user + "}:presence" }
func (k keys) marks(user string) string        { return k.p + ":{u:" + user + "}:marks" }

// presenceOf is the keys of the presence scripts: the user's presence hash
// and marks set (one slot).
func (k keys) presenceOf(user string) []string { return []string{k.presence(user), k.marks(user)} }
func (k keys) link(token string) string        { return k.p + ":{link:" + token + "}:link" }
func (k keys) jobsDue() string                 { return k.p + ":{jobs}:due" }
func (k keys) jobsData() string                { return k.p + ":{jobs}:data" }
func (k keys) nodes() string                   { return k.p + ":{nodes}:leases" }
func (k keys) nodeConns(node string) string    { return k.p + ":{node:" + node + "}:conns" }

// ---- running scripts ----

// run executes one script as the only command of one round trip and returns
// its reply. EVALSHA falls back to EVAL (which also caches the script) when
// Redis does not know the script yet.
func (s *Store) run(ctx context.Context, sc *goredis.Script, keys []string, args ...any) (any, error) {
	return sc.Run(ctx, s.c, keys, args...).Result()
}

// runWith executes one script and, in the same pipeline (still one round
// trip), the secondary index commands that index queues. Index commands are
// idempotent and live in other slots; their readers repair what they find
// stale. When the script ran but an index command failed, the index
// commands are sent once more.
func (s *Store) runWith(ctx context.Context, sc *goredis.Script, keys []string, args []any, index func(p goredis.Pipeliner)) (any, error) {
	v, _, err := s.runAlso(ctx, sc, keys, args, index)
	return v, err
}

// runAlso is runWith with more scripts in the same pipeline, after the
// index commands: independent transitions (other slots) whose replies it
// returns in order, nil for one that failed or that Redis did not know
// (NOSCRIPT: it is not sent again; the caller may run it on its own).
func (s *Store) runAlso(ctx context.Context, sc *goredis.Script, keys []string, args []any, index func(p goredis.Pipeliner), also ...scriptCall) (any, []any, error) {
	var script *goredis.Cmd
	more := make([]*goredis.Cmd, len(also))
	cmds, perr := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		script = sc.EvalSha(ctx, p, keys, args...)
		index(p)
		for i, c := range also {
			more[i] = c.sc.EvalSha(ctx, p, c.keys, c.args...)
		}
		return nil
	})
	replies := make([]any, len(also))
	for i, c := range more {
		if v, err := c.Result(); err == nil {
			replies[i] = v
		}
	}
	cmd := script
	if goredis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
		cmd = sc.Eval(ctx, s.c, keys, args...)
	}
	v, err := cmd.Result()
	if err == nil && v == nil && perr != nil {
		err = perr // the pipeline failed before the script answered
	}
	if err != nil {
		return nil, replies, err
	}
	// cmds are in the order queued: the script, the index commands, also.
	for i, c := range cmds {
		if i == 0 || i >= len(cmds)-len(also) {
			continue
		}
		if c.Err() != nil && !errors.Is(c.Err(), goredis.Nil) {
			_, _ = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error { index(p); return nil })
			break
		}
	}
	return v, replies, nil
}

// scriptCall is one script with its keys and arguments (runEach).
type scriptCall struct {
	sc   *goredis.Script
	keys []string
	args []any
}

// runEach executes independent scripts in one pipeline, one round trip (on
// Redis Cluster go-redis sends one pipeline per node, in parallel, so the
// scripts may live in different slots), and returns each script's reply and
// error, in order. Each script is atomic on its own; the refusal or failure
// of one does not stop the others. A script Redis does not know yet
// (NOSCRIPT) is sent again by EVAL, which caches it.
func (s *Store) runEach(ctx context.Context, calls ...scriptCall) ([]any, []error) {
	cmds := make([]*goredis.Cmd, len(calls))
	_, perr := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, c := range calls {
			cmds[i] = c.sc.EvalSha(ctx, p, c.keys, c.args...)
		}
		return nil
	})
	vs, errs := make([]any, len(calls)), make([]error, len(calls))
	for i, c := range calls {
		cmd := cmds[i]
		if goredis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			cmd = c.sc.Eval(ctx, s.c, c.keys, c.args...)
		}
		vs[i], errs[i] = cmd.Result()
		if errs[i] == nil && vs[i] == nil && perr != nil {
			errs[i] = perr // the pipeline failed before the script answered
		}
	}
	return vs, errs
}

// indexMeeting queues the commands that list meeting id in each user's
// meeting index, keeping the index at least ttl.
func (s *Store) indexMeeting(ctx context.Context, p goredis.Pipeliner, id string, users []string, ttl time.Duration) {
	for _, u := range users {
		k := s.keys.userMeetings(u)
		p.SAdd(ctx, k, id)
		p.Do(ctx, "PEXPIRE", k, ttl.Milliseconds(), "NX")
		p.Do(ctx, "PEXPIRE", k, ttl.Milliseconds(), "GT")
	}
}

// ---- replies and errors ----

// reply is the answer of a script: flags, of which each script sets those
// that concern it (E when the transition was refused), and the document the
// transition concerns, decoded into Meeting, Session or Link.
type reply struct {
	E      string // e
	Detail string // detail

	Already     bool     // already
	UserJoined  bool     // user_joined
	FirstJoined bool     // first_joined
	Started     bool     // started
	UserLeft    bool     // user_left
	Ended       bool     // ended
	Deleted     bool     // deleted
	Reason      string   // reason
	Users       []string // users
	First       bool     // first
	Grew        bool     // grew
	PTTL        int64    // pttl, ms

	Changed bool // changed
	Last    bool // last

	From     string   // from
	To       string   // to
	Meetings []string // meetings

	Lost bool // lost

	// The document, decoded by the caller's kind.
	Meeting *state.Meeting
	Session *state.Session
	Link    *state.Link
}

// flags reads the flags of a script's answer: a flat array of names and
// values as Redis converts them from Lua (see reply in lua/prelude.lua):
// true is 1 (a boolean only in a script that chose RESP3), false is left
// out, a number is an integer, a list of strings an array. Names the reply
// does not know are ignored.
func (r *reply) flags(fs []any) error {
	if len(fs)%2 != 0 {
		return fmt.Errorf("odd flags %q", fs)
	}
	for i := 0; i < len(fs); i += 2 {
		name, ok := fs[i].(string)
		if !ok {
			return fmt.Errorf("flag name %T", fs[i])
		}
		v := fs[i+1]
		var err error
		switch name {
		case "e":
			r.E, err = flagString(name, v)
		case "detail":
			r.Detail, err = flagString(name, v)
		case "reason":
			r.Reason, err = flagString(name, v)
		case "from":
			r.From, err = flagString(name, v)
		case "to":
			r.To, err = flagString(name, v)
		case "users":
			r.Users, err = flagStrings(name, v)
		case "meetings":
			r.Meetings, err = flagStrings(name, v)
		case "pttl":
			r.PTTL, err = flagInt(name, v)
		case "already":
			r.Already, err = flagBool(name, v)
		case "user_joined":
			r.UserJoined, err = flagBool(name, v)
		case "first_joined":
			r.FirstJoined, err = flagBool(name, v)
		case "started":
			r.Started, err = flagBool(name, v)
		case "user_left":
			r.UserLeft, err = flagBool(name, v)
		case "ended":
			r.Ended, err = flagBool(name, v)
		case "deleted":
			r.Deleted, err = flagBool(name, v)
		case "first":
			r.First, err = flagBool(name, v)
		case "grew":
			r.Grew, err = flagBool(name, v)
		case "changed":
			r.Changed, err = flagBool(name, v)
		case "last":
			r.Last, err = flagBool(name, v)
		case "lost":
			r.Lost, err = flagBool(name, v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func flagString(name string, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("flag %s: %T, want a string", name, v)
	}
	return s, nil
}

func flagInt(name string, v any) (int64, error) {
	n, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("flag %s: %T, want an integer", name, v)
	}
	return n, nil
}

func flagBool(name string, v any) (bool, error) {
	if b, ok := v.(bool); ok {
		return b, nil // RESP3, for a script that chose it (redis.setresp)
	}
	n, err := flagInt(name, v)
	return n != 0, err
}

func flagStrings(name string, v any) ([]string, error) {
	vs, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("flag %s: %T, want an array", name, v)
	}
	out := make([]string, len(vs))
	for i, x := range vs {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("flag %s: element %T, want a string", name, x)
		}
		out[i] = s
	}
	return out, nil
}

// docKind says what the document of a script's answer is.
type docKind int

const (
	noDoc docKind = iota
	meetingDoc
	sessionDoc
	linkDoc
)

// stateError maps an error code of the scripts to the error of package
// state, or nil for an unknown code.
func stateError(code string) error {
	switch code {
	case "not_found":
		return state.ErrNotFound
	case "forbidden":
		return state.ErrForbidden
	case "conflict":
		return state.ErrConflict
	case "gone":
		return state.ErrGone
	case "invalid":
		return state.ErrInvalid
	case "too_large":
		return state.ErrTooLarge
	case "rate_limited":
		return state.ErrRateLimited
	}
	return nil
}

// decode parses the reply of a script. A refused transition comes back as
// an error wrapping the matching state error, with the reply (some callers
// return what the reply carries along with the error).
func (s *Store) decode(op string, kind docKind, v any, err error) (*reply, error) {
	if err != nil {
		return nil, s.fail(op, err)
	}
	pair, ok := v.([]any)
	if !ok || len(pair) != 2 {
		return nil, fmt.Errorf("redis %s: unexpected script reply %T", op, v)
	}
	flags, ok := pair[0].([]any)
	if !ok {
		return nil, fmt.Errorf("redis %s: unexpected script flags %T", op, pair[0])
	}
	var r reply
	if err := r.flags(flags); err != nil {
		return nil, fmt.Errorf("redis %s: decode script reply: %w", op, err)
	}
	if doc, ok := pair[1].(string); ok {
		switch kind {
		case meetingDoc:
			r.Meeting, err = decodeMeeting(doc)
		case sessionDoc:
			r.Session, err = decodeSession([]byte(doc))
		case linkDoc:
			r.Link = new(state.Link)
			err = json.Unmarshal([]byte(doc), r.Link)
		}
		if err != nil {
			return nil, fmt.Errorf("redis %s: %w", op, err)
		}
	}
	if r.E != "" {
		target := stateError(r.E)
		if target == nil {
			return &r, fmt.Errorf("redis %s: unknown script error %q", op, r.E)
		}
		if r.Detail != "" {
			return &r, fmt.Errorf("redis %s: %s: %w", op, r.Detail, target)
		}
		return &r, fmt.Errorf("redis %s: %w", op, target)
	}
	return &r, nil
}

// fail wraps an error of the client. Anything that is not an answer of the
// server (a refused or broken connection, a timeout, a cancelled context)
// and the server's "try later" answers are state.ErrUnavailable; other
// server errors are bugs and stay as they are.
func (s *Store) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	var rerr goredis.Error
	if errors.As(err, &rerr) && !transient(rerr.Error()) {
		return fmt.Errorf("redis %s: %w", op, err)
	}
	return fmt.Errorf("redis %s: %w: %w", op, state.ErrUnavailable, err)
}

// transient reports whether a server error says "not now" rather than "never".
func transient(msg string) bool {
	for _, p := range []string{"LOADING", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "READONLY", "BUSY", "NOREPLICAS", "MOVED", "ASK"} {
		if strings.HasPrefix(msg, p+" ") || msg == p {
			return true
		}
	}
	return false
}

// ---- times ----

// stamp formats t in state.TimeLayout, the form scripts compare.
func stamp(t time.Time) string { return state.At(t).String() }

// millis is t in Unix milliseconds, the unit of scores and TTLs.
func millis(t time.Time) int64 { return t.UnixMilli() }

// ttlUntil is the TTL of a key that must live until deadline, seen from now,
// and at least one millisecond (PX refuses zero): an object whose deadline
// has passed is stored for a moment and then gone, as if it had expired.
func ttlUntil(deadline, now time.Time) time.Duration {
	d := state.At(deadline).Sub(state.At(now).Time)
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return d
}
