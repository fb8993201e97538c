-- renew_orch.lua: extend a live instance lock. Never changes the attempt count.
-- KEYS[1] prefix "{ns}:"   KEYS[2] inst:<id>
-- ARGV[1] instance id   ARGV[2] token   ARGV[3] lock timeout ms
-- Returns the new lock deadline (Unix ms).
-- Errors: INSTANCE_NOT_FOUND; LOCK_LOST when the token is not the current lock
-- or the lock has already expired (deadline <= now; it may have been stolen since).
local id, token = ARGV[1], ARGV[2]

-- validate
local now = now_ms()
local f, err = locked_fields(HOLDER_INST, KEYS[2], id, token, now)
if not f then return err end

-- write
local deadline = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[2], 'ldl', deadline)
redis.call('ZADD', k_ready(f.rq), 'XX', deadline, id)
return deadline
