-- ack_work.lua: complete a work item and deliver its completion.
-- KEYS[1] prefix "{ns}:"   KEYS[2] wi:<work id>
-- KEYS[3] fr:o:<request id> (only with a turn claim)
-- ARGV[1] work id   ARGV[2] token   ARGV[3] completion message ("" = none)
-- ARGV[4] "1" when the item is poison, then ARGV[5] reason, ARGV[6] attempts,
--   ARGV[7] max attempts: the item is copied to the dead-letter stream first.
-- ARGV[8..13], with KEYS[3] (a turn claim, eager dispatch): request id,
--   cache owner, ready bucket, lock timeout ms, node id, max messages: when
--   the completion is delivered, the instance's next turn is locked for the
--   caller by lock_ready_turn (common.lua) if the caller holds its executor
--   and it is ready in that bucket (its wake:orch publish is then left out).
-- Fenced: the token is the current lock AND the item's stream entry is
-- pending (in the group's PEL) for the consumer that locked it.
-- Removes the entry (XACK + XDEL) and the hash. A work item with a ref (see
-- ack_orch.lua) is also removed from its instance's wimap:<instance id>, if
-- the map still points at it.
-- Returns 1 if the completion was delivered, 0 if there was none or its
-- instance is missing or ended (then it is dropped). With a turn claim:
-- {1 | 0, item}, item in fetch_orch.lua's item shape, or {1 | 0} when no
-- turn was locked; a resent ack (the item is gone) whose first run locked a
-- turn gets {0, item} again while the turn is still locked by it.
-- Errors: WORK_NOT_FOUND when wi:<work id> is gone (acked or never existed);
-- LOCK_LOST when the token is not the current lock or the entry is not
-- pending for its consumer (taken back by a reclaim).
local wid, token = ARGV[1], ARGV[2]
local claim = #KEYS >= 3
local function claim_turn(inst, now)
  return lock_ready_turn(inst, ARGV[10], ARGV[9], ARGV[8], KEYS[3], ARGV[11], ARGV[12], tonumber(ARGV[13]), now)
end

-- validate
local f, err = locked_fields(HOLDER_WORK, KEYS[2], wid, token, nil, 'inst', 'ref', 'sess', 'node', 'eid')
if not f then
  if claim and redis.call('EXISTS', KEYS[3]) == 1 then return {0, claim_turn('', 0)} end
  return err
end
if not wq_holds(f) then return redis.error_reply(HOLDER_WORK.lost .. wid) end

-- write
if ARGV[4] == '1' then
  -- a poisoned activity: keep it in the dead-letter stream with its reason
  local w = redis.call('HMGET', KEYS[2], 'body', 'home', 'sess', 'bucket')
  local exec, ev = '0', '0'
  if f.ref and f.ref ~= '' then
    local c = string.find(f.ref, ':', 1, true)
    exec, ev = string.sub(f.ref, 1, c - 1), string.sub(f.ref, c + 1)
  end
  redis.call('XADD', K_DEAD, 'MAXLEN', '~', DEAD_MAXLEN, '*',
    'kind', 'activity', 'instance', f.inst or '', 'execution', exec, 'event', ev,
    'reason', ARGV[5], 'attempts', ARGV[6], 'max_attempts', ARGV[7],
    'body', w[1] or '', 'bucket', w[2] or w[4] or '', 'session', w[3] or '', 'time', I(now_ms()))
end
redis.call('DEL', KEYS[2])
wq_remove(k_wq(f.bucket), f.eid)
lock_owner_move(f.node, '', 'w:' .. wid)
if f.ref and f.ref ~= '' and f.inst and f.inst ~= '' then
  local wm = k_wimap(f.inst)
  if redis.call('HGET', wm, f.ref) == wid then redis.call('HDEL', wm, f.ref) end
end
if f.sess and f.sess ~= '' and redis.call('EXISTS', k_sess(f.sess)) == 1 then
  redis.call('HSET', k_sess(f.sess), 'last', I(now_ms())) -- session activity
end
local delivered, turn = 0, nil
if ARGV[3] ~= '' and f.inst and f.inst ~= '' then
  local woken = {}
  local now = now_ms()
  if deliver(f.inst, ARGV[3], now, woken) then
    delivered = 1
    if claim then
      turn = claim_turn(f.inst, now)
      if turn then woken[ARGV[10]] = nil end
    end
  end
  publish_all(CH_WAKE_ORCH, woken)
end
if claim then return {delivered, turn} end
return delivered
