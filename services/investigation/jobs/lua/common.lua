-- Prepended to every investigation job script (services/investigation/jobs/scripts.py).
-- Layout: services/investigation/jobs/keys.py. The record hash `inv:{<id>}:rec` is
-- KEYS[1] of every script; its `rev` is bumped whenever `pb` changes and is the
-- compare-and-set guard of every rewrite of `pb` (Python builds the new proto from the
-- revision it read; a script refuses with CONFLICT when another write came between).
-- `state` mirrors the InvestigationState of `pb`, so a script can tell a final one.
-- Replies are status strings: OK, GONE (no record), FENCED (the caller's fence is not
-- the record's, or the investigation is final), CONFLICT (`rev` moved on).

local FINAL = {['3'] = true, ['4'] = true, ['5'] = true}

-- A protobuf base-128 varint of a non-negative integer.
local function varint(n)
  local out = {}
  while n >= 128 do
    out[#out + 1] = string.char(n % 128 + 128)
    n = math.floor(n / 128)
  end
  out[#out + 1] = string.char(n)
  return table.concat(out)
end

-- Appends an encoded InvestigationEvent as the next entry `<seq>-1` of `events`.
-- The sequence is allocated here, so concurrent writers never take the same one, and
-- written into the event by appending field 2 (`sequence`, varint, tag byte 16): a
-- parser takes the last occurrence of a scalar field, so the stored bytes decode to the
-- event with its sequence set.
local function append_event(rec, events, event)
  local seq = redis.call('HINCRBY', rec, 'seq', 1)
  redis.call('XADD', events, string.format('%d-1', seq), 'e', event .. '\16' .. varint(seq))
  return seq
end

-- nil when the caller may write the record: it exists, `fence` ('' for any) is the
-- record's and the investigation is not final (a fenced writer never writes a finished
-- one), and `rev` ('' for any) is still the record's revision; else the refusal.
local function refusal(rec, fence, rev)
  local fields = redis.call('HMGET', rec, 'fence', 'rev', 'state')
  if not fields[2] then
    return 'GONE'
  end
  if fence ~= '' and (fields[1] ~= fence or FINAL[fields[3]]) then
    return 'FENCED'
  end
  if rev ~= '' and fields[2] ~= rev then
    return 'CONFLICT'
  end
  return nil
end

-- Stores a new `pb` of state `state` and bumps the revision.
local function save(rec, pb, state)
  redis.call('HSET', rec, 'pb', pb, 'state', state)
  redis.call('HINCRBY', rec, 'rev', 1)
end
