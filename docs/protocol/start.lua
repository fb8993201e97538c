-- start.lua: create an orchestration instance (duroworker wire protocol 0.1).
-- KEYS[1] "{<prefix>}:"            KEYS[2] "{<prefix>}:inst:<id>"
-- KEYS[3] "{<prefix>}:inbox:<id>"  KEYS[4] "{<prefix>}:ready:<bucket>"
-- KEYS[5] "{<prefix>}:buckets:o"   KEYS[6] "{<prefix>}:instances"   KEYS[7] "{<prefix>}:stats"
-- KEYS[8] "{<prefix>}:seq"           KEYS[9] "{<prefix>}:bystatus:Pending"
-- ARGV[1] instance id   ARGV[2] orchestration name
-- ARGV[3] version: "" (registry policy) or canonical MAJOR.MINOR.PATCH
-- ARGV[4] bucket: "o:<name>" when ARGV[3] is "", else "v:<name>@<version>"
-- ARGV[5] the Start message (JSON)
-- Returns 1, or the error INSTANCE_EXISTS.
if redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.error_reply('INSTANCE_EXISTS ' .. ARGV[1])
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[2],
  'name', ARGV[2], 'ver', ARGV[3], 'status', 'Pending', 'exec', '0', 'pin', '',
  'parent', '', 'out', '', 'ctime', now, 'utime', now, 'rq', ARGV[4],
  'tok', '', 'ldl', '', 'att', 0, 'batch', 0, 'cache', '', 'acked', '',
  'cseq', redis.call('INCR', KEYS[8]))
redis.call('RPUSH', KEYS[3], ARGV[5])
redis.call('ZADD', KEYS[4], 'NX', now, ARGV[1])
redis.call('SADD', KEYS[5], ARGV[4])
redis.call('ZADD', KEYS[6], now, ARGV[1])
redis.call('HINCRBY', KEYS[7], 'pending', 1)
redis.call('ZADD', KEYS[9], now, ARGV[1])
redis.call('PUBLISH', KEYS[1] .. 'wake:orch', ARGV[4])
return 1
