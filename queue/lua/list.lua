-- list.lua: one page of instance ids, oldest first (by creation time).
-- KEYS[1] prefix "{ns}:"   KEYS[2] instances
-- KEYS[3] bystatus:<status> (only with a status filter)
-- ARGV[1] status filter: "" (all) | Pending | Running | Completed | Failed
-- ARGV[2] offset: rank in instances to start at (>= 0)
-- ARGV[3] limit: max ids to return (>= 1)
-- Returns {next, read, id...}: next is the rank in instances to pass as the
-- next offset, -1 when no entry (no match, with a filter) is left; read is
-- the number of index entries the call read (its work).
-- With a filter the page is read from bystatus:<status>, which holds the
-- same entries with the same scores as instances: it starts at the first
-- entry not before the one at rank offset in instances, and a full page's
-- next is the rank in instances just after its last id. A short page is
-- the last one. Cost: O(log N + limit) either way. Read-only.
local status = ARGV[1]
local offset, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local total = redis.call('ZCARD', KEYS[2])

if status == '' then
  local ids = redis.call('ZRANGE', KEYS[2], offset, offset + limit - 1)
  local next = offset + #ids
  if next >= total then next = -1 end
  local out = {next, #ids}
  for _, id in ipairs(ids) do out[#out + 1] = id end
  return out
end

if offset >= total then return {-1, 0} end
local e = redis.call('ZRANGE', KEYS[2], offset, offset, 'WITHSCORES')
local pos, read = zseek(KEYS[3], e[2], e[1])
local ids = redis.call('ZRANGE', KEYS[3], pos, pos + limit - 1)
local next = -1
if #ids == limit then
  local r = redis.call('ZRANK', KEYS[2], ids[#ids])
  if r and r + 1 < total then next = r + 1 end
end
local out = {next, 1 + read + #ids}
for _, id in ipairs(ids) do out[#out + 1] = id end
return out
