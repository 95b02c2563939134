-- Rewrites `pb` (same state): a worker's output fields, a folded duplicate alert, a
-- resolved time. ARGV[1] fence ('' for any), ARGV[2] the revision read, ARGV[3] pb.
-- With KEYS[2] (a fingerprint key), CONFLICT unless it still names ARGV[4].
-- Returns OK, GONE, FENCED or CONFLICT.
local rec, fp = KEYS[1], KEYS[2]
local no = refusal(rec, ARGV[1], ARGV[2])
if no then
  return no
end
if fp and redis.call('GET', fp) ~= ARGV[4] then
  return 'CONFLICT'
end
save(rec, ARGV[3], redis.call('HGET', rec, 'state'))
return 'OK'
