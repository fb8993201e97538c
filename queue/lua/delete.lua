-- delete.lua: delete an instance and all its sub-orchestrations, atomically.
-- KEYS[1] prefix "{ns}:"   KEYS[2] inst:<id>
-- ARGV[1] instance id   ARGV[2] force: "1" deletes Pending and Running
-- instances too   ARGV[3] max instances in the tree   ARGV[4] max cost
-- (instances + execution records + in-flight work items)
-- Returns {instances, executions, events, queue messages} deleted.
-- Errors: INSTANCE_NOT_FOUND; SUB_ORCHESTRATION when the instance has a
-- parent that still exists (delete its root instead); TREE_TOO_LARGE when
-- the tree exceeds ARGV[3] instances or ARGV[4] cost; INSTANCE_RUNNING
-- <id> naming the first Pending or Running instance of the tree (without
-- force). Nothing is written when an error is returned.
-- The tree's keys are derived from KEYS[1] (docs/redis-layout.md, "Dynamic keys").
local id, force = ARGV[1], ARGV[2] == '1'
local max_tree, max_cost = tonumber(ARGV[3]), tonumber(ARGV[4])

-- validate
local f = redis.call('HMGET', KEYS[2], 'status', 'parent')
if not f[1] then
  return redis.error_reply('INSTANCE_NOT_FOUND ' .. id)
end
if f[2] and f[2] ~= '' and redis.call('EXISTS', k_inst(f[2])) == 1 then
  return redis.error_reply('SUB_ORCHESTRATION ' .. id .. ' is a sub-orchestration of ' .. f[2] ..
    '; delete its root instead')
end
local ids = collect_tree(id, max_tree)
if not ids then
  return redis.error_reply('TREE_TOO_LARGE ' .. id .. ' has more than ' .. max_tree .. ' instances in its tree')
end
if not force then
  local active = first_active(ids)
  if active then
    return redis.error_reply('INSTANCE_RUNNING ' .. active)
  end
end
local cost = tree_cost(ids)
if cost > max_cost then
  return redis.error_reply('TREE_TOO_LARGE ' .. id .. ': deleting its tree touches ' .. cost ..
    ' records, more than ' .. max_cost .. ' (prune executions first)')
end

-- write
local res = {0, 0, 0, 0}
for _, d in ipairs(ids) do delete_instance(d, res) end
return res
