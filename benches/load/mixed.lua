-- wrk script of the mixed workload (benches/load/run, WORKLOAD=mixed…): sends the lines of
-- $MIX_FILE in order ("status<TAB>path<TAB>header<TAB>value", made by mix.py), wrapping at the
-- end, starting where the previous run against the same target stopped ($MIX_CURSOR, a file
-- holding the number of lines sent so far), so a token is not presented twice until the list
-- wraps.
-- Counts the requests it sends by the status each must get ($MIX_PLAIN=1: a target that
-- checks nothing, every one 200) and the answers by status, and prints one line:
--   mix: sent 200=… 403=… answered 200=… 403=… wrapped=<requests sent past the list's end>
-- run checks it. One wrk thread (-t1): the cursor and the counts are the thread's.

-- Globals: done() reads them from the thread with thread:get.
reqs, want, sent, answered = {}, {}, {}, {}
i, n, wrapped = 0, 0, 0

function init(args)
  local plain = os.getenv("MIX_PLAIN") == "1"
  for line in io.lines(os.getenv("MIX_FILE")) do
    local status, path, name, value = line:match("^(%d+)\t([^\t]+)\t([^\t]+)\t([^\t]+)$")
    n = n + 1
    reqs[n] = wrk.format("GET", path, { [name] = value })
    want[n] = plain and 200 or tonumber(status)
  end
  local f = io.open(os.getenv("MIX_CURSOR") or "", "r")
  if f then
    i = tonumber(f:read("*l")) or 0
    f:close()
  end
end

function request()
  if i >= n then
    wrapped = wrapped + 1
  end
  local k = i % n + 1
  i = i + 1
  sent[want[k]] = (sent[want[k]] or 0) + 1
  return reqs[k]
end

function response(status, headers, body)
  answered[status] = (answered[status] or 0) + 1
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

local function counts(t)
  local keys, out = {}, {}
  for k in pairs(t) do table.insert(keys, k) end
  table.sort(keys)
  for _, k in ipairs(keys) do table.insert(out, k .. "=" .. t[k]) end
  return table.concat(out, " ")
end

function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    local cursor = os.getenv("MIX_CURSOR")
    if cursor then
      local f = io.open(cursor, "w")
      f:write(t:get("i"), "\n")
      f:close()
    end
    print(string.format("mix: sent %s answered %s wrapped=%d",
      counts(t:get("sent")), counts(t:get("answered")), t:get("wrapped")))
  end
end
