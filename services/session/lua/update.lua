-- UpdateSession. ARGV[4] = new ttl_ms ('' keeps it), ARGV[5..] = metadata field/value
-- pairs to replace (only system_prompt, context and labels are ever passed).
-- Returns {'NOT_FOUND'} or {'OK', metadata as HGETALL}.
local meta, messages, expiry, id = KEYS[1], KEYS[2], KEYS[3], ARGV[2]
if not visible_owner(meta, ARGV[3]) then
  return {'NOT_FOUND'}
end
local now = now_us()
if ARGV[4] ~= '' then
  redis.call('HSET', meta, 'ttl_ms', ARGV[4])
end
for i = 5, #ARGV, 2 do
  redis.call('HSET', meta, ARGV[i], ARGV[i + 1])
end
redis.call('HSET', meta, 'update_us', int(now))
touch(meta, messages, expiry, id, now)
return {'OK', redis.call('HGETALL', meta)}
