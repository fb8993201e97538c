-- advertise.lua: record the buckets a live worker node serves, for a while.
-- KEYS[1] prefix "{ns}:"
-- ARGV[1] node id   ARGV[2] ttl ms (> 0)   ARGV[3] node description (JSON,
-- '' for none)   ARGV[4..] bucket names
-- Returns 1. The node counts as live until now + ttl (Redis clock); its
-- bucket set node:<id> and its description nodeinfo:<id> expire at the same
-- time; nodettl keeps the ttl (see reclaim_nodes.lua).
local node, ttl = ARGV[1], tonumber(ARGV[2])

-- validate
if node == '' or not ttl or ttl <= 0 then
  return redis.error_reply('BAD_REQUEST node id and a positive ttl are required')
end

-- write
local now = now_ms()
local prev = tonumber(redis.call('ZSCORE', K_NODES, node) or '')
if not prev or prev < now or redis.call('HEXISTS', K_NODE_SINCE, node) == 0 then
  redis.call('HSET', K_NODE_SINCE, node, now) -- live again after a lapse
end
local key = k_node(node)
redis.call('DEL', key)
local batch = {}
for i = 4, #ARGV do
  batch[#batch + 1] = ARGV[i]
  if #batch == 500 then
    redis.call('SADD', key, unpack(batch))
    batch = {}
  end
end
if #batch > 0 then redis.call('SADD', key, unpack(batch)) end
redis.call('PEXPIRE', key, ttl)
if ARGV[3] ~= '' then
  redis.call('SET', k_nodeinfo(node), ARGV[3], 'PX', ttl)
else
  redis.call('DEL', k_nodeinfo(node))
end
redis.call('ZADD', K_NODES, now + ttl, node)
redis.call('HSET', K_NODE_TTL, node, ttl)
return 1
