-- expireRings turns ringing participants whose ring deadline passed into
-- missed; when every participant but the owner declined or missed, the call
-- ends (timeout) and is deleted.
-- KEYS[1] call, KEYS[2] its admission queue. ARGV[1] now.
local now = ARGV[1]
local m, raw = get_json(KEYS[1])
if not m or not m.is_instant_call then return fail('not_found') end
local missed = {}
for _, p in ipairs(m.participants or {}) do
  if p.status == 'ringing' and set(p._ring_deadline) and p._ring_deadline <= now then
    p.status = 'missed'
    p._ring_deadline = nil
    table.insert(missed, p.user_id)
  end
end
if #missed == 0 then return reply({m = raw}) end
touch(m, now)
if all_out(m) then
  end_call(m, now)
  return reply({m = m, users = missed, ended = true, deleted = true, reason = 'timeout'})
end
return reply({m = save(KEYS[1], m), users = missed})
