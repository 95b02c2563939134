-- AppendMessages: all or nothing, contiguous, in the given order.
-- ARGV[4] = max_messages; ARGV[5..] = one serialized SessionMessage per message with only
-- `message` set. The script adds `index` and `create_time` to each: protobuf parsing merges
-- concatenated encodings, so `payload .. fields` is a complete SessionMessage.
-- Returns {'NOT_FOUND'}, {'FULL', count} (nothing appended) or
-- {'OK', first_index, count, expire_us}.
local meta, messages, expiry, id = KEYS[1], KEYS[2], KEYS[3], ARGV[2]
local FIRST_PAYLOAD = 5
-- RPUSH at most this many elements per call (Lua's unpack has a stack limit).
local CHUNK = 1000

local function varint(n)
  local bytes = {}
  while n >= 128 do
    bytes[#bytes + 1] = string.char(n % 128 + 128)
    n = math.floor(n / 128)
  end
  bytes[#bytes + 1] = string.char(n)
  return table.concat(bytes)
end

-- SessionMessage.create_time (field 3, length-delimited) = Timestamp{seconds (1), nanos (2)}.
local function create_time_field(now)
  local timestamp = '\8' .. varint(math.floor(now / 1000000)) .. '\16' .. varint((now % 1000000) * 1000)
  return '\26' .. varint(#timestamp) .. timestamp
end

if not visible_owner(meta, ARGV[3]) then
  return {'NOT_FOUND'}
end
local count = tonumber(redis.call('HGET', meta, 'count'))
local n = #ARGV - FIRST_PAYLOAD + 1
if count + n > tonumber(ARGV[4]) then
  return {'FULL', count}
end
local now = now_us()
local created = create_time_field(now)
local batch = {}
for i = 0, n - 1 do
  -- SessionMessage.index: field 1, varint.
  batch[#batch + 1] = ARGV[FIRST_PAYLOAD + i] .. '\8' .. varint(count + i) .. created
  if #batch == CHUNK then
    redis.call('RPUSH', messages, unpack(batch))
    batch = {}
  end
end
if #batch > 0 then
  redis.call('RPUSH', messages, unpack(batch))
end
redis.call('HSET', meta, 'count', int(count + n), 'update_us', int(now))
redis.call('HINCRBY', meta, 'rev', 1)
local expire = touch(meta, messages, expiry, id, now)
return {'OK', count, count + n, expire}
