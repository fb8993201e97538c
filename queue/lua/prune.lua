-- prune.lua: delete old executions of an instance (history and record).
-- KEYS[1] prefix "{ns}:"   KEYS[2] inst:<id>   KEYS[3] execs:<id>
-- ARGV[1] instance id   ARGV[2] keep last n executions (>= 1; the current
-- one is always kept)   ARGV[3] ended before, Unix ms (0 = any time)
-- ARGV[4] max executions to delete in this call (>= 1)
-- Returns {executions, events, more}: deleted counts, and more = 1 when
-- eligible executions are left because ARGV[4] was reached.
-- Never deletes the current execution nor one whose record is Running.
-- Errors: INSTANCE_NOT_FOUND.
-- History keys are derived from KEYS[1] (docs/redis-layout.md, "Dynamic keys").
local id = ARGV[1]
local keep, before, max = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])

-- validate
local cur = redis.call('HGET', KEYS[2], 'exec')
if not cur then
  return redis.error_reply('INSTANCE_NOT_FOUND ' .. id)
end
cur = num(cur)

-- decide: execution ids, newest first; the newest `keep` stay
local ns = {}
for _, field in ipairs(redis.call('HKEYS', KEYS[3])) do
  local n = tonumber(field)
  if n then ns[#ns + 1] = n end
end
table.sort(ns, function(a, b) return a > b end)
local victims = {}
for i, n in ipairs(ns) do
  if i > keep and n ~= cur then
    local rec = redis.call('HGET', KEYS[3], tostring(n))
    local fin = exec_field(rec, 'end')
    if exec_status(rec) ~= 'Running' and (before == 0 or (fin > 0 and fin < before)) then
      victims[#victims + 1] = n
    end
  end
end
table.sort(victims)

-- write: oldest first, at most max
local nexec, nevents = 0, 0
for i = 1, math.min(#victims, max) do
  local n = tostring(victims[i])
  local hk = k_hist(id, n)
  nevents = nevents + redis.call('LLEN', hk)
  redis.call('DEL', hk)
  redis.call('HDEL', KEYS[3], n, n .. ':out')
  nexec = nexec + 1
end
if nexec > 0 then redis.call('HINCRBY', K_STATS, 'executions', -nexec) end
if nevents > 0 then redis.call('HINCRBY', K_STATS, 'events', -nevents) end
local more = 0
if #victims > max then more = 1 end
return {nexec, nevents, more}
