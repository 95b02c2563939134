-- One round trip from a key id to everything a check needs.
-- KEYS[1] the key's record hash, KEYS[2] consumers hash, KEYS[3] memberships hash,
-- KEYS[4] groups hash.
-- Reply: false when the key record does not exist; {} when its consumer does not;
-- else {salt, digest, ApiKey bytes, Consumer bytes, Group bytes...} with the groups that
-- exist, in the consumer's order.
local record = redis.call('HMGET', KEYS[1], 'consumer', 'salt', 'digest', 'key')
if not record[1] then
  return false
end
local consumer = redis.call('HGET', KEYS[2], record[1])
if not consumer then
  return {}
end
local reply = {record[2], record[3], record[4], consumer}
local ids = redis.call('HGET', KEYS[3], record[1])
if ids then
  local names = {}
  for id in string.gmatch(ids, '%S+') do
    names[#names + 1] = id
  end
  if #names > 0 then
    for _, group in ipairs(redis.call('HMGET', KEYS[4], unpack(names))) do
      if group then
        reply[#reply + 1] = group
      end
    end
  end
end
return reply
