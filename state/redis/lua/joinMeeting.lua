-- joinMeeting puts a connection of a participant in the meeting room; the
-- first join makes a scheduled meeting live.
-- KEYS[1] meeting. ARGV[1] now, ARGV[2] actor, ARGV[3] connection.
local now, actor, conn = ARGV[1], ARGV[2], ARGV[3]
local m, raw = get_json(KEYS[1])
if not m then return fail('not_found') end
local p = find(m, actor)
if not p then return fail('not_found') end
if m.status == 'ended' or over(m, now) then return fail('gone') end
if p.status == 'declined' then return fail('forbidden') end
local r = enter(m, p, conn, 'joined', now)
if not r then return reply({m = raw, already = true}) end
if m.status == 'scheduled' then
  m.status = 'live'
  m.started_at = now
  r.started = true
end
touch(m, now)
r.m = save(KEYS[1], m)
return reply(r)
