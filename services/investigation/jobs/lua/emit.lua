-- A worker appends an event. KEYS[2] events. ARGV[1] fence, ARGV[2] the event.
-- Returns the event's sequence, or FENCED / GONE.
local rec, events = KEYS[1], KEYS[2]
local no = refusal(rec, ARGV[1], '')
if no then
  return no
end
return append_event(rec, events, ARGV[2])
