-- abandon_orch.lua: release an instance lock without committing the turn.
-- KEYS[1] prefix "{ns}:"   KEYS[2] inst:<id>   KEYS[3] inbox:<id>
-- ARGV[1] instance id   ARGV[2] token   ARGV[3] delay ms (>= 0)
-- ARGV[4] "1" to keep the attempt count, "0" to give the attempt back (att-1, min 0)
-- Returns 1. The inbox is untouched; the instance becomes fetchable at now+delay.
-- Errors: INSTANCE_NOT_FOUND; LOCK_LOST when the token is not the current lock.
local id, token = ARGV[1], ARGV[2]

-- validate
local f = redis.call('HMGET', KEYS[2], 'tok', 'rq', 'att', 'node')
if not f[2] then
  return redis.error_reply('INSTANCE_NOT_FOUND ' .. id)
end
if f[1] ~= token then
  return redis.error_reply('LOCK_LOST ' .. id)
end

-- decide
local now = now_ms()
local delay = tonumber(ARGV[3])
local att = num(f[3])
if ARGV[4] ~= '1' and att > 0 then att = att - 1 end

-- write
redis.call('HSET', KEYS[2], 'tok', '', 'ldl', '', 'batch', 0, 'att', att, 'utime', now, 'node', '')
lock_owner_move(f[4], '', 'o:' .. id)
if redis.call('LLEN', KEYS[3]) > 0 then
  redis.call('ZADD', k_ready(f[2]), now + delay, id)
  if delay == 0 then redis.call('PUBLISH', CH_WAKE_ORCH, f[2]) end
else
  redis.call('ZREM', k_ready(f[2]), id)
end
return 1
