-- ARGV[1] token. Drops a running record (its work failed): a repeat runs it again.
local record = KEYS[1]
if redis.call('HGET', record, 'token') == ARGV[1] then
  redis.call('DEL', record)
  return 1
end
return 0
