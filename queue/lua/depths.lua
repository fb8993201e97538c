-- depths.lua: what waits in every non-empty bucket, and the timer count.
-- KEYS[1] prefix "{ns}:"
-- ARGV[1] max entries due later (locked or delayed) to inspect, over all buckets
-- Returns {timers, partial, orchestration buckets, activity buckets}; each
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

local orch = depths(K_ORCH_BUCKETS, k_ready, k_inst)
local work = depths(K_WORK_BUCKETS, k_work, k_wi)
return {redis.call('ZCARD', K_TIMERS), partial, orch, work}
