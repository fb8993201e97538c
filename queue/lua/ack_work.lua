-- ack_work.lua: complete a work item and deliver its completion.
-- KEYS[1] prefix "{ns}:"   KEYS[2] wi:<work id>
-- ARGV[1] work id   ARGV[2] token   ARGV[3] completion message ("" = none)
-- ARGV[4] "1" when the item is poison, then ARGV[5] reason, ARGV[6] attempts,
--   ARGV[7] max attempts: the item is copied to the dead-letter stream first.
-- A work item with a ref (see ack_orch.lua) is also removed from its
-- instance's wimap:<instance id>, if the map still points at it.
-- Returns 1 if the completion was delivered, 0 if there was none or its
-- instance is missing or ended (then it is dropped).
-- Errors: WORK_NOT_FOUND when wi:<work id> is gone (acked or never existed);
-- LOCK_LOST when the token is not the current lock.
local wid, token = ARGV[1], ARGV[2]

-- validate
local f = redis.call('HMGET', KEYS[2], 'tok', 'bucket', 'inst', 'ref', 'sess', 'node')
if not f[2] then
  return redis.error_reply('WORK_NOT_FOUND ' .. wid)
end
if f[1] ~= token then
  return redis.error_reply('LOCK_LOST work ' .. wid)
end

-- write
if ARGV[4] == '1' then
  -- a poisoned activity: keep it in the dead-letter stream with its reason
  local w = redis.call('HMGET', KEYS[2], 'body', 'home', 'sess', 'bucket')
  local exec, ev = '0', '0'
  if f[4] and f[4] ~= '' then
    local c = string.find(f[4], ':', 1, true)
    exec, ev = string.sub(f[4], 1, c - 1), string.sub(f[4], c + 1)
  end
  redis.call('XADD', K_DEAD, 'MAXLEN', '~', DEAD_MAXLEN, '*',
    'kind', 'activity', 'instance', f[3] or '', 'execution', exec, 'event', ev,
    'reason', ARGV[5], 'attempts', ARGV[6], 'max_attempts', ARGV[7],
    'body', w[1] or '', 'bucket', w[2] or w[4] or '', 'session', w[3] or '', 'time', now_ms())
end
redis.call('DEL', KEYS[2])
redis.call('ZREM', k_work(f[2]), wid)
lock_owner_move(f[6], '', 'w:' .. wid)
if f[4] and f[4] ~= '' and f[3] and f[3] ~= '' then
  local wm = k_wimap(f[3])
  if redis.call('HGET', wm, f[4]) == wid then redis.call('HDEL', wm, f[4]) end
end
if f[5] and f[5] ~= '' and redis.call('EXISTS', k_sess(f[5])) == 1 then
  redis.call('HSET', k_sess(f[5]), 'last', now_ms()) -- session activity
end
local delivered = 0
if ARGV[3] ~= '' and f[3] and f[3] ~= '' then
  local woken = {}
  if deliver(f[3], ARGV[3], now_ms(), woken) then delivered = 1 end
  publish_all(CH_WAKE_ORCH, woken)
end
return delivered
