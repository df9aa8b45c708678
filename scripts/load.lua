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

-- A body with "{{N}}" gets a new 10-digit number there in every request
-- (per thread: thread ids keep threads apart), so no two prompts are the
-- same text and no cache in front of the model can answer from memory.
-- A body with "{{PROMPT}}" gets there the next line of the file named by
-- $WRK_PROMPTS (load.sh --varied), each thread starting at its own line.
local template = wrk.body
local counter = 0
local threads_made = 0
base = 0 -- set per thread by setup (a global, so thread:set reaches it)
local prompts = {}
local prompts_path = os.getenv("WRK_PROMPTS")
if prompts_path ~= nil and prompts_path ~= "" then
  for line in io.lines(prompts_path) do
    prompts[#prompts + 1] = line
  end
end
if string.find(template, "{{N}}", 1, true) then
  setup = function(thread)
    threads_made = threads_made + 1
    thread:set("base", threads_made * 100000000)
  end
  request = function()
    counter = counter + 1
    local body = string.gsub(template, "{{N}}", string.format("%010d", base + counter), 1)
    if #prompts > 0 then
      local prompt = prompts[(base / 100000000 * 37 + counter) % #prompts + 1]
      -- a function replacement: the text is inserted as it is, never read
      -- as a gsub pattern
      body = string.gsub(body, "{{PROMPT}}", function() return prompt end, 1)
    end
    return wrk.format(nil, nil, nil, body)
  end
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
