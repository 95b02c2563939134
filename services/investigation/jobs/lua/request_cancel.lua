-- Cancel of a RUNNING investigation: flags it for its worker (heartbeat reports it).
-- Returns OK, GONE, or CONFLICT when it is no longer RUNNING (the caller reads again).
local rec = KEYS[1]
local state = redis.call('HGET', rec, 'state')
if not state then
  return 'GONE'
end
if state ~= '2' then
  return 'CONFLICT'
end
redis.call('HSET', rec, 'cancel', '1')
return 'OK'
