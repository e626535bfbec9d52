-- disconnectPresence removes a member's connection. With no live connection
-- left the user keeps the stored status, marked pending (pd), until
-- settleOffline: the presence grace absorbs a reconnect without a broadcast.
-- KEYS[1] the user's presence hash. ARGV[1] now (ms), ARGV[2] connection id,
-- ARGV[3] hold (ms).
local now = tonumber(ARGV[1])
local id = ARGV[2]
local st, conns = load_presence(KEYS[1])
if not conns[id] then return reply({}) end
local c = cjson.decode(conns[id].raw)
conns[id] = nil
redis.call('HDEL', KEYS[1], 'c:' .. id)
local live = derive(conns, now)
local to = live or st
if not live and st ~= 'offline' then redis.call('HSET', KEYS[1], 'pd', '1') end
redis.call('HSET', KEYS[1], 'st', to)
local meetings = {}
if type(c.m) == 'table' then
  for mid in pairs(c.m) do table.insert(meetings, mid) end
end
table.sort(meetings)
keep_presence(KEYS[1], conns, to, now, tonumber(ARGV[3]))
return reply({from = st, to = to, meetings = nonempty(meetings), last = live == nil})
