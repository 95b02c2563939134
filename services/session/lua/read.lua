-- GetSession and ListMessages: read and refresh the expiry in one step.
-- ARGV[4] = '1' to read messages, ARGV[5]/ARGV[6] = LRANGE start/stop.
-- Returns {'NOT_FOUND'} or {'OK', metadata as HGETALL, messages}.
local meta, messages, expiry, id = KEYS[1], KEYS[2], KEYS[3], ARGV[2]
if not visible_owner(meta, ARGV[3]) then
  return {'NOT_FOUND'}
end
touch(meta, messages, expiry, id, now_us())
local history = {}
if ARGV[4] == '1' then
  history = redis.call('LRANGE', messages, ARGV[5], ARGV[6])
end
return {'OK', redis.call('HGETALL', meta), history}
