-- wrk script: POST the JSON body in the WRK_BODY_FILE file to the given URL.
local file = assert(io.open(os.getenv("WRK_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("WRK_API_KEY") or "bench")

-- Each thread counts in its own globals; done() sums them through the threads kept here.
local threads = {}

setup = function(thread)
  table.insert(threads, thread)
end

init = function(args)
  non2xx = 0
  fallback = 0
end

-- Non-2xx answers (wrk's own status count only sees >= 400), and answers the gateway
-- served from another deployment of the requested model (`x-llmgw-route: fallback`).
response = function(status, headers, body)
  if status < 200 or status >= 300 then
    non2xx = non2xx + 1
  end
  if headers["x-llmgw-route"] == "fallback" then
    fallback = fallback + 1
  end
end

done = function(summary, latency, requests)
  local bad, fell_back = 0, 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non2xx")
    fell_back = fell_back + thread:get("fallback")
  end
  io.write(string.format(
    "BENCH requests=%d errors=%d non2xx=%d fallback=%d p50_us=%d p90_us=%d p99_us=%d rps=%.1f\n",
    summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    bad, fell_back,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    summary.requests / (summary.duration / 1e6)))
end
