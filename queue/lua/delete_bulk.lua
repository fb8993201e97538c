-- delete_bulk.lua: delete ended root instances with their trees, one page.
-- KEYS[1] prefix "{ns}:"   KEYS[2] bystatus:Completed   KEYS[3] bystatus:Failed
-- ARGV[1] mode: "ids" (the ids follow) | "scan" (walk the ended instances)
-- ARGV[2] max roots to delete in this call (>= 1)
-- ARGV[3] ended before, Unix ms (0 = any time)
-- ARGV[4] max instances in one tree   ARGV[5] max cost of one tree
-- (instances + execution records + in-flight work items)
-- ARGV[6] work budget of this call (>= 1): each candidate looked at costs 1,
-- each tree deleted its cost
-- ARGV[7], ARGV[8] scan: resume after this entry (score, member); score ""
-- starts at the beginning
-- ARGV[9..] ids mode: instance ids
-- Returns {roots, instances, executions, events, queue messages, next,
-- work, score, member}: next = where the next call resumes (ids: a 1-based
-- index into the ids; scan: 1, after the entry score, member), -1 when
-- every candidate was looked at; work = what the call spent of ARGV[6].
-- A root is eligible when it exists, is Completed or Failed, ended before
-- ARGV[3] (its utime), has no parent (or its parent no longer exists), and
-- every instance of its tree has ended; others are skipped silently, and so
-- is a tree larger than ARGV[4] instances or ARGV[5] cost. Each tree is
-- deleted whole. The call stops when its work reaches ARGV[6], and before a
-- tree that would take it past ARGV[6] unless that tree is the first thing
-- it looks at (so every call makes progress); the next call resumes there.
-- Scan mode reads the candidates from the two ended indices merged in the
-- order of instances (creation time, then id): the oldest ended first.
local mode = ARGV[1]
local max_roots, cut = tonumber(ARGV[2]), tonumber(ARGV[3])
local max_tree, max_cost = tonumber(ARGV[4]), tonumber(ARGV[5])
local budget = tonumber(ARGV[6])

-- eligible returns the tree of root id and its cost, or nil.
local function eligible(id)
  local f = redis.call('HMGET', k_inst(id), 'status', 'parent', 'utime')
  if not f[1] or not is_ended(f[1]) then return nil end
  if cut > 0 and num(f[3]) >= cut then return nil end
  if f[2] and f[2] ~= '' and redis.call('EXISTS', k_inst(f[2])) == 1 then return nil end
  local ids = collect_tree(id, max_tree)
  if not ids or first_active(ids) then return nil end
  local cost = tree_cost(ids)
  if cost > max_cost then return nil end
  return ids, cost
end

local res = {0, 0, 0, 0}
local roots, work = 0, 0

-- visit looks at candidate id: returns false to stop before it (it is
-- looked at again by the next call).
local function visit(id)
  local ids, cost = eligible(id)
  if ids then
    if work > 0 and work + 1 + cost > budget then return false end
    for _, d in ipairs(ids) do delete_instance(d, res) end
    roots, work = roots + 1, work + cost
  end
  work = work + 1
  return true
end

if mode == 'ids' then
  local i = 9
  while i <= #ARGV and roots < max_roots and work < budget do
    if not visit(ARGV[i]) then break end
    i = i + 1
  end
  local next = i - 8
  if i > #ARGV then next = -1 end
  return {roots, res[1], res[2], res[3], res[4], next, work, '', ''}
end

-- scan: up to budget entries after the cursor from each ended index, merged.
local csc, cmem = ARGV[7], ARGV[8]
local cands, complete = {}, true
for k = 2, 3 do
  local p = 0
  if csc ~= '' then
    p = zseek(KEYS[k], csc, cmem)
    if redis.call('ZRANGE', KEYS[k], p, p)[1] == cmem then p = p + 1 end
  end
  local r = redis.call('ZRANGE', KEYS[k], p, p + budget - 1, 'WITHSCORES')
  if #r / 2 >= budget then complete = false end
  for j = 1, #r, 2 do cands[#cands + 1] = {r[j], tonumber(r[j + 1]), r[j + 1]} end
end
table.sort(cands, function(a, b)
  if a[2] ~= b[2] then return a[2] < b[2] end
  return before(a[1], b[1])
end)
local done, last = 0, nil
for _, c in ipairs(cands) do
  if roots >= max_roots or work >= budget then break end
  if not visit(c[1]) then break end
  done, last = done + 1, c
end
if done == #cands and complete then
  return {roots, res[1], res[2], res[3], res[4], -1, work, '', ''}
end
if not last then
  -- nothing looked at: resume where this call started
  return {roots, res[1], res[2], res[3], res[4], 1, work, csc, cmem}
end
return {roots, res[1], res[2], res[3], res[4], 1, work, last[3], last[1]}
