-- Corrects reserved amounts to the actual usage: adds ARGV[i] (an integer, negative to
-- give back) to KEYS[i] when it still exists, never taking one below 0 and keeping its
-- expiry. A key that expired counted a window that is over; it is not created again.
-- Returns the counts after the change, -1 for a key that was gone.
local reply = {}
for i = 1, #KEYS do
  local after = -1
  if redis.call('EXISTS', KEYS[i]) == 1 then
    after = redis.call('INCRBY', KEYS[i], ARGV[i])
    if after < 0 then
      redis.call('SET', KEYS[i], 0, 'KEEPTTL')
      after = 0
    end
  end
  reply[i] = after
end
return reply
