-- ARGV[1] token, ARGV[2] outcome, ARGV[3] retention (ms). Records the outcome when the
-- token still holds the record (a runner whose lease lapsed leaves the newer attempt's).
local record = KEYS[1]
if redis.call('HGET', record, 'token') ~= ARGV[1] then
  return 0
end
redis.call('HSET', record, 'state', 'D', 'outcome', ARGV[2])
redis.call('HDEL', record, 'token')
redis.call('PEXPIRE', record, ARGV[3])
return 1
