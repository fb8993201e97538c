-- enqueue.lua: append a message to an existing instance's inbox.
-- KEYS[1] prefix "{ns}:"   KEYS[2] inst:<id>   KEYS[3] req:<request id> (only with a request id)
-- ARGV[1] instance id   ARGV[2] message
-- ARGV[3] request id (may be absent or "")   ARGV[4] how long to remember it, ms
-- Returns 1.
-- Errors: INSTANCE_NOT_FOUND, INSTANCE_ENDED (status Completed or Failed),
-- unless this request id already delivered the message: then 1 again, and
-- nothing is written; REQUEST_REUSED if the request id named another request.
local id = ARGV[1]
local req = (ARGV[3] or '') ~= '' and KEYS[3] or nil
local answer = 'enqueue:' .. id

-- validate
local replayed = replay_request(req, ARGV[3], answer)
if replayed then return replayed end
local f = redis.call('HMGET', KEYS[2], 'status', 'rq')
if not f[1] then
  return redis.error_reply('INSTANCE_NOT_FOUND ' .. id)
end
if is_ended(f[1]) then
  return redis.error_reply('INSTANCE_ENDED ' .. id)
end

-- publish first: if an ACL denies the channel, the script fails before it
-- wrote anything (the subscribers get the message after the script ends)
redis.call('PUBLISH', CH_WAKE_ORCH, f[2])

-- write
deliver(id, ARGV[2], now_ms(), {})
if req then redis.call('SET', req, answer, 'PX', ARGV[4]) end
return 1
