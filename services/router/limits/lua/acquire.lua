-- One request against every limit that applies to it: all or nothing.
-- KEYS[i] = limit i's counter in its current window; ARGV[3i-2], ARGV[3i-1], ARGV[3i] =
-- limit i's size, what this request adds to it (1 request, or the token estimate) and
-- the key's expiry in milliseconds.
-- A limit has room when its count is below its size and count + amount fits in it: a
-- count at or past its size (settled usage may overshoot an estimate) admits nothing,
-- not even a request estimated at 0 tokens.
-- Returns {admitted, count_1, refused_1, ..., count_n, refused_n}: when admitted (1),
-- every counter was incremented and count_i is its new value; when refused (0), nothing
-- was written anywhere, count_i is the value found and refused_i (1) marks each limit
-- without room.
local admitted = 1
local reply = {0}
for i = 1, #KEYS do
  local found = count(KEYS[i])
  local size, amount = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1])
  local refused = 0
  if found >= size or found + amount > size then
    refused = 1
    admitted = 0
  end
  reply[2 * i] = found
  reply[2 * i + 1] = refused
end
reply[1] = admitted
if admitted == 1 then
  for i = 1, #KEYS do
    -- Even an amount of 0 creates the key, so that settling can add the actual usage.
    reply[2 * i] = redis.call('INCRBY', KEYS[i], ARGV[3 * i - 1])
    if redis.call('PTTL', KEYS[i]) < 0 then
      redis.call('PEXPIRE', KEYS[i], ARGV[3 * i])
    end
  end
end
return reply
