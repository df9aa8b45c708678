-- wrk script for scripts/load.sh: POSTs the JSON body in the file named by
-- $WRK_BODY to the URL given to wrk, and prints one JSON line at the end
-- with the request count, errors and latency percentiles (microseconds).
-- $WRK_AUTH, if set, is sent as the Authorization header.
--
-- Errors are wrk's socket errors (connect, read, write, timeout) plus
-- responses with a status outside 2xx/3xx (wrk counts those as "status").

local path = os.getenv("WRK_BODY")
if path == nil then
  error("set WRK_BODY to the request body file")
end
local file = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("WRK_AUTH")
if auth ~= nil and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,'
      .. '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
