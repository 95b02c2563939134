-- UpdateSession. ARGV[4] = the etag the caller read ('' skips the check), ARGV[5] = new
-- ttl_ms ('' keeps it), ARGV[6..] = metadata field/value pairs to replace (only
-- system_prompt, context and labels are ever passed).
-- Returns {'NOT_FOUND'}, {'STALE'} (nothing changed) or {'OK', metadata as HGETALL}.
local meta, messages, expiry, id = KEYS[1], KEYS[2], KEYS[3], ARGV[2]
if not visible_owner(meta, ARGV[3]) then
  return {'NOT_FOUND'}
end
if ARGV[4] ~= '' and etag(meta) ~= ARGV[4] then
  return {'STALE'}
end
local now = now_us()
if ARGV[5] ~= '' then
  redis.call('HSET', meta, 'ttl_ms', ARGV[5])
end
for i = 6, #ARGV, 2 do
  redis.call('HSET', meta, ARGV[i], ARGV[i + 1])
end
redis.call('HSET', meta, 'update_us', int(now))
redis.call('HINCRBY', meta, 'rev', 1)
touch(meta, messages, expiry, id, now)
return {'OK', redis.call('HGETALL', meta)}
