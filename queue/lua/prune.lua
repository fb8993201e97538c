-- prune.lua: delete old executions of an instance (history and record).
-- KEYS[1] prefix "{ns}:"   KEYS[2] inst:<id>   KEYS[3] execs:<id>
-- ARGV[1] instance id   ARGV[2] keep last n executions (>= 1; the current
-- one is always kept)   ARGV[3] ended before, Unix ms (0 = any time)
-- ARGV[4] max executions to delete in this call (>= 1)
-- ARGV[5] look only at executions numbered above this (0 = all)
-- ARGV[6] max execution records to read in this call (>= 1)
-- Returns {executions, events, more, after, read}: deleted counts; more = 1
-- when executions are left to look at because ARGV[4] or ARGV[6] was
-- reached, then the next call passes after as ARGV[5]; read = records read.
-- Cost: HKEYS of execs:<id> (O(records), no record read) plus at most
-- ARGV[6] records read and ARGV[4] histories deleted.
-- Never deletes the current execution nor one whose record is Running.
-- Errors: INSTANCE_NOT_FOUND.
-- History keys are derived from KEYS[1] (docs/redis-layout.md, "Dynamic keys").
local id = ARGV[1]
local keep, before, max = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local after, budget = tonumber(ARGV[5]), tonumber(ARGV[6])

-- validate
local cur = redis.call('HGET', KEYS[2], 'exec')
if not cur then
  return redis.error_reply('INSTANCE_NOT_FOUND ' .. id)
end
cur = num(cur)

-- decide: execution ids, newest first; the newest `keep` stay; the others
-- above `after` are looked at oldest first
local ns = {}
for _, field in ipairs(redis.call('HKEYS', KEYS[3])) do
  local n = tonumber(field)
  if n then ns[#ns + 1] = n end
end
table.sort(ns, function(a, b) return a > b end)
local cands = {}
for i, n in ipairs(ns) do
  if i > keep and n ~= cur and n > after then cands[#cands + 1] = n end
end
table.sort(cands)
local victims, read, last, more = {}, 0, after, 0
for _, n in ipairs(cands) do
  if #victims >= max or read >= budget then
    more = 1
    break
  end
  local rec = redis.call('HGET', KEYS[3], tostring(n))
  read = read + 1
  local fin = exec_field(rec, 'end')
  if exec_status(rec) ~= 'Running' and (before == 0 or (fin > 0 and fin < before)) then
    victims[#victims + 1] = n
  end
  last = n
end

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
return {nexec, nevents, more, last, read}
