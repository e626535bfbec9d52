-- refreshNode registers a node with a lease. lost reports that the node was
-- not registered (first start, or reaped) or that its lease had expired,
-- reaped or not: the node cannot tell, so it re-registers what it holds.
-- KEYS[1] node leases (zset). ARGV[1] node, ARGV[2] now (ms), ARGV[3] lease
-- deadline (ms).
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
local lost = score == false or tonumber(score) <= tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return reply({lost = lost})
