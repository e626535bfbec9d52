-- disconnectGuest removes a connection of a guest session and reports
-- whether it was the last one.
-- KEYS[1] session. ARGV[1] now, ARGV[2] connection id.
local s, raw = load_session(KEYS[1], ARGV[1])
if not s then return fail('not_found') end
local conns = s._conns
if type(conns) ~= 'table' then conns = {} end
local at = nil
for i, c in ipairs(conns) do
  if c == ARGV[2] then at = i end
end
if not at then return reply({s = raw, last = false}) end
table.remove(conns, at)
local last = #conns == 0
return reply({s = save_session(KEYS[1], s), last = last})
