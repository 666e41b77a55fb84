-- wrk-replay.lua - replays pre-signed raw requests, each exactly once.
--
--   wrk -t T -c C -d D -s bench/wrk-replay.lua URL -- PREFIX [OPTION...]
--
-- Thread k (0-based, numbered in setup()) loads PREFIX.k, a file of raw
-- HTTP requests each followed by one NUL byte (bench/signreqs.mjs gen
-- --slices T), so threads never share a request. request() hands out the
-- next unused one. When a thread runs out it sends "GET /healthz" instead
-- (never a reused signed request: ewpd would refuse the replayed
-- X-Request-Id) and counts it as overflow.
--
-- Options:
--   cycle          for servers that do not check signatures (the nginx
--                  baseline): a thread starts again at its first request
--                  instead, so wrk does the same work per request as in a
--                  replay, from a small file
--   expect=S:N     every 50th response (and the first) must contain the
--                  string S exactly N times (e.g. expect=<hei>:10); the
--                  responses checked and those that failed are counted
--
-- Every response's status is counted. done() prints two lines:
--   REPLAY used=U available=A overflow=O
--   STATUS 200=n [404=m ...] checked=C badbody=B
-- where used counts requests handed to wrk (sent or about to be sent);
-- bench/run.sh fails a run whose statuses are not all the expected one.

local counter = 0
local threads = {}

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local function count_plain(s, pat)
  local n, i = 0, 1
  while true do
    local j = string.find(s, pat, i, true)
    if not j then return n end
    n = n + 1
    i = j + #pat
  end
end

function init(args)
  local prefix = args[1]
  cycle = false
  local expect_str, expect_n
  for k = 2, #args do
    if args[k] == "cycle" then
      cycle = true
    else
      local s, n = string.match(args[k], "^expect=(.+):(%d+)$")
      if s then
        expect_str, expect_n = s, tonumber(n)
      else
        io.stderr:write("wrk-replay: unknown option " .. args[k] .. "\n")
      end
    end
  end
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
  statuses = {}
  checked = 0
  badbody = 0
  local seen = 0
  -- defined here so that wrk (which asks after init) hands bodies over
  response = function(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
    if expect_str then
      seen = seen + 1
      if seen % 50 == 1 then
        checked = checked + 1
        if count_plain(body or "", expect_str) ~= expect_n then badbody = badbody + 1 end
      end
    end
  end
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
  local u, a, o, c, b = 0, 0, 0, 0, 0
  local st = {}
  for _, t in ipairs(threads) do
    local avail = t:get("available") or 0
    u = u + (t:get("used") or 0) + (t:get("wrapped") or 0) * avail
    a = a + avail
    o = o + (t:get("overflow") or 0)
    c = c + (t:get("checked") or 0)
    b = b + (t:get("badbody") or 0)
    for s, n in pairs(t:get("statuses") or {}) do st[s] = (st[s] or 0) + n end
  end
  io.write(string.format("REPLAY used=%d available=%d overflow=%d\n", u, a, o))
  local keys = {}
  for s in pairs(st) do keys[#keys + 1] = s end
  table.sort(keys)
  local parts = {}
  for _, s in ipairs(keys) do parts[#parts + 1] = string.format("%d=%d", s, st[s]) end
  io.write(string.format("STATUS %s checked=%d badbody=%d\n", table.concat(parts, " "), c, b))
end
