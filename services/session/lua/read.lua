-- GetSession and ListMessages: read and refresh the expiry in one step.
-- ARGV[4] = '1' to read messages, ARGV[5]/ARGV[6] = LRANGE start/stop, ARGV[7] = the most
-- bytes of messages to return (their serialized sizes), ARGV[8] = which end of the range
-- the byte budget keeps: 'newest' (GetSession: the most recent that fit) or 'oldest'
-- (ListMessages: a page from its first index; at least one message, so paging advances).
-- Returns {'NOT_FOUND'} or {'OK', metadata as HGETALL, messages oldest first}.
local meta, messages, expiry, id = KEYS[1], KEYS[2], KEYS[3], ARGV[2]
-- Messages fetched per LRANGE while a byte budget is being filled.
local CHUNK = 64

if not visible_owner(meta, ARGV[3]) then
  return {'NOT_FOUND'}
end
touch(meta, messages, expiry, id, now_us())
local history = {}
if ARGV[4] ~= '1' then
  return {'OK', redis.call('HGETALL', meta), history}
end
local length = redis.call('LLEN', messages)
local first, last = tonumber(ARGV[5]), tonumber(ARGV[6])
if first < 0 then first = math.max(length + first, 0) end
if last < 0 then last = length + last end
last = math.min(last, length - 1)
local budget, newest = tonumber(ARGV[7]), ARGV[8] == 'newest'
local used = 0
if newest then
  local picked = {}
  local stop = last
  while stop >= first do
    local start = math.max(first, stop - CHUNK + 1)
    local chunk = redis.call('LRANGE', messages, start, stop)
    for i = #chunk, 1, -1 do
      used = used + #chunk[i]
      if used > budget then
        stop = -1
        break
      end
      picked[#picked + 1] = chunk[i]
    end
    if stop >= 0 then
      stop = start - 1
    end
  end
  for i = #picked, 1, -1 do
    history[#history + 1] = picked[i]
  end
else
  local start = first
  while start <= last do
    local stop = math.min(last, start + CHUNK - 1)
    local chunk = redis.call('LRANGE', messages, start, stop)
    for i = 1, #chunk do
      used = used + #chunk[i]
      if used > budget and #history > 0 then
        start = last + 1
        break
      end
      history[#history + 1] = chunk[i]
    end
    if start <= last then
      start = stop + 1
    end
  end
end
return {'OK', redis.call('HGETALL', meta), history}
