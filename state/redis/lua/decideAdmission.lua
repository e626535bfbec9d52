-- decideAdmission admits or declines a waiting guest; the first decision
-- wins. The session leaves the queue in the same step.
-- KEYS[1] session, KEYS[2] the meeting's queue. ARGV[1] now, ARGV[2]
-- session id, ARGV[3] actor, ARGV[4] "1" admit / "0" decline, ARGV[5] retry
-- after (declined).
local now, id = ARGV[1], ARGV[2]
local s = load_session(KEYS[1], now)
if not s then return fail('not_found') end
if s.status ~= 'waiting' then return fail('conflict') end
if ARGV[4] == '1' then
  s.status = 'admitted'
  s.admitted_by = ARGV[3]
else
  s.status = 'declined'
  s._retry_after = ARGV[5]
end
s.decided_at = now
s._queued_at = nil
local doc = save_session(KEYS[1], s)
redis.call('ZREM', KEYS[2], id)
return reply({s = doc})
