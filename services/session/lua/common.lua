-- Prepended to every session script (see services/session/scripts.py).
-- Conventions: ARGV[1] is the key prefix `llmgw:session:`. Per-session scripts take
-- KEYS[1] = metadata hash, KEYS[2] = message list, KEYS[3] = expiry index and
-- ARGV[2] = the session id. Layout: services/session/keys.py.
-- Scripts that use an existing session (read, update, clear, delete, append) also take
-- ARGV[3] = whose session the caller may use: '*' for any owner's, or '=' followed by
-- the owner the session must have. Another owner's session answers exactly as a missing
-- one does, so a caller never learns that it exists.

local PREFIX = ARGV[1]

local function meta_key(id)
  return PREFIX .. '{' .. id .. '}:meta'
end

local function owner_index_key(owner)
  return PREFIX .. 'index:owner:' .. owner
end

-- The session's owner when the caller may use it (`scope` is ARGV[3]); nil when the
-- session is missing or belongs to someone else.
local function visible_owner(meta, scope)
  local owner = redis.call('HGET', meta, 'owner')
  if owner and (scope == '*' or scope == '=' .. owner) then
    return owner
  end
  return nil
end

local function expiry_member(id, owner)
  return id .. ':' .. owner
end

-- Integers as exact decimal strings: tostring() would print %.14g and drop digits of
-- microsecond timestamps.
local function int(n)
  return string.format('%.0f', n)
end

-- The session's etag, `<create_us>.<rev>` (codec.py builds the same string).
local function etag(meta)
  local fields = redis.call('HMGET', meta, 'create_us', 'rev')
  return fields[1] .. '.' .. (fields[2] or '0')
end

-- Server time in microseconds: one clock for every replica of the service.
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- Pushes the expiry of both keys of the session out by its TTL and records it in the
-- metadata and the expiry index. Returns the new expire time (microseconds).
local function touch(meta, messages, expiry, id, now)
  local fields = redis.call('HMGET', meta, 'ttl_ms', 'owner')
  local ttl_ms = tonumber(fields[1])
  local expire = now + ttl_ms * 1000
  redis.call('HSET', meta, 'expire_us', int(expire))
  redis.call('PEXPIRE', meta, ttl_ms)
  redis.call('PEXPIRE', messages, ttl_ms)
  redis.call('ZADD', expiry, int(expire), expiry_member(id, fields[2]))
  return expire
end
