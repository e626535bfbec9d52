-- claimDeadNodes removes and returns the nodes whose lease ran out (its
-- deadline is at or before now); each dead node goes to exactly one caller.
-- KEYS[1] node leases (zset). ARGV[1] now (ms).
-- Answers an array of node ids.
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, n in ipairs(dead) do redis.call('ZREM', KEYS[1], n) end
return dead
