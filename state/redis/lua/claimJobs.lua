-- claimJobs hands out up to limit due jobs, each hidden from other claimers
-- until its lease expires: its score becomes the lease deadline, so an
-- unfinished job is due again when the lease runs out.
-- KEYS[1] due times, KEYS[2] job data. ARGV[1] now (ms), ARGV[2] lease
-- deadline, ARGV[3] lease deadline (ms), ARGV[4] limit.
-- Answers an array of job JSON strings.
local limit = tonumber(ARGV[4])
local out = {}
if limit <= 0 then return out end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, limit)
for _, id in ipairs(ids) do
  local raw = redis.call('HGET', KEYS[2], id)
  if raw then
    local j = cjson.decode(raw)
    j.lease = ARGV[2]
    raw = cjson.encode(j)
    redis.call('HSET', KEYS[2], id, raw)
    redis.call('ZADD', KEYS[1], ARGV[3], id)
    table.insert(out, raw)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
