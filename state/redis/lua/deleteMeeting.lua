-- deleteMeeting removes a meeting (owner only) with what lives in its slot.
-- KEYS[1] meeting, KEYS[2] its admission queue. ARGV[1] actor.
local m, raw = get_json(KEYS[1])
if not m then return fail('not_found') end
local p = find(m, ARGV[1])
if not p then return fail('not_found') end
if p.role ~= 'owner' then return fail('forbidden') end
redis.call('DEL', unpack(KEYS))
return reply({m = raw})
