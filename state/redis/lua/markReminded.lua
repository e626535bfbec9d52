-- markReminded records that a reminder was sent; only the first caller for
-- a given reminder is told first = true.
-- KEYS[1] meeting. ARGV[1] minutes before start.
local m = get_json(KEYS[1])
if not m then return reply({}) end
if m.status == 'ended' then return reply({m = tidy(m)}) end
if type(m._reminded) ~= 'table' then m._reminded = {} end
if m._reminded[ARGV[1]] then return reply({m = tidy(m)}) end
m._reminded[ARGV[1]] = true
save(KEYS[1], m)
return reply({m = m, first = true})
