-- A worker keeps its claim: resets the queue entry's idle time so no other worker takes
-- it over. KEYS[2] queue. ARGV[1] fence, ARGV[2] entry id, ARGV[3] consumer, ARGV[4] group.
-- The fence is checked first: a worker that lost the job never claims its entry back.
-- Returns FENCED, or the record's `cancel` flag ('1' when a cancel was asked for).
local rec, queue = KEYS[1], KEYS[2]
if refusal(rec, ARGV[1], '') then
  return 'FENCED'
end
redis.call('XCLAIM', queue, ARGV[4], ARGV[3], 0, ARGV[2], 'JUSTID')
return redis.call('HGET', rec, 'cancel') or ''
