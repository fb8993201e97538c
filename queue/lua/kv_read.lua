-- kv_read.lua: read an instance's key-value state (committed store and the
-- current execution's delta) in one atomic step; Go merges the two.
-- KEYS[1] prefix "{ns}:"   KEYS[2] inst:<id>   KEYS[3] kv:<id>   KEYS[4] kvd:<id>
-- ARGV[1] instance id   ARGV[2] "1" for one key, "0" for all   ARGV[3] key (one key)
-- Returns, for one key: {store value or "", delta value or "", clear-all marker 0|1};
--   for all: {clear-all marker 0|1, flat kv:<id> (empty when marked), flat kvd:<id>}.
--   Stored values are JSON objects, never "".
-- Errors: INSTANCE_NOT_FOUND.
local KV_ALL = '\0all'

-- validate
if redis.call('EXISTS', KEYS[2]) == 0 then
  return redis.error_reply('INSTANCE_NOT_FOUND ' .. ARGV[1])
end

-- read
local marked = redis.call('HEXISTS', KEYS[4], KV_ALL)
if ARGV[2] == '1' then
  local store = redis.call('HGET', KEYS[3], ARGV[3]) or ''
  local delta = redis.call('HGET', KEYS[4], ARGV[3]) or ''
  return {store, delta, marked}
end
local store = {}
if marked == 0 then store = redis.call('HGETALL', KEYS[3]) end
return {marked, store, redis.call('HGETALL', KEYS[4])}
