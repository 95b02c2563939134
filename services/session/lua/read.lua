-- GetSession and ListMessages: read and refresh the expiry in one step.
-- ARGV[3] = '1' to read messages, ARGV[4]/ARGV[5] = LRANGE start/stop.
-- Returns {'NOT_FOUND'} or {'OK', metadata as HGETALL, messages}.
local meta, messages, expiry, id = KEYS[1], KEYS[2], KEYS[3], ARGV[2]
if redis.call('EXISTS', meta) == 0 then
  return {'NOT_FOUND'}
end
touch(meta, messages, expiry, id, now_us())
local history = {}
if ARGV[3] == '1' then
  history = redis.call('LRANGE', messages, ARGV[4], ARGV[5])
end
return {'OK', redis.call('HGETALL', meta), history}
