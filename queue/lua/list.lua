-- list.lua: one page of instance ids, oldest first (by creation time).
-- KEYS[1] prefix "{ns}:"   KEYS[2] instances
-- ARGV[1] status filter: "" (all) | Pending | Running | Completed | Failed
-- ARGV[2] offset: rank in instances to start at (>= 0)
-- ARGV[3] limit: max ids to return (>= 1)
-- ARGV[4] scan budget: max entries to look at when filtering (>= limit)
-- Returns {next, id...}: next is the rank to pass as the next offset, -1
-- when the index has no more entries. With a filter the page may hold fewer
-- than limit ids (even none) while next >= 0: the budget was spent.
-- Read-only.
local status = ARGV[1]
local offset, limit, budget = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local total = redis.call('ZCARD', KEYS[2])

if status == '' then
  local ids = redis.call('ZRANGE', KEYS[2], offset, offset + limit - 1)
  local next = offset + #ids
  if next >= total then next = -1 end
  local out = {next}
  for _, id in ipairs(ids) do out[#out + 1] = id end
  return out
end

local out = {0}
local pos = offset
local stop = math.min(total, offset + budget)
while pos < stop and #out - 1 < limit do
  local chunk = redis.call('ZRANGE', KEYS[2], pos, math.min(stop, pos + 100) - 1)
  if #chunk == 0 then break end
  for _, id in ipairs(chunk) do
    pos = pos + 1
    if redis.call('HGET', k_inst(id), 'status') == status then
      out[#out + 1] = id
      if #out - 1 >= limit then break end
    end
  end
end
if pos >= total then pos = -1 end
out[1] = pos
return out
