-- An investigation reaches a final state: the record, its `result` event (if any) then
-- its `state` event, the queue entry acked and deleted, retention expiry on the record
-- and its events, and the fingerprint's dedup window.
-- KEYS[2] events, KEYS[3] queue, KEYS[4] (optional) the fingerprint key.
-- ARGV[1] fence ('' for a caller's cancel of a queued one), ARGV[2] the revision read,
-- ARGV[3] pb, ARGV[4] the final state, ARGV[5] the result event (''), ARGV[6] the state
-- event, ARGV[7] the queue entry ('' when not held), ARGV[8] the group,
-- ARGV[9] retention (ms), ARGV[10] dedup window (ms), ARGV[11] the id.
-- Returns OK, GONE, FENCED or CONFLICT.
local rec, events, queue, fp = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local no = refusal(rec, ARGV[1], ARGV[2])
if no then
  return no
end
save(rec, ARGV[3], ARGV[4])
if ARGV[5] ~= '' then
  append_event(rec, events, ARGV[5])
end
append_event(rec, events, ARGV[6])
if ARGV[7] ~= '' then
  redis.call('XACK', queue, ARGV[8], ARGV[7])
  redis.call('XDEL', queue, ARGV[7])
end
redis.call('PEXPIRE', rec, ARGV[9])
redis.call('PEXPIRE', events, ARGV[9])
if fp and redis.call('GET', fp) == ARGV[11] then
  if tonumber(ARGV[10]) > 0 then
    redis.call('PEXPIRE', fp, ARGV[10])
  else
    redis.call('DEL', fp)
  end
end
return 'OK'
