-- prune.lua: delete old executions of an instance (history and record).
-- KEYS[1] prefix "{ns}:"   KEYS[2] inst:<id>   KEYS[3] execs:<id>
-- ARGV[1] instance id   ARGV[2] keep last n executions (>= 1; the current
-- one is always kept)   ARGV[3] ended before, Unix ms (0 = any time)
-- ARGV[4] max executions to delete in this call (>= 1)
-- ARGV[5] resume after this execution id; -1 on the first call of a prune
-- ARGV[6] max execution ids to look at in this call (>= 1)
-- ARGV[7] the keep threshold the first call returned (executions numbered
-- from it on are kept); ignored on the first call
-- Returns {executions, events, more, after, looked, threshold}: deleted
-- counts; more = 1 when executions are left to look at, then the next call
-- passes after as ARGV[5] and threshold as ARGV[7]; looked = the execution
-- ids looked at (its work).
-- The first call reads the field names of execs:<id> (HKEYS, O(records),
-- no record read) to find the oldest record and the threshold: the newest
-- `keep` records, and with them the current execution, stay. Every call
-- then walks execution ids upward from after + 1 to the threshold, reading
-- at most ARGV[6] records and deleting at most ARGV[4] executions. New
-- executions only add ids above the threshold, so it stays valid.
-- Never deletes the current execution nor one whose record is Running.
-- Errors: INSTANCE_NOT_FOUND.
-- History keys are derived from KEYS[1] (docs/redis-layout.md, "Dynamic keys").
local id = ARGV[1]
local keep, before, max = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local after, budget, threshold = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])

-- validate
local cur = redis.call('HGET', KEYS[2], 'exec')
if not cur then
  return redis.error_reply('INSTANCE_NOT_FOUND ' .. id)
end
cur = num(cur)

-- decide: on the first call, the oldest record and the threshold
if after < 0 then
  local ns = {}
  for _, field in ipairs(redis.call('HKEYS', KEYS[3])) do
    local n = tonumber(field)
    if n then ns[#ns + 1] = n end
  end
  table.sort(ns, function(a, b) return a > b end)
  if #ns <= keep then return {0, 0, 0, 0, 0, 0} end
  threshold = ns[keep]
  after = ns[#ns] - 1
end
local victims, looked, n = {}, 0, after + 1
while n < threshold and #victims < max and looked < budget do
  local rec = redis.call('HGET', KEYS[3], tostring(n))
  looked = looked + 1
  if rec then
    local fin = exec_field(rec, 'end')
    if n ~= cur and exec_status(rec) ~= 'Running' and (before == 0 or (fin > 0 and fin < before)) then
      victims[#victims + 1] = n
    end
  end
  n = n + 1
end
local more = 0
if n < threshold then more = 1 end

-- write: oldest first
local nexec, nevents = 0, 0
for _, v in ipairs(victims) do
  local n = tostring(v)
  local hk = k_hist(id, n)
  nevents = nevents + redis.call('LLEN', hk)
  redis.call('DEL', hk)
  redis.call('HDEL', KEYS[3], n, n .. ':out')
  nexec = nexec + 1
end
if nexec > 0 then redis.call('HINCRBY', K_STATS, 'executions', -nexec) end
if nevents > 0 then redis.call('HINCRBY', K_STATS, 'events', -nevents) end
return {nexec, nevents, more, n - 1, looked, threshold}
