-- ARGV[1] token, ARGV[2] lease (ms). Returns 1 while the token still holds the record.
local record = KEYS[1]
if redis.call('HGET', record, 'token') == ARGV[1] then
  redis.call('PEXPIRE', record, ARGV[2])
  return 1
end
return 0
