-- leaveMeeting takes a connection out of the meeting room. The last present
-- user leaving a call ends and deletes it; the last connection leaving a
-- scheduled meeting past its end time ends it.
-- KEYS[1] meeting, KEYS[2] the meeting's admission queue (deleted with a
-- call). ARGV[1] now, ARGV[2] actor, ARGV[3] connection.
local now, actor, conn = ARGV[1], ARGV[2], ARGV[3]
local m = get_json(KEYS[1])
if not m then return fail('not_found') end
local p = find(m, actor)
if not p then return fail('not_found') end
local list = room(m)[actor]
local at = nil
if type(list) == 'table' then
  for i, c in ipairs(list) do
    if c == conn then at = i end
  end
end
if not at then return fail('conflict') end
table.remove(list, at)
local r = {}
if #list == 0 then
  room(m)[actor] = nil
  p.status = 'left'
  p.left_at = now
  r.user_left = true
end
touch(m, now)
if m.is_instant_call then
  if not present(m) then
    r.ended, r.deleted = true, true
    if m._answered then r.reason = 'completed' else r.reason = 'cancelled' end
    end_call(m, now)
    r.m = m -- the last state, encoded once
    return reply(r)
  end
elseif m.status ~= 'ended' and over(m, now) then
  m.status = 'ended'
  m.ended_at = now
  r.ended = true
end
r.m = save(KEYS[1], m)
return reply(r)
