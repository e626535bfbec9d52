-- connectGuest records a live connection of a guest session.
-- KEYS[1] session. ARGV[1] now, ARGV[2] connection id.
local s, raw = load_session(KEYS[1], ARGV[1])
if not s then return fail('not_found') end
if type(s._conns) ~= 'table' then s._conns = {} end
for _, c in ipairs(s._conns) do
  if c == ARGV[2] then return reply({s = raw}) end
end
table.insert(s._conns, ARGV[2])
return reply({s = save_session(KEYS[1], s)})
