-- updateMeeting applies a meeting:update patch and moves the TTL to the new
-- end time + retention.
-- KEYS[1] meeting. ARGV[1] now, ARGV[2] now (ms), ARGV[3] actor,
-- ARGV[4] retention (ms), ARGV[5] patch JSON (only the fields to change; its
-- _raw holds the bytes of opaque fields that are not valid UTF-8).
local now, now_ms, actor = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local m = get_json(KEYS[1])
if not m then return fail('not_found') end
local p = find(m, actor)
if not p then return fail('not_found') end
if p.role ~= 'owner' then return fail('forbidden') end
if m.status == 'ended' then return fail('conflict') end
local patch = cjson.decode(ARGV[5])
local old_end = m.end_time
for _, f in ipairs({'title', 'description', 'start_time', 'end_time', 'allow_external'}) do
  if patch[f] ~= nil then m[f] = patch[f] end
end
for _, f in ipairs({'title', 'description'}) do
  if patch[f] ~= nil then
    set_raw(m, f, type(patch._raw) == 'table' and patch._raw[f] or nil)
  end
end
if not (m.end_time > m.start_time) then
  return fail('invalid', 'end_time must be after start_time')
end
touch(m, now)
local doc = save(KEYS[1], m)
local ttl = expire(KEYS[1], ms(m.end_time) + tonumber(ARGV[4]), now_ms)
return reply({m = doc, grew = m.end_time > old_end, pttl = ttl})
