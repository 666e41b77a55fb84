-- wrk-replay.lua - replays pre-signed raw requests, each exactly once.
--
--   wrk -t T -c C -d D -s bench/wrk-replay.lua URL -- PREFIX [cycle]
--
-- Thread k (0-based, numbered in setup()) loads PREFIX.k, a file of raw
-- HTTP requests each followed by one NUL byte (bench/signreqs.mjs gen
-- --slices T), so threads never share a request. request() hands out the
-- next unused one. When a thread runs out it sends "GET /healthz" instead
-- (never a reused signed request: ewpd would refuse the replayed
-- X-Request-Id) and counts it as overflow; done() prints one line:
--   REPLAY used=U available=A overflow=O
-- where used counts requests handed to wrk (sent or about to be sent).
-- With "cycle" (for servers that do not check signatures, e.g. the nginx
-- baseline) a thread starts again at its first request instead: wrk does
-- the same work per request as in a replay, from a small file.

local counter = 0
local threads = {}

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local prefix = args[1]
  cycle = args[2] == "cycle"
  local f = io.open(prefix .. "." .. tid, "rb")
  reqs = {}
  if f then
    local data = f:read("*a")
    f:close()
    local i = 1
    while true do
      local j = string.find(data, "\0", i, true)
      if not j then break end
      reqs[#reqs + 1] = string.sub(data, i, j - 1)
      i = j + 1
    end
  else
    io.stderr:write("wrk-replay: cannot open " .. prefix .. "." .. tid .. "\n")
  end
  available = #reqs
  used = 0
  overflow = 0
  fallback = wrk.format("GET", "/healthz")
end

function request()
  if used < available then
    used = used + 1
    return reqs[used]
  end
  if cycle and available > 0 then
    used = 1
    wrapped = (wrapped or 0) + 1
    return reqs[1]
  end
  overflow = overflow + 1
  return fallback
end

function done(summary, latency, requests)
  local u, a, o = 0, 0, 0
  for _, t in ipairs(threads) do
    local avail = t:get("available") or 0
    u = u + (t:get("used") or 0) + (t:get("wrapped") or 0) * avail
    a = a + avail
    o = o + (t:get("overflow") or 0)
  end
  io.write(string.format("REPLAY used=%d available=%d overflow=%d\n", u, a, o))
end
