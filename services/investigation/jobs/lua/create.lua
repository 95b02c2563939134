-- Create: a QUEUED record, its first event (state QUEUED), the job on the queue and the
-- listing index entries. KEYS[2] events, KEYS[3] queue, KEYS[4] overall index,
-- KEYS[5] the owner's index, KEYS[6] (optional) the fingerprint key.
-- ARGV[1] id, ARGV[2] pb, ARGV[3] owner, ARGV[4] key_name, ARGV[5] create time (ms),
-- ARGV[6] the first event, ARGV[7] the fingerprint key's value the caller saw ('' for
-- none): with KEYS[6], CONFLICT unless it is still that, then it names this id.
-- ARGV[8] traceparent, ARGV[9] tracestate of the creating request ('' for none).
-- Returns OK, EXISTS or CONFLICT.
local rec, events, queue, all_index, owner_index, fp = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local id, owner, create_ms = ARGV[1], ARGV[3], ARGV[5]
if redis.call('EXISTS', rec) == 1 then
  return 'EXISTS'
end
if fp and (redis.call('GET', fp) or '') ~= ARGV[7] then
  return 'CONFLICT'
end
-- Events left by an expired investigation of the same id are logically gone already.
redis.call('DEL', events)
redis.call('HSET', rec, 'pb', ARGV[2], 'owner', owner, 'key_name', ARGV[4], 'fence', '0',
  'cancel', '', 'seq', '0', 'rev', '1', 'state', '1', 'traceparent', ARGV[8],
  'tracestate', ARGV[9])
append_event(rec, events, ARGV[6])
redis.call('XADD', queue, '*', 'id', id)
redis.call('ZADD', all_index, create_ms, id)
redis.call('ZADD', owner_index, create_ms, id)
if fp then
  redis.call('SET', fp, id)
end
return 'OK'
