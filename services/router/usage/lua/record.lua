-- One finished request added to each subject's day, in one atomic step, and its rate
-- limit reservation settled in the same call.
-- KEYS: the day hashes (one per subject, ARGV[3] of them), then the limit counters to
-- correct. ARGV[1] = retention in seconds, ARGV[2] = model, ARGV[3] = number of day
-- hashes, ARGV[4] = number of field/value pairs, then the pairs, then one delta per limit
-- counter (adjust.lua, borrowed from the rate limiter).
-- Each counter is added to the day (`requests`) and to the model (`m:<model>:requests`).
local ttl, model = tonumber(ARGV[1]), ARGV[2]
local days, pairs_count = tonumber(ARGV[3]), tonumber(ARGV[4])
local first_delta = 5 + 2 * pairs_count
for d = 1, days do
  local key = KEYS[d]
  for i = 5, first_delta - 1, 2 do
    local field, value = ARGV[i], tonumber(ARGV[i + 1])
    redis.call('HINCRBY', key, field, value)
    redis.call('HINCRBY', key, 'm:' .. model .. ':' .. field, value)
  end
  redis.call('EXPIRE', key, ttl)
end
for k = days + 1, #KEYS do
  adjust(KEYS[k], ARGV[first_delta + k - days - 1])
end
return days
