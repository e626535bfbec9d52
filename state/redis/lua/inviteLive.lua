-- inviteLive adds users to a live meeting as invited members, and invites
-- again those who declined, left or missed.
-- KEYS[1] meeting. ARGV[1] now, ARGV[2] actor, ARGV[3] max participants,
-- ARGV[4..] users. A max of 0 or less is no limit; empty ids are ignored.
local now, actor, max = ARGV[1], ARGV[2], tonumber(ARGV[3])
local m, raw = get_json(KEYS[1])
if not m then return fail('not_found') end
local p = find(m, actor)
if not p then return fail('not_found') end
if m.status == 'ended' then return fail('gone') end
if m.status ~= 'live' then return fail('conflict') end
if not in_room(m, actor) then return fail('forbidden') end
local seen, fresh, again = {}, {}, {}
for i = 4, #ARGV do
  local u = ARGV[i]
  if u ~= '' and not seen[u] then
    seen[u] = true
    local q = find(m, u)
    if not q then
      table.insert(fresh, u)
    elseif q.status == 'declined' or q.status == 'left' or q.status == 'missed' then
      table.insert(again, q)
    end
  end
end
if max > 0 and #m.participants + #fresh > max then
  return fail('too_large', string.format('a meeting holds at most %d participants', max))
end
local invited = {}
for _, q in ipairs(again) do
  q.status = 'invited'
  q._ring_deadline = nil
  table.insert(invited, q.user_id)
end
for _, u in ipairs(fresh) do
  table.insert(m.participants, {user_id = u, role = 'member', status = 'invited',
    joined_at = NULL, left_at = NULL})
  table.insert(invited, u)
end
if #invited > 0 then
  touch(m, now)
  raw = save(KEYS[1], m)
end
return reply({m = raw, users = nonempty(invited), pttl = redis.call('PTTL', KEYS[1])})
