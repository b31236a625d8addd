-- Shared by the wrk scripts: count failures (a status other than 200, or a body with
-- "errors") in every thread, and print one machine-readable line at the end.
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  failures = 0
  ok = 0
end

function count(status, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    failures = failures + 1
    return false
  end
  ok = ok + 1
  return true
end

function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do
    failed = failed + (thread:get("failures") or 0)
  end
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d ok_rps=%.1f p50_us=%d p99_us=%d failures=%d errors=%d\n",
    summary.requests, (summary.requests - failed) / seconds,
    latency:percentile(50), latency:percentile(99), failed,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
