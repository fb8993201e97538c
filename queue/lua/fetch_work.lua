-- fetch_work.lua: lock up to Max fetchable work items of the served buckets.
-- KEYS[1] prefix "{ns}:"   KEYS[2] fr:w:<request id>
-- KEYS[2+i] work:<bucket i>, i = 1..n (distinct)
-- ARGV[1] request id   ARGV[2] max items (>= 1)   ARGV[3] lock timeout ms
-- ARGV[3+i] bucket name i (same order as KEYS[2+i])
-- Returns {next_wake_ms, item...}; item = {work id, token, bucket, body,
--   instance id, attempts}. next_wake_ms as in fetch_orch.lua (timers excluded).
-- Idempotent per request id like fetch_orch.lua.
-- Cost: O(buckets * log N + Max * buckets), independent of buckets not served.
local req = ARGV[1]
local max = tonumber(ARGV[2])
local lock = tonumber(ARGV[3])
local nb = #KEYS - 2
local now = now_ms()

local function build_item(wid, tok)
  local f = redis.call('HMGET', k_wi(wid), 'bucket', 'body', 'inst', 'att')
  return {wid, tok, f[1], f[2], f[3], num(f[4])}
end

local function next_wake()
  local best = nil
  for i = 1, nb do
    local s = earliest(KEYS[2 + i])
    if s and (not best or s < best) then best = s end
  end
  return wake_after(best, now)
end

-- Replay of a request that already ran.
local rec = redis.call('GET', KEYS[2])
if rec then
  local out = {0}
  for i, wid in ipairs(decode_ids(rec)) do
    local tok = req .. ':' .. i
    if redis.call('HGET', k_wi(wid), 'tok') == tok then
      table.insert(out, build_item(wid, tok))
    end
  end
  out[1] = next_wake()
  return out
end

-- Candidates: the Max oldest fetchable items of each served bucket, merged.
local cands = {}
for i = 1, nb do
  local r = redis.call('ZRANGEBYSCORE', KEYS[2 + i], '-inf', now, 'WITHSCORES', 'LIMIT', 0, max)
  for j = 1, #r, 2 do
    table.insert(cands, {r[j], tonumber(r[j + 1]), i})
  end
end
table.sort(cands, function(a, b)
  if a[2] ~= b[2] then return a[2] < b[2] end
  if a[1] ~= b[1] then return a[1] < b[1] end
  return a[3] < b[3]
end)

local locked, items, seen = {}, {}, {}
for _, c in ipairs(cands) do
  if #locked >= max then break end
  local wid, zkey, bucket = c[1], KEYS[2 + c[3]], ARGV[3 + c[3]]
  if not seen[wid] then
    seen[wid] = true
    local f = redis.call('HMGET', k_wi(wid), 'bucket', 'tok', 'ldl', 'att')
    local tok, ldl = f[2] or '', num(f[3])
    if not f[1] or f[1] ~= bucket then
      redis.call('ZREM', zkey, wid)                     -- orphan or stale entry
    elseif tok ~= '' and ldl > now then
      redis.call('ZADD', zkey, ldl, wid)                -- live lock: fix its score
    else
      local n = #locked + 1
      local t = req .. ':' .. n
      local deadline = now + lock
      redis.call('HSET', k_wi(wid), 'tok', t, 'ldl', deadline, 'att', num(f[4]) + 1)
      redis.call('ZADD', zkey, deadline, wid)
      locked[n] = wid
      table.insert(items, build_item(wid, t))
    end
  end
end

if #locked > 0 then
  redis.call('SET', KEYS[2], encode_ids(locked), 'PX', lock)
end

local out = {next_wake()}
for _, it in ipairs(items) do table.insert(out, it) end
return out
