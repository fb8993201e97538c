-- delete_bulk.lua: delete ended root instances with their trees, one page.
-- KEYS[1] prefix "{ns}:"
-- ARGV[1] mode: "ids" (the ids follow) | "scan" (walk the instances index)
-- ARGV[2] max roots to delete in this call (>= 1)
-- ARGV[3] ended before, Unix ms (0 = any time)
-- ARGV[4] max instances in one tree   ARGV[5] max cost of this call
-- (instances + execution records + in-flight work items)
-- ARGV[6] scan: rank in instances to start at   ARGV[7] scan: max entries to look at
-- ARGV[8..] ids mode: instance ids
-- Returns {roots, instances, executions, events, queue messages, next}:
--   next = where the next call resumes (scan: a rank; ids: a 1-based index
--   into the ids), -1 when everything was looked at.
-- A root is eligible when it exists, has no parent (or its parent no longer
-- exists), is Completed or Failed, ended before ARGV[3] (its utime), and
-- every instance of its tree has ended; others are skipped silently, and so
-- is a tree larger than ARGV[4] instances or ARGV[5] cost on its own. Each
-- tree is deleted whole; the call stops before a tree that would exceed the
-- remaining cost, and resumes with it.
local mode = ARGV[1]
local max_roots, before = tonumber(ARGV[2]), tonumber(ARGV[3])
local max_tree, max_cost = tonumber(ARGV[4]), tonumber(ARGV[5])

-- eligible returns the tree of root id and its cost, or nil.
local function eligible(id)
  local f = redis.call('HMGET', k_inst(id), 'status', 'parent', 'utime')
  if not f[1] or not is_ended(f[1]) then return nil end
  if f[2] and f[2] ~= '' and redis.call('EXISTS', k_inst(f[2])) == 1 then return nil end
  if before > 0 and num(f[3]) >= before then return nil end
  local ids = collect_tree(id, max_tree)
  if not ids or first_active(ids) then return nil end
  local cost = tree_cost(ids)
  if cost > max_cost then return nil end
  return ids, cost
end

local res = {0, 0, 0, 0}
local roots, spent = 0, 0

if mode == 'ids' then
  local i = 8
  while i <= #ARGV and roots < max_roots do
    local ids, cost = eligible(ARGV[i])
    if ids then
      if spent + cost > max_cost then break end
      for _, d in ipairs(ids) do delete_instance(d, res) end
      roots, spent = roots + 1, spent + cost
    end
    i = i + 1
  end
  local next = i - 7
  if i > #ARGV then next = -1 end
  return {roots, res[1], res[2], res[3], res[4], next}
end

-- scan: pos is the rank of the next entry to look at in the live index.
local pos, scan = tonumber(ARGV[6]), tonumber(ARGV[7])
local looked = 0
while looked < scan and roots < max_roots do
  local e = redis.call('ZRANGE', K_INSTANCES, pos, pos)
  if #e == 0 then break end
  looked = looked + 1
  local ids, cost = eligible(e[1])
  if ids and spent + cost > max_cost then break end
  if ids then
    -- members ranked before pos shift it down; the root's successor takes its rank
    local shift = 0
    for j = 2, #ids do
      local r = redis.call('ZRANK', K_INSTANCES, ids[j])
      if r and r < pos then shift = shift + 1 end
    end
    for _, d in ipairs(ids) do delete_instance(d, res) end
    roots, spent = roots + 1, spent + cost
    pos = pos - shift
  else
    pos = pos + 1
  end
end
if pos >= redis.call('ZCARD', K_INSTANCES) then pos = -1 end
return {roots, res[1], res[2], res[3], res[4], pos}
