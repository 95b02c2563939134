-- ListSessions, newest first. KEYS[1] = the index to read (overall or one owner's).
-- ARGV[2] = owner of that index ('' for the overall index), ARGV[3] = exclusive upper
-- bound ('+inf' or '(<create_us>'), ARGV[4] = how many live sessions to return,
-- ARGV[5] = how many members to examine at most, ARGV[6] = how many bytes of metadata
-- to return at most (the first session is returned whatever its size).
-- Members whose session is gone (expired) or belongs to another owner are skipped and
-- removed from KEYS[1]. Returns {bound, {id, metadata as HGETALL}...}: bound is the
-- cursor to continue from when the scan or byte budget ran out first, else ''.
local index, owner = KEYS[1], ARGV[2]
local bound, want, budget = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local max_bytes = tonumber(ARGV[6])
local found, stale = {}, {}
local scanned, bytes = 0, 0
while #found < want and scanned < budget and bytes < max_bytes do
  local size = math.min(want - #found, budget - scanned)
  local batch = redis.call('ZREVRANGEBYSCORE', index, bound, '-inf', 'WITHSCORES', 'LIMIT', 0, size)
  if #batch == 0 then
    break
  end
  for i = 1, #batch, 2 do
    local id = batch[i]
    scanned = scanned + 1
    bound = '(' .. batch[i + 1]
    local meta = redis.call('HGETALL', meta_key(id))
    local live = #meta > 0
    if live and owner ~= '' then
      live = redis.call('HGET', meta_key(id), 'owner') == owner
    end
    if live then
      found[#found + 1] = {id, meta}
      for j = 1, #meta do
        bytes = bytes + #meta[j]
      end
      if bytes >= max_bytes then
        break
      end
    else
      stale[#stale + 1] = id
    end
  end
end
if #stale > 0 then
  redis.call('ZREM', index, unpack(stale))
end
local reply = {''}
if #found < want and (scanned >= budget or bytes >= max_bytes) then
  reply[1] = bound
end
for i = 1, #found do
  reply[i + 1] = found[i]
end
return reply
