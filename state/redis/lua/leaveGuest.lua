-- leaveGuest marks a guest left at its own request, whatever its
-- connections, and takes it out of the queue.
-- KEYS[1] session, KEYS[2] the meeting's queue. ARGV[1] now, ARGV[2]
-- session id.
local s, raw = load_session(KEYS[1], ARGV[1])
if not s then return fail('not_found') end
if s.status == 'left' then return reply({s = raw, changed = false}) end
s.status = 'left'
s._queued_at = nil
local doc = save_session(KEYS[1], s)
redis.call('ZREM', KEYS[2], ARGV[2])
return reply({s = doc, changed = true})
