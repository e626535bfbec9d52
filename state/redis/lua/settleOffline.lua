-- settleOffline makes a user with no live connection offline and records
-- last_seen.
-- KEYS[1] the user's presence hash, KEYS[2] the user's marks set.
-- ARGV[1] now (ms), ARGV[2] now, ARGV[3] last_seen retention (ms),
-- ARGV[4] hold (ms).
local now = tonumber(ARGV[1])
local st, conns = load_presence(KEYS[1])
local live = derive(conns, now)
if live then
  redis.call('HSET', KEYS[1], 'st', live)
  redis.call('HDEL', KEYS[1], 'pd')
  return reply({from = st, to = live})
end
if st == 'offline' then return reply({from = st, to = st}) end
redis.call('HDEL', KEYS[1], 'pd')
redis.call('HSET', KEYS[1], 'st', 'offline', 'ls', ARGV[2],
  'lsx', string.format('%d', now + tonumber(ARGV[3])))
keep_presence(KEYS[1], KEYS[2], conns, 'offline', now, tonumber(ARGV[4]))
return reply({from = st, to = 'offline'})
