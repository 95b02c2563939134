-- Admission when the replica's snapshot is not CLOSED, or the key is new to it.
-- KEYS[1] = the breaker hash. Returns {allowed, probe, transition, <hash fields>}:
-- exactly one caller, across every replica, turns an OPEN breaker past its reopen time
-- (or a HALF_OPEN one whose lease ended) into the probe.
local st = load(KEYS[1])
local before = copy(st)
local allowed, probe = admit(st)
save(KEYS[1], before, st)
local reply = {allowed, probe, transition(before, st)}
for _, field in ipairs(encode(st)) do
  reply[#reply + 1] = field
end
return reply
