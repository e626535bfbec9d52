-- useLink counts one use of an invitation link, unless it is expired,
-- revoked or used up (gone, answered with the link).
-- KEYS[1] link. ARGV[1] now.
local l, raw = get_json(KEYS[1])
if not l then return fail('not_found') end
local max = tonumber(l.max_uses) or 0
if l.revoked == true or l.expires_at <= ARGV[1] or (max > 0 and (tonumber(l.uses) or 0) >= max) then
  return reply({e = 'gone', l = raw})
end
l.uses = (tonumber(l.uses) or 0) + 1
raw = cjson.encode(l)
redis.call('SET', KEYS[1], raw, 'KEEPTTL')
return reply({l = raw})
