-- DeleteSession: both keys and every index member. KEYS[4] = overall index.
-- Returns {'NOT_FOUND'} or {'OK'}.
local meta, messages, expiry, id = KEYS[1], KEYS[2], KEYS[3], ARGV[2]
local owner = visible_owner(meta, ARGV[3])
if not owner then
  return {'NOT_FOUND'}
end
redis.call('DEL', meta, messages)
redis.call('ZREM', KEYS[4], id)
if owner ~= '' then
  redis.call('ZREM', owner_index_key(owner), id)
end
redis.call('ZREM', expiry, expiry_member(id, owner))
return {'OK'}
