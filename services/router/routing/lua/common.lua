-- Prepended to every breaker script (see services/router/routing/breaker.py).
-- The state machine of services/router/routing/breaker_machine.py over one Redis hash
-- per deployment; keep the two identical (tests replay one table against both).
--
-- ARGV[1] = now (unix seconds, the caller's clock: scripts never read TIME),
-- ARGV[2..7] = consecutive_failures, failure_rate, min_requests, window_seconds,
-- open_seconds, probe_timeout; ARGV[8] = expiry of a written hash in milliseconds.
-- Each script's own arguments follow from ARGV[9].
--
-- Hash fields: s state (1 closed, 2 open, 3 half-open), r reopen_at, c consecutive
-- failures, w window index, t / f calls / failures in that window, l time of the last
-- failure, v version. Every write raises v to at least max(v + 1, now in microseconds),
-- so versions only grow, even across a hash that expired and was created again; a
-- replica applies a reply only if it is not older than what it holds.

local NOW = tonumber(ARGV[1])
local CFG = {
  consecutive = tonumber(ARGV[2]),
  rate = tonumber(ARGV[3]),
  min_requests = tonumber(ARGV[4]),
  window = tonumber(ARGV[5]),
  open = tonumber(ARGV[6]),
  probe = tonumber(ARGV[7]),
  ttl_ms = tonumber(ARGV[8]),
}
local FIRST_ARG = 9

local CLOSED, OPEN, HALF_OPEN = 1, 2, 3
local SUCCESS, FAILURE = 1, 2

-- Exact decimal text: tostring() prints %.14g and would lose digits of a timestamp.
local function num(x)
  return string.format('%.17g', x)
end

local function load(key)
  local h = redis.call('HMGET', key, 's', 'r', 'c', 'w', 't', 'f', 'l', 'v')
  if not h[1] then
    return {s = CLOSED, r = 0, c = 0, w = 0, t = 0, f = 0, l = 0, v = 0}
  end
  return {
    s = tonumber(h[1]), r = tonumber(h[2]), c = tonumber(h[3]), w = tonumber(h[4]),
    t = tonumber(h[5]), f = tonumber(h[6]), l = tonumber(h[7]), v = tonumber(h[8]),
  }
end

-- The reply for one hash: 8 strings in field order (numbers in a Lua reply would be
-- truncated to integers).
local function encode(st)
  return {num(st.s), num(st.r), num(st.c), num(st.w), num(st.t), num(st.f), num(st.l), num(st.v)}
end

local function same(a, b)
  return a.s == b.s and a.r == b.r and a.c == b.c and a.w == b.w and a.t == b.t
    and a.f == b.f and a.l == b.l
end

local function copy(st)
  return {s = st.s, r = st.r, c = st.c, w = st.w, t = st.t, f = st.f, l = st.l, v = st.v}
end

-- Writes the hash if `st` differs from `before` (every write is a use: it pushes the
-- expiry out).
local function save(key, before, st)
  if same(before, st) then
    return
  end
  st.v = math.max(st.v + 1, math.floor(NOW * 1000000))
  redis.call('HSET', key, 's', num(st.s), 'r', num(st.r), 'c', num(st.c), 'w', num(st.w),
    't', num(st.t), 'f', num(st.f), 'l', num(st.l), 'v', num(st.v))
  redis.call('PEXPIRE', key, CFG.ttl_ms)
end

local function window_index()
  return math.floor(NOW / CFG.window)
end

local function roll(st)
  local index = window_index()
  if index > st.w then
    st.w = index
    st.t = 0
    st.f = 0
  end
end

local function open(st)
  st.s = OPEN
  st.r = NOW + CFG.open
end

local function close(st)
  st.s = CLOSED
  st.r = 0
  st.c = 0
  st.w = window_index()
  st.t = 0
  st.f = 0
end

-- BreakerMachine.admit: returns allowed, probe (1 or 0).
local function admit(st)
  if st.s == CLOSED then
    return 1, 0
  end
  if NOW < st.r then
    return 0, 0
  end
  st.s = HALF_OPEN
  st.r = NOW + CFG.probe
  return 1, 1
end

-- BreakerMachine.record.
local function record(st, outcome, probe)
  if probe and st.s == HALF_OPEN then
    if outcome == SUCCESS then
      close(st)
    elseif outcome == FAILURE then
      st.c = st.c + 1
      st.l = NOW
      open(st)
    else
      st.r = math.min(st.r, NOW)
    end
    return
  end
  if st.s ~= CLOSED or (outcome ~= SUCCESS and outcome ~= FAILURE) then
    return
  end
  roll(st)
  st.t = st.t + 1
  if outcome == SUCCESS then
    st.c = 0
    return
  end
  st.f = st.f + 1
  st.c = st.c + 1
  st.l = NOW
  if st.c >= CFG.consecutive or (st.t >= CFG.min_requests and st.f / st.t >= CFG.rate) then
    open(st)
  end
end

-- BreakerMachine.add_successes.
local function add_successes(st, count, window, last_at)
  if count <= 0 or st.s ~= CLOSED then
    return
  end
  roll(st)
  if window == st.w then
    st.t = st.t + count
  end
  if last_at > st.l then
    st.c = 0
  end
end

-- The state entered, or 0 when the state did not change.
local function transition(before, st)
  if before.s == st.s then
    return 0
  end
  return st.s
end
