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

-- write (create_instance derives KEYS[2..4] from the id and the bucket)
local woken = {}
create_instance(id, ARGV[2], ARGV[3], ARGV[4], bucket, ARGV[6], now_ms(), woken)
publish_all(CH_WAKE_ORCH, woken)
return 1
