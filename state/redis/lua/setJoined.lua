-- setJoined records that a member's connection joined or left a meeting and
-- reports the online <-> busy transition, and whether the connection's
-- meetings changed (changed: the meeting was added or removed).
-- KEYS[1] the user's presence hash. ARGV[1] now (ms), ARGV[2] connection id,
-- ARGV[3] meeting id, ARGV[4] "1" joined / "0" left.
local now = tonumber(ARGV[1])
local st, conns = load_presence(KEYS[1])
if not conns[ARGV[2]] then return reply({from = st, to = st}) end
local c = cjson.decode(conns[ARGV[2]].raw)
if type(c.m) ~= 'table' then c.m = {} end
local joined = ARGV[4] == '1'
local changed = (c.m[ARGV[3]] ~= nil) ~= joined
if changed then
  if joined then c.m[ARGV[3]] = true else c.m[ARGV[3]] = nil end
  conns[ARGV[2]] = save_conn(KEYS[1], ARGV[2], c)
end
local to = derive(conns, now) or st
if to ~= st then redis.call('HSET', KEYS[1], 'st', to) end
return reply({from = st, to = to, changed = changed})
