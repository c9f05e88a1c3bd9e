-- wrk script: sends the pre-built requests of $REQUESTS (bench/make_requests.py) in order, each
-- once per run, round robin over the connections of this thread. Counts non-2xx answers.
local requests = {}
local next_index = 1
local failures = 0

function init(args)
  local f = assert(io.open(os.getenv("REQUESTS"), "rb"))
  local data = f:read("*a")
  f:close()
  local at = 1
  while at <= #data do
    local newline = string.find(data, "\n", at, true)
    local length = tonumber(string.sub(data, at, newline - 1))
    requests[#requests + 1] = string.sub(data, newline + 1, newline + length)
    at = newline + 1 + length
  end
end

function request()
  local r = requests[next_index]
  next_index = next_index + 1
  if next_index > #requests then next_index = 1 end
  return r
end

-- With $DELAY_MS, each connection waits that long before each request: a paced run
-- (connections * 1000 / DELAY_MS requests a second).
local pause = tonumber(os.getenv("DELAY_MS") or "")
if pause then
  function delay()
    return pause
  end
end

function response(status, headers, body)
  if status < 200 or status > 299 then failures = failures + 1 end
end

function done(summary, latency, requests_)
  io.write(string.format("RESULT requests=%d errors=%d non2xx=%d p50_ms=%.3f p99_ms=%.3f\n",
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout, summary.errors.status, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000))
end
