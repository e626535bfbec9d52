-- scheduleJobs adds jobs or moves them to their new due time; a moved job
-- loses its lease, so the Done of an earlier claim does not remove it.
-- KEYS[1] due times (zset), KEYS[2] job data (hash).
-- ARGV: triples of job id, job JSON, due (ms).
for i = 1, #ARGV, 3 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[1], ARGV[i + 2], ARGV[i])
end
return reply({})
