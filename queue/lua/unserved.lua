-- unserved.lua: list the buckets that hold work but that no live node serves.
-- KEYS[1] prefix "{ns}:"
-- ARGV[1] max buckets to return (> 0)
-- Returns an array of bucket names (orchestration buckets "o:", "v:", "x:"
-- and work buckets "a:", "t:" and "s:"), each holding at least one entry;
-- callers keep the kinds they handle.
-- Cost: O(live nodes x their buckets + known buckets + dead nodes);
-- meant to run every few seconds per worker, not per fetch.
local limit = tonumber(ARGV[1]) or 100

local now = now_ms()
-- Nodes whose liveness lapsed a while ago are forgotten (NODE_FORGET_MS:
-- live workers reclaim their locks first, see reclaim_nodes.lua).
forget_dead_nodes(now)
local served = served_buckets(now)

local out = {}
for _, b in ipairs(redis.call('SMEMBERS', K_ORCH_BUCKETS)) do
  if #out >= limit then return out end
  if not served[b] and redis.call('ZCARD', k_ready(b)) > 0 then out[#out + 1] = b end
end
for _, b in ipairs(redis.call('SMEMBERS', K_WORK_BUCKETS)) do
  if #out >= limit then return out end
  if not served[b] and (redis.call('XLEN', k_wq(b)) > 0 or redis.call('ZCARD', k_wqd(b)) > 0) then out[#out + 1] = b end
end
return out
