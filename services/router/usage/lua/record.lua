-- One finished request added to each subject's day, in one atomic step.
-- KEYS: the day hashes (one per subject).
-- ARGV[1] = retention in seconds, ARGV[2] = model, then field/value pairs.
-- Each counter is added to the day (`requests`) and to the model (`m:<model>:requests`).
local ttl, model = tonumber(ARGV[1]), ARGV[2]
for _, key in ipairs(KEYS) do
  for i = 3, #ARGV, 2 do
    local field, value = ARGV[i], tonumber(ARGV[i + 1])
    redis.call('HINCRBY', key, field, value)
    redis.call('HINCRBY', key, 'm:' .. model .. ':' .. field, value)
  end
  redis.call('EXPIRE', key, ttl)
end
return #KEYS
