-- Removes index members of expired sessions. KEYS[1] = expiry index, KEYS[2] = overall
-- index; ARGV[2] = how many due members to examine at most.
-- Returns {removed, live}: expiry members removed, sessions alive now.
local expiry, all_index = KEYS[1], KEYS[2]
local now = int(now_us())
local due = redis.call('ZRANGEBYSCORE', expiry, '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local removed = 0
for _, member in ipairs(due) do
  local sep = string.find(member, ':', 1, true)
  local id, owner = string.sub(member, 1, sep - 1), string.sub(member, sep + 1)
  local current = redis.call('HGET', meta_key(id), 'owner')
  -- A live session of the same owner: its expiry lags the clock by at most a moment.
  if current ~= owner then
    if not current then
      redis.call('ZREM', all_index, id)
    end
    if owner ~= '' then
      redis.call('ZREM', owner_index_key(owner), id)
    end
    redis.call('ZREM', expiry, member)
    removed = removed + 1
  end
end
return {removed, redis.call('ZCOUNT', expiry, '(' .. now, '+inf')}
