-- create.lua: create an instance with its first message.
-- KEYS[1] prefix "{ns}:"   KEYS[2] inst:<id>   KEYS[3] inbox:<id>   KEYS[4] ready:<bucket>
-- KEYS[5] req:<request id> (only with a request id)
-- ARGV[1] instance id   ARGV[2] name   ARGV[3] version (may be "")
-- ARGV[4] parent instance id (may be "")   ARGV[5] ready bucket   ARGV[6] message
-- ARGV[7] request id (may be absent or "")   ARGV[8] how long to remember it, ms
-- Returns 1.
-- Errors: INSTANCE_EXISTS if inst:<id> exists, whatever its status (unless
-- this request id already created it: then 1 again, and nothing is written);
-- REQUEST_REUSED if the request id named another request.
local id, bucket = ARGV[1], ARGV[5]
local req = (ARGV[7] or '') ~= '' and KEYS[5] or nil
local answer = 'create:' .. id

-- validate
local replayed = replay_request(req, ARGV[7], answer)
if replayed then return replayed end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.error_reply('INSTANCE_EXISTS ' .. id)
end

-- publish first: if an ACL denies the channel, the script fails before it
-- wrote anything (the subscribers get the message after the script ends)
redis.call('PUBLISH', CH_WAKE_ORCH, bucket)

-- write (create_instance derives KEYS[2..4] from the id and the bucket)
create_instance(id, ARGV[2], ARGV[3], ARGV[4], bucket, ARGV[6], now_ms(), {})
if req then redis.call('SET', req, answer, 'PX', ARGV[8]) end
return 1
