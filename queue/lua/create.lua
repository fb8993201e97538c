-- create.lua: create an instance with its first message.
-- KEYS[1] prefix "{ns}:"   KEYS[2] inst:<id>   KEYS[3] inbox:<id>   KEYS[4] ready:<bucket>
-- ARGV[1] instance id   ARGV[2] name   ARGV[3] version (may be "")
-- ARGV[4] parent instance id (may be "")   ARGV[5] ready bucket   ARGV[6] message
-- Returns 1.
-- Errors: INSTANCE_EXISTS if inst:<id> exists, whatever its status.
local id, bucket = ARGV[1], ARGV[5]

-- validate
if redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.error_reply('INSTANCE_EXISTS ' .. id)
end

-- write
local now = now_ms()
redis.call('HSET', KEYS[2],
  'name', ARGV[2], 'ver', ARGV[3], 'status', 'Pending', 'exec', '0', 'pin', '',
  'parent', ARGV[4], 'out', '', 'ctime', now, 'utime', now, 'rq', bucket,
  'tok', '', 'ldl', '', 'att', 0, 'batch', 0, 'cache', '', 'acked', '')
redis.call('RPUSH', KEYS[3], ARGV[6])
redis.call('ZADD', KEYS[4], 'NX', now, id)
redis.call('SADD', K_ORCH_BUCKETS, bucket)
redis.call('PUBLISH', CH_WAKE_ORCH, bucket)
return 1
