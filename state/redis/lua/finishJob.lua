-- finishJob removes a claimed job, unless it was rescheduled or claimed
-- again since (its lease differs).
-- KEYS[1] due times, KEYS[2] job data. ARGV[1] job id, ARGV[2] lease.
local raw = redis.call('HGET', KEYS[2], ARGV[1])
if not raw then return reply({}) end
local j = cjson.decode(raw)
local lease = j.lease
if not set(lease) then lease = '' end
if lease ~= '' and lease == ARGV[2] then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return reply({done = true})
end
return reply({})
