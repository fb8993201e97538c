-- reclaim_nodes.lua: expire at once the locks held by worker nodes that died.
-- KEYS[1] prefix "{ns}:"
-- ARGV[1] node id of the caller (a live node)   ARGV[2] max locks reclaimed (> 0)
-- ARGV[3] "1": reclaim the caller's own locks instead, those of an earlier
--   process under the same node id (the caller starts and holds none yet);
--   the caller need not be live, and stays listed
-- A node is dead when its liveness (its score in nodes) lapsed while the
-- caller was live without a lapse (nodesince): the caller's own heartbeats
-- went through then, so the dead node's silence was not an outage of Redis.
-- A node that lapsed before the caller became live (the caller started
-- after it died, or both lapsed in an outage of Redis) is dead too once the
-- caller has been live for longer than that node's ttl (nodettl): alive, it
-- would have advertised again by then. So right after an outage that
-- lapsed every node nobody qualifies, and a replacement started after a
-- node died takes its locks over a ttl later (while the dead node is still
-- listed: NODE_FORGET_MS). For each dead node, each lock listed
-- in nlocks:<node> that is still the node's gets its deadline set to now and
-- its bucket entry scored now (a work item's stream entry passes to the
-- consumer WQ_FREE with a long idle time): the next fetch takes it over with
-- a new token and one more attempt, and the dead node's late ack, renew or
-- abandon fails with LOCK_LOST. A node whose locks are all reclaimed is removed from nodes.
-- Work stream entries the dead node read but never locked (it died between
-- its blocking XREADGROUP and the fetch that locks them) are found in the
-- PEL of every known work bucket (XPENDING ... <node>; O(buckets:a), only
-- for dead nodes) and freed the same way, not counted as an attempt.
-- A withdrawn node (graceful shutdown) is not in nodes: its running work
-- keeps its locks.
-- Returns the number of locks reclaimed.
local me, limit, own = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
local now = now_ms()
local dead = {me}
if not own then
  local my = tonumber(redis.call('ZSCORE', K_NODES, me) or '')
  local since = tonumber(redis.call('HGET', K_NODE_SINCE, me) or '')
  if not my or my < now or not since then return 0 end
  -- only nodes that lapsed while the caller was live (outage-lapsed nodes,
  -- kept until forget_dead_nodes drops them, would fill the page)
  dead = redis.call('ZRANGEBYSCORE', K_NODES, I(since), '(' .. now, 'LIMIT', 0, 10)
  -- and nodes that lapsed before the caller's liveness began, once silent
  -- for their ttl of it (a page of 100 of them; unserved.lua forgets lapsed
  -- nodes after NODE_FORGET_MS)
  if #dead < 10 then
    for _, node in ipairs(redis.call('ZRANGEBYSCORE', K_NODES, '-inf', '(' .. I(since), 'LIMIT', 0, 100)) do
      local ttl = tonumber(redis.call('HGET', K_NODE_TTL, node) or '')
      if ttl and now - since > ttl then
        dead[#dead + 1] = node
        if #dead >= 10 then break end
      end
    end
  end
end

local n = 0
local woken_o = {}
for _, node in ipairs(dead) do
  if n >= limit then break end
  local lk = k_nlocks(node)
  for _, m in ipairs(redis.call('SRANDMEMBER', lk, limit - n)) do
    local kind, id = string.sub(m, 1, 2), string.sub(m, 3)
    if kind == 'o:' then
      local f = redis.call('HMGET', k_inst(id), 'tok', 'node', 'rq', 'ldl', 'status')
      if f[1] and f[1] ~= '' and f[2] == node and num(f[4]) > now then
        redis.call('HSET', k_inst(id), 'ldl', now, 'node', '')
        redis.call('ZADD', k_ready(f[3]), 'XX', ready_score(f[5], now), id)
        woken_o[f[3]] = true
        n = n + 1
      end
    elseif kind == 'w:' then
      local f = redis.call('HMGET', k_wi(id), 'tok', 'node', 'bucket', 'ldl', 'eid')
      if f[1] and f[1] ~= '' and f[2] == node and num(f[4]) > now then
        -- the entry passes to no consumer, idle for long: the next
        -- fetch's reclaim lists it (delivery count unchanged)
        local key = k_wq(f[3])
        local c, dc = wq_pel(key, f[5])
        if c then
          redis.call('XCLAIM', key, WQ_GROUP, WQ_FREE, '0', f[5], 'IDLE', WQ_LONG_IDLE, 'RETRYCOUNT', I(dc), 'JUSTID')
        end
        redis.call('HSET', k_wi(id), 'ldl', I(now), 'node', '')
        n = n + 1
      end
    end
    redis.call('SREM', lk, m)
  end
  -- Entries the node read (a blocking XREADGROUP) but never locked are
  -- pending for it in some work stream: free them the same way, their
  -- delivery not counted (delivery count - 1).
  if n < limit then
    for _, b in ipairs(redis.call('SMEMBERS', K_WORK_BUCKETS)) do
      if n >= limit then break end
      local key = k_wq(b)
      local r = redis.pcall('XPENDING', key, WQ_GROUP, '-', '+', I(limit - n), node)
      if type(r) == 'table' and not r.err then
        for _, p in ipairs(r) do
          local e = redis.call('XRANGE', key, p[1], p[1])
          local wid = e[1] and e[1][2][2]
          local f = wid and redis.call('HMGET', k_wi(wid), 'tok', 'node', 'eid')
          if not (f and (f[1] or '') ~= '' and f[2] == node and f[3] == p[1]) then
            redis.call('XCLAIM', key, WQ_GROUP, WQ_FREE, '0', p[1], 'IDLE', WQ_LONG_IDLE,
              'RETRYCOUNT', I(math.max(tonumber(p[4]) - 1, 0)), 'JUSTID')
            n = n + 1
          end
        end
      end
    end
  end
  if not own and redis.call('SCARD', lk) == 0 and n < limit then
    redis.call('ZREM', K_NODES, node)
    redis.call('HDEL', K_NODE_SINCE, node)
    redis.call('HDEL', K_NODE_TTL, node)
  end
end
publish_all(CH_WAKE_ORCH, woken_o)
return n
