-- acceptCall: a ringing or invited participant accepts a call; the accepting
-- connection joins the call's room.
-- KEYS[1] call. ARGV[1] now, ARGV[2] actor, ARGV[3] connection.
local now, actor, conn = ARGV[1], ARGV[2], ARGV[3]
local m = get_json(KEYS[1])
if not m or not m.is_instant_call then return fail('not_found') end
local p = find(m, actor)
if not p then return fail('not_found') end
if p.status ~= 'ringing' and p.status ~= 'invited' then return fail('conflict') end
local r = enter(m, p, conn, 'accepted', now) or {}
p.status = 'accepted'
p._ring_deadline = nil
if p.role ~= 'owner' then m._answered = true end
touch(m, now)
r.m = save(KEYS[1], m)
return reply(r)
