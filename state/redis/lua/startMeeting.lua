-- startMeeting makes a scheduled meeting live.
-- KEYS[1] meeting. ARGV[1] now, ARGV[2] actor.
local now, actor = ARGV[1], ARGV[2]
local m = get_json(KEYS[1])
if not m then return fail('not_found') end
local p = find(m, actor)
if not p then return fail('not_found') end
if p.role ~= 'owner' then return fail('forbidden') end
if m.status == 'ended' or over(m, now) then return fail('gone') end
if m.status == 'live' then return fail('conflict') end
m.status = 'live'
m.started_at = now
touch(m, now)
return reply({m = save(KEYS[1], m)})
