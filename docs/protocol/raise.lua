-- raise.lua: deliver a message (ExternalEvent, QueueEvent or Cancel) to a
-- running instance (duroworker wire protocol 0.1).
-- KEYS[1] "{<prefix>}:"   KEYS[2] "{<prefix>}:inst:<id>"   KEYS[3] "{<prefix>}:inbox:<id>"
-- ARGV[1] instance id     ARGV[2] the message (JSON)
-- Returns 1, or the error INSTANCE_NOT_FOUND or INSTANCE_ENDED.
local f = redis.call('HMGET', KEYS[2], 'status', 'rq')
if not f[1] then
  return redis.error_reply('INSTANCE_NOT_FOUND ' .. ARGV[1])
end
if f[1] == 'Completed' or f[1] == 'Failed' then
  return redis.error_reply('INSTANCE_ENDED ' .. ARGV[1])
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('RPUSH', KEYS[3], ARGV[2])
-- the ready key depends on the rq field; it shares the hash tag of KEYS[1]
redis.call('ZADD', KEYS[1] .. 'ready:' .. f[2], 'NX', now, ARGV[1])
redis.call('PUBLISH', KEYS[1] .. 'wake:orch', f[2])
return 1
