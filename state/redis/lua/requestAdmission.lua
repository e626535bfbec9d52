-- requestAdmission puts a guest session in its meeting's admission queue.
-- KEYS[1] session, KEYS[2] the meeting's queue. ARGV[1] now, ARGV[2] now
-- (ms), ARGV[3] session id, ARGV[4] "1" to replace the display name,
-- ARGV[5] the display name, ARGV[6] its bytes in base64 when it is not
-- valid UTF-8 (else "").
local now, now_ms, id = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local s = load_session(KEYS[1], now)
if not s then return fail('not_found') end
if s.status == 'waiting' or s.status == 'admitted' then return fail('conflict') end
-- The cooldown of a decline holds whatever happened since (a guest that
-- left and came back waits it out too).
if set(s._retry_after) and now < s._retry_after then
  return fail('rate_limited', 'asked again inside the admission cooldown')
end
s.status = 'waiting'
s._queued_at = now
-- A new request starts afresh: the last decision no longer applies.
s._retry_after, s.decided_at, s.admitted_by = nil, nil, nil
if ARGV[4] == '1' then
  s.display_name = ARGV[5]
  set_raw(s, 'display_name', ARGV[6])
end
local doc = save_session(KEYS[1], s)
-- Queued by time; requests in the same millisecond keep their order through
-- a fraction of a millisecond (1/1024 steps stay exact in a double until
-- the year 2248).
local score = now_ms
local last = redis.call('ZREVRANGEBYSCORE', KEYS[2], '(' .. (now_ms + 1), now_ms, 'WITHSCORES', 'LIMIT', 0, 1)
if #last > 0 and last[1] ~= id then
  local next_score = tonumber(last[2]) + 1 / 1024
  if next_score < now_ms + 1 then score = next_score end
end
redis.call('ZADD', KEYS[2], string.format('%.17g', score), id)
extend(KEYS[2], ms(s.expires_at), now_ms)
return reply({s = doc})
