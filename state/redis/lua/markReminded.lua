-- markReminded records that a reminder was sent; only the first caller for
-- a given reminder is told first = true.
-- KEYS[1] meeting. ARGV[1] minutes before start.
local m, raw = get_json(KEYS[1])
if not m then return reply({}) end
if m.status == 'ended' then return reply({m = raw}) end
if type(m._reminded) ~= 'table' then m._reminded = {} end
if m._reminded[ARGV[1]] then return reply({m = raw}) end
m._reminded[ARGV[1]] = true
return reply({m = save(KEYS[1], m), first = true})
