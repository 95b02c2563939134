-- ClearHistory: drops every message, keeps the session; indexes restart at 0.
-- Returns {'NOT_FOUND'} or {'OK', metadata as HGETALL}.
local meta, messages, expiry, id = KEYS[1], KEYS[2], KEYS[3], ARGV[2]
if not visible_owner(meta, ARGV[3]) then
  return {'NOT_FOUND'}
end
local now = now_us()
redis.call('DEL', messages)
redis.call('HSET', meta, 'count', '0', 'update_us', int(now))
redis.call('HINCRBY', meta, 'rev', 1)
touch(meta, messages, expiry, id, now)
return {'OK', redis.call('HGETALL', meta)}
