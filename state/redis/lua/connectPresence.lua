-- connectPresence registers (Connect) or refreshes (Heartbeat) a member's
-- connection until now + ttl and reports the user's status transition.
-- KEYS[1] the user's presence hash, KEYS[2] the user's marks set.
-- ARGV[1] now (ms), ARGV[2] connection id, ARGV[3] user, ARGV[4] device,
-- ARGV[5] node, ARGV[6] ttl (ms), ARGV[7] max live connections (0: no
-- limit), ARGV[8] hold (ms).
local now = tonumber(ARGV[1])
local id = ARGV[2]
local st, conns = load_presence(KEYS[1])
local c, n = nil, 0
if conns[id] then
  c, n = cjson.decode(conns[id].raw), conns[id].n
else
  local max = tonumber(ARGV[7])
  if max > 0 then
    local n = 0
    for _, o in pairs(conns) do
      if o.x > now then n = n + 1 end
    end
    if n >= max then
      return fail('rate_limited', string.format('at most %d connections per user', max))
    end
  end
  c = {id = id, user = ARGV[3], device = ARGV[4]}
end
c.device, c.node = ARGV[4], ARGV[5]
c.x = now + tonumber(ARGV[6])
conns[id] = save_conn(KEYS[1], id, c, n)
local to = derive(conns, now)
redis.call('HSET', KEYS[1], 'st', to)
redis.call('HDEL', KEYS[1], 'pd')
keep_presence(KEYS[1], KEYS[2], conns, to, now, tonumber(ARGV[8]))
return reply({from = st, to = to})
