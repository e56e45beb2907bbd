-- The memory flood of issue 11 (driven by `scripts/flood`): every request is distinct —
-- random bearer tokens, random API keys, random Delivery routes, and random document keys
-- asked with a valid editor token (so node lookups reach the store).
local chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
local hexd = "0123456789abcdef"
local token = os.getenv("FLOOD_TOKEN") or ""
local n = 0

local function pick(set, len)
  local t = {}
  for i = 1, len do
    local k = math.random(1, #set)
    t[i] = set:sub(k, k)
  end
  return table.concat(t)
end

local function guid()
  return pick(hexd, 8) .. "-" .. pick(hexd, 4) .. "-4" .. pick(hexd, 3) .. "-a" ..
    pick(hexd, 3) .. "-" .. pick(hexd, 12)
end

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
end

function request()
  n = n + 1
  local kind = n % 4
  if kind == 0 then
    local jwt = "eyJ" .. pick(chars, 40) .. "." .. pick(chars, 120) .. "." .. pick(chars, 43)
    return wrk.format("GET", "/umbraco/management/api/v1/document/" .. guid(),
      { ["Authorization"] = "Bearer " .. jwt })
  elseif kind == 1 then
    local key = "pcl_dev_" .. pick(chars, 16) .. "_" .. pick(chars, 44)
    return wrk.format("GET", "/umbraco/delivery/api/v2/content/item/" .. guid(),
      { ["Api-Key"] = key })
  elseif kind == 2 then
    return wrk.format("GET", "/umbraco/delivery/api/v2/content/item/" .. pick(chars, 12) ..
      "/" .. pick(chars, 12))
  else
    return wrk.format("GET", "/umbraco/management/api/v1/document/" .. guid(),
      { ["Authorization"] = "Bearer " .. token })
  end
end
