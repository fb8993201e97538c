-- tree.lua: helpers of the delete scripts, prepended after common.lua (it is
-- not run on its own). An instance tree is an instance and, recursively, the
-- children listed in children:<id> whose parent field still names their
-- parent (an id that collided with an existing instance is never listed).

-- collect_tree returns the ids of the tree rooted at root, root first, in
-- breadth-first order (children sorted by id), or nil when it holds more
-- than max instances. Children whose instance hash is missing are left out.
local function collect_tree(root, max)
  local out, seen, i = {root}, {[root] = true}, 1
  while i <= #out do
    local id = out[i]
    local kids = redis.call('SMEMBERS', k_children(id))
    table.sort(kids)
    for _, c in ipairs(kids) do
      if not seen[c] then
        seen[c] = true
        if redis.call('HGET', k_inst(c), 'parent') == id then
          if #out >= max then return nil end
          out[#out + 1] = c
        end
      end
    end
    i = i + 1
  end
  return out
end

-- tree_cost is the number of keys beyond the instances' own that deleting
-- ids touches: execution records and work items.
local function tree_cost(ids)
  local cost = 0
  for _, id in ipairs(ids) do
    cost = cost + 1 + redis.call('HLEN', k_execs(id)) + redis.call('HLEN', k_wimap(id))
  end
  return cost
end

-- first_active returns the first id of ids whose instance is Pending or
-- Running, or nil.
local function first_active(ids)
  for _, id in ipairs(ids) do
    local st = redis.call('HGET', k_inst(id), 'status')
    if st and not is_ended(st) then return id end
  end
  return nil
end

-- delete_instance removes everything stored for instance id and adjusts the
-- indices; res = {instances, executions, events, queue messages} is
-- incremented. Timers are not indexed by instance: they stay in timers and
-- are dropped when promoted (deliver drops messages to missing instances).
local function delete_instance(id, res)
  local f = redis.call('HMGET', k_inst(id), 'status', 'exec', 'rq', 'parent')
  if not f[1] then return end
  -- inbox
  local ib = k_inbox(id)
  res[4] = res[4] + redis.call('LLEN', ib)
  redis.call('DEL', ib)
  -- executions: every recorded one, and the current one
  local ek = k_execs(id)
  local execs, nexec, nevents = {}, 0, 0
  for _, field in ipairs(redis.call('HKEYS', ek)) do
    if not string.find(field, ':', 1, true) then
      execs[field] = true
      nexec = nexec + 1
    end
  end
  local cur = num(f[2])
  if cur > 0 then execs[tostring(cur)] = true end
  for n in pairs(execs) do
    local hk = k_hist(id, n)
    nevents = nevents + redis.call('LLEN', hk)
    redis.call('DEL', hk)
  end
  redis.call('DEL', ek)
  -- in-flight work items (those scheduled with a reference)
  local wm = redis.call('HGETALL', k_wimap(id))
  for i = 2, #wm, 2 do
    local wid = wm[i]
    local w = redis.call('HMGET', k_wi(wid), 'bucket', 'eid')
    if w[1] then
      wq_forget(w[1], w[2], wid)
      redis.call('DEL', k_wi(wid))
      res[4] = res[4] + 1
    end
  end
  redis.call('DEL', k_wimap(id), k_kv(id), k_kvd(id), k_children(id))
  if f[3] and f[3] ~= '' then redis.call('ZREM', k_ready(f[3]), id) end
  if f[4] and f[4] ~= '' then redis.call('SREM', k_children(f[4]), id) end
  -- the instance hash, and with it the lock: a late ack gets INSTANCE_NOT_FOUND
  redis.call('DEL', k_inst(id))
  stat_move(f[1], nil, id)
  redis.call('ZREM', K_INSTANCES, id)
  if nexec > 0 then redis.call('HINCRBY', K_STATS, 'executions', -nexec) end
  if nevents > 0 then redis.call('HINCRBY', K_STATS, 'events', -nevents) end
  res[1] = res[1] + 1
  res[2] = res[2] + nexec
  res[3] = res[3] + nevents
end
