-- A batch of finished requests, each added to its subjects' days and its rate limit
-- reservation settled, all in one atomic step (the recorder groups what queued while its
-- previous call was in flight; a batch of one is a request on its own).
-- ARGV[1] = retention in seconds, ARGV[2] = number of records, then per record:
--   model, number of day hashes, number of field/value pairs, number of limit counters,
--   the pairs, then one delta per limit counter (adjust.lua, borrowed from the limiter).
-- KEYS, per record in the same order: its day hashes (one per subject), then its limit
-- counters to correct.
-- Each counter is added to the day (`requests`) and to the model (`m:<model>:requests`).
local ttl, records = tonumber(ARGV[1]), tonumber(ARGV[2])
local a, k = 3, 1
for _ = 1, records do
  local model = ARGV[a]
  local days, pairs_count, counters = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]),
    tonumber(ARGV[a + 3])
  local first_pair = a + 4
  local first_delta = first_pair + 2 * pairs_count
  for d = 0, days - 1 do
    local key = KEYS[k + d]
    for i = first_pair, first_delta - 1, 2 do
      local field, value = ARGV[i], tonumber(ARGV[i + 1])
      redis.call('HINCRBY', key, field, value)
      redis.call('HINCRBY', key, 'm:' .. model .. ':' .. field, value)
    end
    redis.call('EXPIRE', key, ttl)
  end
  for c = 0, counters - 1 do
    adjust(KEYS[k + days + c], ARGV[first_delta + c])
  end
  a = first_delta + counters
  k = k + days + counters
end
return records
