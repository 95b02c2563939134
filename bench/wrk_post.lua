-- wrk script: POST the JSON body in the WRK_BODY_FILE file to the given URL.
local file = assert(io.open(os.getenv("WRK_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("WRK_API_KEY") or "bench")

-- Count non-2xx answers as errors in the summary line wrk prints.
response = function(status, headers, body)
  if status >= 300 then
    wrk.thread:set("bad", (wrk.thread:get("bad") or 0) + 1)
  end
end

done = function(summary, latency, requests)
  io.write(string.format("BENCH requests=%d errors=%d non2xx=%d p50_us=%d p90_us=%d p99_us=%d rps=%.1f\n",
    summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    summary.requests / (summary.duration / 1e6)))
end
