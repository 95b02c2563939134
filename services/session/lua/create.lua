-- CreateSession. KEYS[4] = overall index, KEYS[5] = the owner's index.
-- ARGV[3] owner, ARGV[4] ttl_ms, ARGV[5] system_prompt, ARGV[6] context, ARGV[7] labels.
-- Returns {'EXISTS'} or {'OK', metadata as HGETALL}.
local meta, messages, expiry, id = KEYS[1], KEYS[2], KEYS[3], ARGV[2]
local all_index, own_index = KEYS[4], KEYS[5]
local owner = ARGV[3]
if redis.call('EXISTS', meta) == 1 then
  return {'EXISTS'}
end
local now = now_us()
-- The create time is the listing cursor, so it is unique in the overall index.
while #redis.call('ZRANGEBYSCORE', all_index, int(now), int(now), 'LIMIT', 0, 1) > 0 do
  now = now + 1
end
-- A history left by an expired session of the same id is logically gone already.
redis.call('DEL', messages)
redis.call('HSET', meta,
  'owner', owner, 'ttl_ms', ARGV[4], 'system_prompt', ARGV[5], 'context', ARGV[6],
  'labels', ARGV[7], 'count', '0', 'create_us', int(now), 'update_us', int(now), 'rev', '1')
redis.call('ZADD', all_index, int(now), id)
if owner ~= '' then
  redis.call('ZADD', own_index, int(now), id)
end
touch(meta, messages, expiry, id, now)
return {'OK', redis.call('HGETALL', meta)}
