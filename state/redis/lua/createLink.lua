-- createLink stores an invitation link until its expiry.
-- KEYS[1] link. ARGV[1] link JSON, ARGV[2] TTL (ms, >= 1).
if redis.call('EXISTS', KEYS[1]) == 1 then return fail('conflict') end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return reply({})
