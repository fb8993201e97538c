-- depths.lua: what waits in every non-empty bucket, and the timer count.
-- KEYS[1] prefix "{ns}:"
-- ARGV[1] max entries due later (locked or delayed) to inspect, over all buckets
-- ARGV[2] max timers to inspect
-- Returns {timers, partial, orchestration buckets, activity buckets}; timers
-- counts the timers that will be delivered: those of a deleted instance
-- (missing, or numbered before its cseq: the id was created again) and of
-- an ended one are dropped when they fall due and are not counted; past
-- ARGV[2] inspected timers the rest are counted unchecked and partial is 1.
-- Each
-- bucket list holds {name, ready, delayed, locked, unserved (0|1)} sorted by
-- name. ready = entries due now (fetchable, including expired locks);
-- locked = entries due later whose instance or work item holds a lock that
-- has not expired; delayed = the other entries due later (backoff, abandon
-- delay). Past ARGV[1] inspected entries the rest due later count as
-- delayed and partial is 1. unserved = no live node advertises the bucket
-- (the rule of unserved.lua). Read-only: expired nodes are ignored, not removed.
local budget = tonumber(ARGV[1])
local now = now_ms()
local served = served_buckets(now)
local partial = 0

local function depths(set, zkey, hkey)
  local names = redis.call('SMEMBERS', set)
  table.sort(names)
  local out = {}
  for _, b in ipairs(names) do
    local z = zkey(b)
    local total = redis.call('ZCARD', z)
    if total > 0 then
      local ready = redis.call('ZCOUNT', z, '-inf', now)
      local later = total - ready
      local locked, inspected = 0, 0
      if later > 0 and budget > 0 then
        local ids = redis.call('ZRANGEBYSCORE', z, '(' .. now, '+inf', 'LIMIT', 0, budget)
        for _, id in ipairs(ids) do
          local f = redis.call('HMGET', hkey(id), 'tok', 'ldl')
          if f[1] and f[1] ~= '' and num(f[2]) > now then locked = locked + 1 end
        end
        inspected = #ids
        budget = budget - inspected
      end
      if inspected < later then partial = 1 end
      local unserved = 1
      if served[b] then unserved = 0 end
      out[#out + 1] = {b, ready, later - locked, locked, unserved}
    end
  end
  return out
end

-- live_timers counts the timers fetch_orch.lua would deliver (member
-- "<seq>:<len>:<id><body>"), inspecting at most max of them, oldest due
-- first; the others are counted unchecked.
local function live_timers(max)
  local total = redis.call('ZCARD', K_TIMERS)
  local ms = {}
  if max > 0 then ms = redis.call('ZRANGE', K_TIMERS, 0, max - 1) end
  local live = total - #ms
  if live > 0 then partial = 1 end
  for _, m in ipairs(ms) do
    local c1 = string.find(m, ':', 1, true)
    local c2 = c1 and string.find(m, ':', c1 + 1, true)
    local n = c2 and tonumber(string.sub(m, c1 + 1, c2 - 1))
    if n then
      local f = redis.call('HMGET', k_inst(string.sub(m, c2 + 1, c2 + n)), 'status', 'cseq')
      local seq = tonumber(string.sub(m, 1, c1 - 1)) or 0
      if f[1] and not is_ended(f[1]) and seq >= num(f[2]) then live = live + 1 end
    end
  end
  return live
end

-- work_depths is depths for the work buckets: ready = stream entries not
-- delivered yet plus delivered ones whose lock is gone or expired (an
-- inspected PEL entry whose item has no live lock); locked = PEL entries
-- whose item holds a live lock; delayed = the delayed set. Past the budget
-- the uninspected PEL entries count as delayed, as in depths.
local function work_depths()
  local names = redis.call('SMEMBERS', K_WORK_BUCKETS)
  table.sort(names)
  local out = {}
  for _, b in ipairs(names) do
    local key = k_wq(b)
    local total = redis.call('XLEN', key)
    local delayed = redis.call('ZCARD', k_wqd(b))
    if total + delayed > 0 then
      local pending = 0
      local s = redis.pcall('XPENDING', key, WQ_GROUP)
      if type(s) == 'table' and not s.err then pending = tonumber(s[1]) or 0 end
      local locked, inspected = 0, 0
      if pending > 0 and budget > 0 then
        local r = redis.call('XPENDING', key, WQ_GROUP, '-', '+', I(math.min(budget, pending)))
        for _, p in ipairs(r) do
          local e = redis.call('XRANGE', key, p[1], p[1])
          local wid = e[1] and e[1][2][2]
          if wid then
            local f = redis.call('HMGET', k_wi(wid), 'tok', 'ldl')
            if f[1] and f[1] ~= '' and num(f[2]) > now then locked = locked + 1 end
          end
        end
        inspected = #r
        budget = budget - inspected
      end
      if inspected < pending then partial = 1 end
      local unserved = 1
      if served[b] then unserved = 0 end
      out[#out + 1] = {b, total - pending + inspected - locked, delayed + pending - inspected, locked, unserved}
    end
  end
  return out
end

local orch = depths(K_ORCH_BUCKETS, k_ready, k_inst)
local work = work_depths()
return {live_timers(tonumber(ARGV[2])), partial, orch, work}
