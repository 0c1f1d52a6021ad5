-- wrk script for `scripts/bench http`: picks a random line of a file per request
-- and substitutes it into a path template, and counts every answer that is not
-- 2xx so that the script can refuse a run that measured errors.
--
--   wrk -s scripts/bench-http.lua URL -- TEMPLATE [LINES_FILE] [HEADER]
--   TEMPLATE: a path where `{}` is replaced by the random line, e.g.
--             /v1/accounts/{}/token, or a fixed path such as /healthz.
--   HEADER:   `Name: value` (e.g. `Cookie: igb_session=…`), or a bare value that is
--             sent as the Authorization header (e.g. `Bearer igb_…`).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  template = args[1] or "/"
  lines = {}
  if args[2] and args[2] ~= "" then
    for l in io.lines(args[2]) do
      if l ~= "" then lines[#lines + 1] = l end
    end
  end
  headers = {}
  if args[3] and args[3] ~= "" then
    local name, value = args[3]:match("^([%w-]+):%s*(.*)$")
    if name then
      headers[name] = value
    else
      headers["Authorization"] = args[3]
    end
  end
  bad = 0
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
end

function request()
  local path = template
  if #lines > 0 then
    path = template:gsub("{}", lines[math.random(#lines)], 1)
  end
  return wrk.format("GET", path, headers)
end

function response(status, hdrs, body)
  if status < 200 or status > 299 then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local non2xx = 0
  for _, t in ipairs(threads) do
    non2xx = non2xx + t:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d rps=%.1f p50_ms=%.3f p99_ms=%.3f non2xx=%d socket_errors=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, non2xx,
    e.connect + e.read + e.write + e.timeout))
end
