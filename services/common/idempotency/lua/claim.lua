-- ARGV[1] fingerprint, ARGV[2] token, ARGV[3] lease (ms).
-- Returns {'CLAIMED'} (the caller runs the work), {'PENDING', fingerprint} or
-- {'DONE', fingerprint, outcome}.
local record = KEYS[1]
local state = redis.call('HGET', record, 'state')
if not state then
  redis.call('HSET', record, 'state', 'P', 'fingerprint', ARGV[1], 'token', ARGV[2])
  redis.call('PEXPIRE', record, ARGV[3])
  return {'CLAIMED'}
end
local fingerprint = redis.call('HGET', record, 'fingerprint')
if state == 'D' then
  return {'DONE', fingerprint, redis.call('HGET', record, 'outcome')}
end
return {'PENDING', fingerprint}
