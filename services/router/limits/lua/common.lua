-- Prepended to every rate-limit script (see services/router/limits/limiter.py).
-- Each key is one limit's counter in one fixed window: a string holding an integer,
-- created by the first increment with an expiry of the window's end plus some slack.
-- Scripts never read TIME: the caller's clock chooses the window keys and expiries.

local function count(key)
  return tonumber(redis.call('GET', key) or '0')
end
