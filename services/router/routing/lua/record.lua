-- One outcome, after the replica's batched successes for the same breaker (so they count
-- in the window before this outcome is judged).
-- KEYS[1] = the breaker hash. ARGV[FIRST_ARG..] = outcome (1 success, 2 failure,
-- 3 neutral), probe (1 or 0), batched count, batch window index, newest batched success.
-- Returns {transition, <hash fields>}.
local outcome = tonumber(ARGV[FIRST_ARG])
local probe = ARGV[FIRST_ARG + 1] == '1'
local st = load(KEYS[1])
local before = copy(st)
add_successes(st, tonumber(ARGV[FIRST_ARG + 2]), tonumber(ARGV[FIRST_ARG + 3]),
  tonumber(ARGV[FIRST_ARG + 4]))
record(st, outcome, probe)
save(KEYS[1], before, st)
local reply = {transition(before, st)}
for _, field in ipairs(encode(st)) do
  reply[#reply + 1] = field
end
return reply
