-- prelude.lua: helpers shared by every Switchboard script. The Go side
-- prepends to each script the definitions of this file that it uses
-- (scripts.go), so every script is one self-contained EVAL that touches the
-- keys of one hash slot. The file is cut at its top-level definitions:
-- "local NAME = ..." on one line, or "local function NAME(...)" up to a
-- line that is "end" alone; a definition may use only earlier ones; nothing
-- else but comments stands at the top level.
--
-- Conventions:
--   * Times are TimeLayout strings ("2006-01-02T15:04:05.000Z"); they sort in
--     time order, so scripts compare them as strings. Durations and
--     deadlines used for TTLs are Unix milliseconds passed by Go.
--   * The clock is never read here: "now" always comes from ARGV.
--   * A script answers a pair: its flags (see reply), and the JSON of the
--     document the transition concerns (meeting, session or link) or nil.
--     The document is the very string stored when there is one, so it is
--     encoded once (or not at all when nothing changed). A refused
--     transition answers the flags e = "<code>", detail = "..."; the Go side
--     maps the code to an error of package state.
--   * cjson encodes an empty Lua table as {}: a table that Go decodes as an
--     array is dropped (set to nil) when empty, never stored as {}.

local NULL = cjson.null

-- reply answers flags t; its field m, s or l, if any, is the document: a
-- JSON string as stored, or a table to encode. The flags go as a flat array
-- of names and values, which Redis converts without a JSON encoding: a
-- string stays a string, true becomes 1, a number an integer, a list of
-- strings an array; false is left out (Go reads an absent flag as false).
local function reply(t)
  local doc = t.m or t.s or t.l
  t.m, t.s, t.l = nil, nil, nil
  if type(doc) == 'table' then doc = cjson.encode(doc) end
  local flags, n = {}, 0
  for k, v in pairs(t) do
    if v ~= false then
      flags[n + 1], flags[n + 2] = k, v
      n = n + 2
    end
  end
  return {flags, doc or false}
end

-- fail answers a refused transition with a domain error code.
local function fail(code, detail)
  return reply({e = code, detail = detail})
end

-- set reports whether a decoded JSON value is present (not absent, not null).
local function set(v)
  return v ~= nil and v ~= NULL
end

-- nonempty returns t, or nil when t is an empty table (see the cjson note).
local function nonempty(t)
  if type(t) ~= 'table' or next(t) == nil then return nil end
  return t
end

-- set_raw records the exact bytes (base64) of an opaque field that is not
-- valid UTF-8, which JSON cannot carry; "" clears them. Go reads them back
-- in place of the field. See raw.go.
local function set_raw(o, field, b64)
  if type(o._raw) ~= 'table' then o._raw = {} end
  if b64 == nil or b64 == '' then o._raw[field] = nil else o._raw[field] = b64 end
  if next(o._raw) == nil then o._raw = nil end
end

-- get_json returns the decoded value at key and its JSON, or nil.
local function get_json(key)
  local raw = redis.call('GET', key)
  if not raw then return nil end
  return cjson.decode(raw), raw
end

-- ms converts a TimeLayout string to Unix milliseconds (days from the civil
-- date, proleptic Gregorian calendar).
local function ms(s)
  local y, mo, d, h, mi, sec, milli = string.match(s,
    '^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)%.(%d+)Z$')
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * ((mo + 9) % 12) + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  return ((days * 24 + tonumber(h)) * 60 + tonumber(mi)) * 60000 +
    tonumber(sec) * 1000 + tonumber(milli)
end

-- expire makes key live until deadline, both in Unix ms as seen from now.
-- A deadline that is not after now deletes the key. Returns the TTL set.
local function expire(key, deadline, now)
  local ttl = math.floor(deadline - now)
  if ttl < 1 then
    redis.call('DEL', key)
    return 0
  end
  redis.call('PEXPIRE', key, string.format('%d', ttl))
  return ttl
end

-- extend is expire that never shortens a TTL already set.
local function extend(key, deadline, now)
  local ttl = math.floor(deadline - now)
  if ttl < 1 then return end
  local cur = redis.call('PTTL', key)
  if cur < ttl then
    redis.call('PEXPIRE', key, string.format('%d', ttl))
  end
end

---------------------------------------------------------------- meetings

-- find returns the participant entry of user, or nil.
local function find(m, user)
  for _, p in ipairs(m.participants or {}) do
    if p.user_id == user then return p end
  end
  return nil
end

-- room returns the meeting's connection lists by user (_conns).
local function room(m)
  if type(m._conns) ~= 'table' then m._conns = {} end
  return m._conns
end

local function in_room(m, user)
  local list = room(m)[user]
  return type(list) == 'table' and #list > 0
end

local function count_active(m)
  local n = 0
  for _, list in pairs(room(m)) do
    if type(list) == 'table' and #list > 0 then n = n + 1 end
  end
  return n
end

-- tidy recomputes active_count and drops the empty tables that Go would not
-- decode (an empty connection list, an empty participants array).
local function tidy(m)
  local cs = room(m)
  for u, list in pairs(cs) do
    if type(list) ~= 'table' or #list == 0 then cs[u] = nil end
  end
  m.active_count = count_active(m)
  if next(cs) == nil then m._conns = nil end
  if type(m.participants) == 'table' and #m.participants == 0 then m.participants = nil end
  if type(m._reminded) == 'table' and next(m._reminded) == nil then m._reminded = nil end
  if not m._answered then m._answered = nil end
  if type(m._raw) == 'table' and next(m._raw) == nil then m._raw = nil end
  return m
end

-- touch records one change: every successful transition bumps version once.
local function touch(m, now)
  m.version = (tonumber(m.version) or 0) + 1
  m.updated_at = now
end

-- save writes the meeting back, keeping its TTL, and returns its JSON.
local function save(key, m)
  local doc = cjson.encode(tidy(m))
  redis.call('SET', key, doc, 'KEEPTTL')
  return doc
end

-- over reports whether a scheduled meeting has ended in fact: its end time
-- is reached and its room is empty (SPEC 4.2), recorded or not.
local function over(m, now)
  return not m.is_instant_call and m.end_time <= now and count_active(m) == 0
end

-- enter puts connection conn of participant p in the room with the given
-- status. It returns nil when conn was already there (nothing changes), or
-- the flags of a JoinResult.
local function enter(m, p, conn, status, now)
  local cs = room(m)
  local list = cs[p.user_id]
  if type(list) == 'table' then
    for _, c in ipairs(list) do
      if c == conn then return nil end
    end
  end
  local r = {first_joined = count_active(m) == 0}
  if type(list) ~= 'table' or #list == 0 then
    list = {}
    cs[p.user_id] = list
    r.user_joined = true
    p.joined_at = now
    p.left_at = NULL
  end
  table.insert(list, conn)
  p.status = status
  p._ring_deadline = nil
  return r
end

-- present reports whether a call still has a present user: status joined or
-- accepted with a connection in the room.
local function present(m)
  for _, p in ipairs(m.participants or {}) do
    if (p.status == 'joined' or p.status == 'accepted') and in_room(m, p.user_id) then
      return true
    end
  end
  return false
end

-- all_out reports whether every participant but the owner (there is at
-- least one) declined or missed the call.
local function all_out(m)
  local others = 0
  for _, p in ipairs(m.participants or {}) do
    if p.role ~= 'owner' then
      others = others + 1
      if p.status ~= 'declined' and p.status ~= 'missed' then return false end
    end
  end
  return others > 0
end

-- end_call ends a call and deletes it with what lives in its slot (KEYS).
local function end_call(m, now)
  m.status = 'ended'
  m.ended_at = now
  tidy(m)
  redis.call('DEL', unpack(KEYS))
end

---------------------------------------------------------------- sessions

-- save_session writes a session back, keeping its TTL, and returns its JSON.
local function save_session(key, s)
  if type(s._conns) ~= 'table' or #s._conns == 0 then s._conns = nil end
  local doc = cjson.encode(s)
  redis.call('SET', key, doc, 'KEEPTTL')
  return doc
end

-- load_session returns the live session at key and its JSON, or nil when it
-- is unknown or expired as seen from now.
local function load_session(key, now)
  local s, raw = get_json(key)
  if not s or s.expires_at <= now then return nil end
  return s, raw
end

---------------------------------------------------------------- presence

-- conn_summary is what the presence scripts need of a stored connection
-- entry, read without decoding it: its expiry x (Unix ms), found in the
-- compact JSON cjson writes ("x":<number>; inside a JSON string every quote
-- is escaped, so the pattern cannot match in an id), and n, the number of
-- meetings the connection joined (its n:<conn> field; busy when n > 0).
-- raw is the entry.
local function conn_summary(raw, n)
  return {
    x = tonumber(string.match(raw, '[{,]"x":([-+.%deE]+)')) or 0,
    n = n or 0,
    raw = raw,
  }
end

-- save_conn stores connection id's decoded entry c, which has joined n
-- meetings, in the presence hash key and returns its summary.
local function save_conn(key, id, c, n)
  local raw = cjson.encode(c)
  redis.call('HSET', key, 'c:' .. id, raw)
  return conn_summary(raw, n)
end

-- load_presence returns the stored status of a user (offline when none),
-- the summaries of their connection entries by id (conn_summary), and
-- whether an offline transition is pending (pd). What it reads does not
-- grow with the meetings the connections joined: those are counted.
local function load_presence(key)
  local all = redis.call('HGETALL', key)
  local st, conns, pending, counts = 'offline', {}, false, {}
  for i = 1, #all, 2 do
    local f = all[i]
    local kind = string.sub(f, 1, 2)
    if f == 'st' then
      st = all[i + 1]
    elseif f == 'pd' then
      pending = all[i + 1] ~= ''
    elseif kind == 'c:' then
      conns[string.sub(f, 3)] = conn_summary(all[i + 1])
    elseif kind == 'n:' then
      counts[string.sub(f, 3)] = tonumber(all[i + 1])
    end
  end
  for id, n in pairs(counts) do
    if conns[id] then conns[id].n = n end
  end
  return st, conns, pending
end

-- mark_prefix starts every member of a user's marks set that records a
-- meeting connection id joined: the member is the prefix and the meeting
-- id. The length makes it unambiguous whatever the ids hold.
local function mark_prefix(id)
  return #id .. ':' .. id
end

-- drop_marks forgets the meetings connection id (whose summary is c)
-- joined: its count in the presence hash key and its members of the marks
-- set mkey. It returns those meetings, sorted. Reading them costs the
-- user's marks, which only a disconnect or an expired connection pays.
local function drop_marks(key, mkey, id, c)
  if c.n <= 0 then return {} end
  redis.call('HDEL', key, 'n:' .. id)
  local prefix = mark_prefix(id)
  local members, meetings = {}, {}
  for _, v in ipairs(redis.call('SMEMBERS', mkey)) do
    if string.sub(v, 1, #prefix) == prefix then
      table.insert(members, v)
      table.insert(meetings, string.sub(v, #prefix + 1))
    end
  end
  for i = 1, #members, 500 do
    redis.call('SREM', mkey, unpack(members, i, math.min(i + 499, #members)))
  end
  table.sort(meetings)
  return meetings
end

-- derive returns the status the live connections give (busy when one is in
-- a meeting), or nil when no connection is live at now.
local function derive(conns, now)
  local live, busy = false, false
  for _, c in pairs(conns) do
    if c.x > now then
      live = true
      if c.n > 0 then busy = true end
    end
  end
  if busy then return 'busy' end
  if live then return 'online' end
  return nil
end

-- keep_presence sets the TTL of a user's presence hash key and marks set
-- mkey: until the last connection expiry plus hold (so that SettleOffline
-- still finds a user whose connections expired), at least now + hold while
-- an offline transition is pending, and at least the last_seen retention.
-- Entries of connections dead for longer than hold are dropped, with their
-- marks.
local function keep_presence(key, mkey, conns, st, now, hold)
  local deadline = 0
  for id, c in pairs(conns) do
    local x = c.x + hold
    if x <= now then
      redis.call('HDEL', key, 'c:' .. id)
      drop_marks(key, mkey, id, c)
    elseif x > deadline then
      deadline = x
    end
  end
  if st ~= 'offline' and now + hold > deadline then deadline = now + hold end
  local lsx = tonumber(redis.call('HGET', key, 'lsx') or '0')
  if lsx > deadline then deadline = lsx end
  expire(key, deadline, now)
  expire(mkey, deadline, now)
end

-- presence_status returns a user's status at now (ms) as Presence.Query
-- reports it: busy or online while a connection is live; while an offline
-- transition is pending (pd), the status announced last; else offline.
local function presence_status(key, now)
  local st, conns, pending = load_presence(key)
  local live = derive(conns, now)
  if live then return live end
  if pending and st ~= 'offline' then return st end
  return 'offline'
end
