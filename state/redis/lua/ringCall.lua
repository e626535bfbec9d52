-- ringCall marks the online recipients of a call as ringing until the ring
-- deadline.
-- KEYS[1] call; on one Redis, KEYS[1 + i] the presence hash of recipient i.
-- ARGV[1] now, ARGV[2] actor, ARGV[3] ring deadline, ARGV[4] n = number of
-- recipients, ARGV[5..4+n] recipients. With presence keys: ARGV[5+n] now
-- (ms), and a recipient is online when its presence says so (as
-- Presence.Query would). Without (Redis Cluster, where those hashes live in
-- other slots): the rest of ARGV lists the recipients that are online.
local now, actor, deadline, n = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local m, raw = get_json(KEYS[1])
if not m or not m.is_instant_call then return fail('not_found') end
if not find(m, actor) then return fail('not_found') end
local recipients, online, bad, badseen = {}, {}, {}, {}
for i = 5, 4 + n do table.insert(recipients, ARGV[i]) end
for _, u in ipairs(recipients) do
  if (u == actor or not find(m, u)) and not badseen[u] then
    badseen[u] = true
    table.insert(bad, u)
  end
end
if #bad > 0 then
  return fail('invalid', 'not a participant the caller may ring: ' .. table.concat(bad, ', '))
end
if #KEYS > 1 then
  local now_ms = tonumber(ARGV[5 + n])
  for i, u in ipairs(recipients) do
    if online[u] == nil then
      online[u] = presence_status(KEYS[1 + i], now_ms) ~= 'offline'
    end
  end
else
  for i = 5 + n, #ARGV do online[ARGV[i]] = true end
end
local rang, seen = {}, {}
for _, u in ipairs(recipients) do
  if not seen[u] then
    seen[u] = true
    local q = find(m, u)
    if online[u] and (q.status == 'invited' or q.status == 'ringing' or q.status == 'missed') then
      q.status = 'ringing'
      q._ring_deadline = deadline
      table.insert(rang, u)
    end
  end
end
if #rang > 0 then
  touch(m, now)
  raw = save(KEYS[1], m)
end
return reply({m = raw, users = nonempty(rang)})
