-- A worker takes up a job it holds in the queue's pending list: new fence, +1 attempt,
-- RUNNING, one event. KEYS[2] events, KEYS[3] queue. ARGV[1] the revision read,
-- ARGV[2] pb, ARGV[3] the event, ARGV[4] the queue entry id, ARGV[5] the consumer,
-- ARGV[6] the group. LOST when the entry is no longer this consumer's (another worker
-- took it over between its read and this step).
-- Returns {OK, fence, sequence}, or GONE, CONFLICT, LOST.
local rec, events, queue = KEYS[1], KEYS[2], KEYS[3]
local no = refusal(rec, '', ARGV[1])
if no then
  return no
end
local pending = redis.call('XPENDING', queue, ARGV[6], ARGV[4], ARGV[4], 1)
if #pending == 0 or pending[1][2] ~= ARGV[5] then
  return 'LOST'
end
local fence = redis.call('HINCRBY', rec, 'fence', 1)
save(rec, ARGV[2], '2')
local seq = append_event(rec, events, ARGV[3])
return {'OK', fence, seq}
