-- endIfOver ends a scheduled meeting whose end time has passed and whose
-- room is empty.
-- KEYS[1] meeting. ARGV[1] now.
local now = ARGV[1]
local m, raw = get_json(KEYS[1])
if not m then return fail('not_found') end
if m.status == 'ended' or not over(m, now) then return reply({m = raw}) end
m.status = 'ended'
m.ended_at = now
touch(m, now)
return reply({m = save(KEYS[1], m), ended = true})
