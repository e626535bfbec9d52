package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	gojson "github.com/goccy/go-json"
	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/state"
)

// presence implements state.Presence. A user's connections and last
// reported status are one hash, {u:<user>}:presence:
//
//	st        the status last reported (online, busy, offline; absent: offline)
//	pd        set while an offline transition is pending: the last connection
//	          went away and SettleOffline has not run yet (the grace)
//	ls, lsx   last_seen and when it may be forgotten (Unix ms)
//	c:<conn>  one connection: {"id","user","device","node","x"}, where x is
//	          its expiry (Unix ms)
//	n:<conn>  how many meetings the connection joined (absent: none; busy
//	          when one or more)
//
// and the meetings each connection joined are the members
// "<len(conn)>:<conn><meeting>" of the set {u:<user>}:marks, which lives as
// long as the hash. A busy mark (SetJoined) adds or removes one member and
// moves the count, so it costs the same however many meetings the
// connection is in, and what every other presence script reads (the hash)
// does not grow with them.
//
// Each node's connections are indexed in {node:<node>}:conns (conn id →
// state.Conn JSON), written in the same pipeline as Connect and Heartbeat
// and checked against the users' hashes when read, so Disconnect, which
// does not know the node, leaves nothing that NodeConns would return.
type presence Store

var _ state.Presence = (*presence)(nil)

func (s *presence) st() *Store { return (*Store)(s) }

// connEntry is one connection in a user's presence hash.
type connEntry struct {
	state.Conn
	// X is the expiry in Unix ms (a float: cjson may write large numbers
	// with an exponent).
	X float64 `json:"x"`
}

func (c *connEntry) live(now time.Time) bool { return c.X > float64(millis(now)) }

// Connect implements state.Presence.
func (s *presence) Connect(ctx context.Context, c state.Conn, ttl time.Duration, maxConns int, now time.Time) (state.ConnResult, error) {
	return s.connect(ctx, "connect", c, ttl, max(maxConns, 0), now)
}

// Heartbeat implements state.Presence.
func (s *presence) Heartbeat(ctx context.Context, c state.Conn, ttl time.Duration, now time.Time) (state.ConnResult, error) {
	return s.connect(ctx, "heartbeat", c, ttl, 0, now)
}

func (s *presence) connect(ctx context.Context, op string, c state.Conn, ttl time.Duration, maxConns int, now time.Time) (state.ConnResult, error) {
	entry, err := gojson.Marshal(c)
	if err != nil {
		return state.ConnResult{}, fmt.Errorf("redis %s: %w", op, err)
	}
	idx := s.keys.nodeConns(c.NodeID)
	idxTTL := (ttl + s.opts.PresenceHold).Milliseconds()
	v, err := s.st().runWith(ctx, s.sc.connectPresence, s.keys.presenceOf(c.UserID),
		[]any{millis(now), c.ID, c.UserID, c.DeviceID, c.NodeID, ttl.Milliseconds(), maxConns, s.opts.PresenceHold.Milliseconds()},
		func(p goredis.Pipeliner) {
			p.HSet(ctx, idx, c.ID, entry)
			p.Do(ctx, "PEXPIRE", idx, idxTTL, "NX")
			p.Do(ctx, "PEXPIRE", idx, idxTTL, "GT")
		})
	r, err := s.st().decode(op, noDoc, v, err)
	if err != nil {
		return state.ConnResult{}, err
	}
	return state.ConnResult{Transition: r.transition(c.UserID, now)}, nil
}

func (r *reply) transition(user string, now time.Time) state.Transition {
	return state.Transition{UserID: user, From: r.From, To: r.To, At: state.At(now)}
}

// Disconnect implements state.Presence.
func (s *presence) Disconnect(ctx context.Context, user, connID string, now time.Time) (state.ConnResult, error) {
	v, err := s.st().run(ctx, s.sc.disconnectPresence, s.keys.presenceOf(user),
		millis(now), connID, s.opts.PresenceHold.Milliseconds())
	r, err := s.st().decode("disconnect", noDoc, v, err)
	if err != nil {
		return state.ConnResult{}, err
	}
	if r.From == "" {
		return state.ConnResult{}, nil // unknown connection
	}
	return state.ConnResult{Transition: r.transition(user, now), Meetings: r.Meetings, LastConn: r.Last}, nil
}

// SettleOffline implements state.Presence.
func (s *presence) SettleOffline(ctx context.Context, user string, lastSeenTTL time.Duration, now time.Time) (state.Transition, error) {
	v, err := s.st().run(ctx, s.sc.settleOffline, s.keys.presenceOf(user),
		millis(now), stamp(now), lastSeenTTL.Milliseconds(), s.opts.PresenceHold.Milliseconds())
	r, err := s.st().decode("settle offline", noDoc, v, err)
	if err != nil {
		return state.Transition{}, err
	}
	return r.transition(user, now), nil
}

// SetJoined implements state.Presence.
func (s *presence) SetJoined(ctx context.Context, user, connID, meetingID string, joined bool, now time.Time) (state.Transition, error) {
	v, err := s.st().run(ctx, s.sc.setJoined, s.keys.presenceOf(user), millis(now), connID, meetingID, joinedFlag(joined))
	r, err := s.st().decode("set joined", noDoc, v, err)
	if err != nil {
		return state.Transition{}, err
	}
	return r.transition(user, now), nil
}

// joinedFlag is setJoined's ARGV[4]: "1" joined, "0" left.
func joinedFlag(joined bool) string {
	if joined {
		return "1"
	}
	return "0"
}

// Query implements state.Presence: one pipeline of HGETALLs.
func (s *presence) Query(ctx context.Context, users []string, now time.Time) ([]state.UserPresence, error) {
	if len(users) == 0 {
		return nil, nil
	}
	cmds := make([]*goredis.MapStringStringCmd, len(users))
	_, err := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, u := range users {
			cmds[i] = p.HGetAll(ctx, s.keys.presence(u))
		}
		return nil
	})
	if err != nil {
		return nil, s.st().fail("query presence", err)
	}
	out := make([]state.UserPresence, len(users))
	for i, u := range users {
		h, err := cmds[i].Result()
		if err != nil {
			return nil, s.st().fail("query presence", err)
		}
		out[i], err = userPresence(u, h, now)
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// userPresence derives what Query reports from a user's presence hash: the
// status its live connections give; during the grace after the last
// disconnect, the status last reported (what was broadcast); offline
// otherwise, with last_seen.
func userPresence(user string, h map[string]string, now time.Time) (state.UserPresence, error) {
	up := state.UserPresence{UserID: user, Status: state.Offline}
	for f, v := range h {
		if !strings.HasPrefix(f, "c:") {
			continue
		}
		var c connEntry
		if err := gojson.Unmarshal([]byte(v), &c); err != nil {
			return up, fmt.Errorf("redis query presence: decode connection: %w", err)
		}
		if !c.live(now) {
			continue
		}
		if n, _ := strconv.Atoi(h["n:"+f[len("c:"):]]); n > 0 {
			up.Status = state.Busy
		} else if up.Status == state.Offline {
			up.Status = state.Online
		}
	}
	if up.Status == state.Offline && h["pd"] != "" && h["st"] != "" {
		up.Status = h["st"]
	}
	if ls := h["ls"]; ls != "" && up.Status == state.Offline {
		t, err := state.ParseTime(ls)
		if err != nil {
			return up, fmt.Errorf("redis query presence: %w", err)
		}
		up.LastSeen = &t
	}
	return up, nil
}

// NodeConns implements state.Presence. It reads the node's index, checks
// every entry against its user's presence hash (one pipeline) and drops the
// entries whose connection is gone or lives on another node.
func (s *presence) NodeConns(ctx context.Context, node string) ([]state.Conn, error) {
	idx := s.keys.nodeConns(node)
	h, err := s.c.HGetAll(ctx, idx).Result()
	if err != nil {
		return nil, s.st().fail("node connections", err)
	}
	if len(h) == 0 {
		return nil, nil
	}
	type cand struct {
		c   state.Conn
		cmd *goredis.StringCmd
	}
	var (
		cands []cand
		stale []string
	)
	for id, v := range h {
		var c state.Conn
		if err := gojson.Unmarshal([]byte(v), &c); err != nil || c.UserID == "" {
			stale = append(stale, id)
			continue
		}
		cands = append(cands, cand{c: c})
	}
	_, err = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i := range cands {
			cands[i].cmd = p.HGet(ctx, s.keys.presence(cands[i].c.UserID), "c:"+cands[i].c.ID)
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, s.st().fail("node connections", err)
	}
	var out []state.Conn
	for _, cd := range cands {
		v, err := cd.cmd.Result()
		if errors.Is(err, goredis.Nil) {
			stale = append(stale, cd.c.ID)
			continue
		}
		if err != nil {
			return nil, s.st().fail("node connections", err)
		}
		var e connEntry
		if err := gojson.Unmarshal([]byte(v), &e); err != nil || e.NodeID != node {
			stale = append(stale, cd.c.ID)
			continue
		}
		out = append(out, e.Conn)
	}
	if len(stale) > 0 {
		_ = s.c.HDel(ctx, idx, stale...).Err() // repair; the next read retries
	}
	slices.SortFunc(out, func(a, b state.Conn) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}
