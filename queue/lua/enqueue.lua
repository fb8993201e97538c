-- enqueue.lua: append a message to an existing instance's inbox.
-- KEYS[1] prefix "{ns}:"   KEYS[2] inst:<id>
-- ARGV[1] instance id   ARGV[2] message
-- Returns 1.
-- Errors: INSTANCE_NOT_FOUND, INSTANCE_ENDED (status Completed or Failed).
local id = ARGV[1]

-- validate
local status = redis.call('HGET', KEYS[2], 'status')
if not status then
  return redis.error_reply('INSTANCE_NOT_FOUND ' .. id)
end
if is_ended(status) then
  return redis.error_reply('INSTANCE_ENDED ' .. id)
end

-- write
local woken = {}
deliver(id, ARGV[2], now_ms(), woken)
publish_all(CH_WAKE_ORCH, woken)
return 1
