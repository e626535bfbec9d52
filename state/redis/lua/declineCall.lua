-- declineCall: a ringing or invited participant declines a call; when every
-- participant but the owner declined or missed, the call ends and is
-- deleted.
-- KEYS[1] call, KEYS[2] its admission queue. ARGV[1] now, ARGV[2] actor.
local now, actor = ARGV[1], ARGV[2]
local m = get_json(KEYS[1])
if not m or not m.is_instant_call then return fail('not_found') end
local p = find(m, actor)
if not p then return fail('not_found') end
if p.status ~= 'ringing' and p.status ~= 'invited' then return fail('conflict') end
p.status = 'declined'
p._ring_deadline = nil
touch(m, now)
if all_out(m) then
  end_call(m, now)
  return reply({m = m, ended = true, deleted = true, reason = 'declined'})
end
return reply({m = save(KEYS[1], m)})
