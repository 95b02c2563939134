-- Corrects one reserved counter to the actual usage: adds `delta` (negative to give back)
-- when the key still exists, never taking it below 0 and keeping its expiry. A key that
-- expired counted a window that is over; it is not created again. Returns the count
-- after the change, -1 for a key that was gone. Borrowed by the usage recorder, which
-- settles a finished request's reservation in the same call that records its usage.
local function adjust(key, delta)
  if redis.call('EXISTS', key) == 0 then
    return -1
  end
  local after = redis.call('INCRBY', key, delta)
  if after < 0 then
    redis.call('SET', key, 0, 'KEEPTTL')
    after = 0
  end
  return after
end
