-- Corrects reserved amounts to the actual usage: adjust (adjust.lua) KEYS[i] by ARGV[i].
-- Returns the counts after the change, -1 for a key that was gone.
local reply = {}
for i = 1, #KEYS do
  reply[i] = adjust(KEYS[i], ARGV[i])
end
return reply
