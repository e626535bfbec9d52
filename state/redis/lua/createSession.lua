-- createSession stores a new guest session until its expiry.
-- KEYS[1] session. ARGV[1] session JSON, ARGV[2] TTL (ms, >= 1).
if redis.call('EXISTS', KEYS[1]) == 1 then return fail('conflict') end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return reply({})
