-- setJoined records that a member's connection joined or left a meeting and
-- reports the online <-> busy transition, and whether the connection's
-- meetings changed (changed: the meeting was added or removed). It costs
-- the same however many meetings the connection is in: the mark is one
-- member of the user's marks set, and the connection's count of them is
-- what the other presence scripts read.
-- KEYS[1] the user's presence hash, KEYS[2] the user's marks set.
-- ARGV[1] now (ms), ARGV[2] connection id, ARGV[3] meeting id,
-- ARGV[4] "1" joined / "0" left.
local now = tonumber(ARGV[1])
local id = ARGV[2]
local mark = mark_prefix(id) .. ARGV[3]
local st, conns = load_presence(KEYS[1])
local c = conns[id]
if not c then return reply({from = st, to = st}) end
local changed
if ARGV[4] == '1' then
  changed = redis.call('SADD', KEYS[2], mark) == 1
  if changed then
    c.n = redis.call('HINCRBY', KEYS[1], 'n:' .. id, 1)
    -- The set lives as long as the hash, whose TTL the connection's
    -- heartbeats keep (keep_presence).
    local ttl = redis.call('PTTL', KEYS[1])
    if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
  end
else
  changed = redis.call('SREM', KEYS[2], mark) == 1
  if changed then
    c.n = redis.call('HINCRBY', KEYS[1], 'n:' .. id, -1)
    if c.n <= 0 then
      c.n = 0
      redis.call('HDEL', KEYS[1], 'n:' .. id)
    end
  end
end
local to = derive(conns, now) or st
if to ~= st then redis.call('HSET', KEYS[1], 'st', to) end
return reply({from = st, to = to, changed = changed})
