-- settleGuestLeft marks a guest with no live connection left (unless left
-- or declined already) and takes it out of the queue.
-- KEYS[1] session, KEYS[2] the meeting's queue. ARGV[1] now, ARGV[2]
-- session id.
local s, raw = load_session(KEYS[1], ARGV[1])
if not s then return fail('not_found') end
if (type(s._conns) == 'table' and #s._conns > 0) or s.status == 'left' or s.status == 'declined' then
  return reply({s = raw, changed = false})
end
s.status = 'left'
s._queued_at = nil
local doc = save_session(KEYS[1], s)
redis.call('ZREM', KEYS[2], ARGV[2])
return reply({s = doc, changed = true})
