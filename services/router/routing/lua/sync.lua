-- A replica's periodic round trip: flushes its batched successes and reads back every
-- breaker it knows. KEYS[i] = a breaker hash; ARGV from FIRST_ARG, four per key: batched
-- count, batch window index, newest batched success, adopt_until.
-- adopt_until > now (sent only on the first sync after Redis was unreachable) is the end
-- of an open period the replica entered on its own meanwhile: a CLOSED breaker takes it,
-- so what one replica learnt during the outage protects the others. Any other state in
-- Redis wins. A hash that does not exist is reported CLOSED (version 0) and not created.
-- Returns the 8 hash fields of each key, in KEYS order.
local reply = {}
for i, key in ipairs(KEYS) do
  local arg = FIRST_ARG + (i - 1) * 4
  local st = load(key)
  local before = copy(st)
  add_successes(st, tonumber(ARGV[arg]), tonumber(ARGV[arg + 1]), tonumber(ARGV[arg + 2]))
  local adopt_until = tonumber(ARGV[arg + 3])
  if st.s == CLOSED and adopt_until > NOW then
    st.s = OPEN
    st.r = adopt_until
  end
  save(key, before, st)
  for _, field in ipairs(encode(st)) do
    reply[#reply + 1] = field
  end
end
return reply
