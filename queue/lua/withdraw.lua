-- withdraw.lua: forget a worker node at once (graceful shutdown), so that
-- work only it served is seen as unserved without waiting for its ttl.
-- KEYS[1] prefix "{ns}:"
-- ARGV[1] node id
-- Returns 1.
redis.call('DEL', k_node(ARGV[1]), k_nodeinfo(ARGV[1]))
redis.call('ZREM', K_NODES, ARGV[1])
redis.call('HDEL', K_NODE_SINCE, ARGV[1])
redis.call('HDEL', K_NODE_TTL, ARGV[1])
redis.call('DEL', k_nlocks(ARGV[1]))
return 1
