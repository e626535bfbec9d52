-- disconnectPresence removes a member's connection. With no live connection
-- left the user keeps the stored status, marked pending (pd), until
-- settleOffline: the presence grace absorbs a reconnect without a broadcast.
-- KEYS[1] the user's presence hash, KEYS[2] the user's marks set.
-- ARGV[1] now (ms), ARGV[2] connection id, ARGV[3] hold (ms).
local now = tonumber(ARGV[1])
local id = ARGV[2]
local st, conns = load_presence(KEYS[1])
if not conns[id] then return reply({}) end
local meetings = drop_marks(KEYS[1], KEYS[2], id, conns[id])
conns[id] = nil
redis.call('HDEL', KEYS[1], 'c:' .. id)
local live = derive(conns, now)
local to = live or st
if not live and st ~= 'offline' then redis.call('HSET', KEYS[1], 'pd', '1') end
redis.call('HSET', KEYS[1], 'st', to)
keep_presence(KEYS[1], KEYS[2], conns, to, now, tonumber(ARGV[3]))
return reply({from = st, to = to, meetings = nonempty(meetings), last = live == nil})
