-- abandon_work.lua: release a work item lock; the item becomes fetchable at now+delay.
-- KEYS[1] prefix "{ns}:"   KEYS[2] wi:<work id>
-- ARGV[1] work id   ARGV[2] token   ARGV[3] delay ms (>= 0)
-- ARGV[4] "1" to keep the attempt count, "0" to give the attempt back (att-1, min 0)
-- Fenced like ack_work.lua. The stream entry is removed (XACK + XDEL); the
-- item gets a new entry at the back of its bucket's stream (delay 0) or
-- waits in the delayed set wqd:<bucket> until now + delay. attb (attempts
-- before the entry) becomes the attempt count kept. A session item locked in
-- its owner's node bucket goes back to its home bucket instead when the
-- owner no longer holds the session.
-- Returns 1.
-- Errors: WORK_NOT_FOUND; LOCK_LOST when the token is not the current lock
-- or the entry is not pending for its consumer.
local wid, token = ARGV[1], ARGV[2]

-- validate
local f, err = locked_fields(HOLDER_WORK, KEYS[2], wid, token, nil, 'att', 'node', 'eid', 'sess', 'home')
if not f then return err end
if not wq_holds(f) then return redis.error_reply(HOLDER_WORK.lost .. wid) end

-- decide
local now = now_ms()
local delay = tonumber(ARGV[3])
local att = I(abandoned_attempts(f.att, ARGV[4]))

-- A session item abandoned in a node bucket whose owner no longer holds the
-- session (released meanwhile) goes back to its home bucket.
local bucket = f.bucket
if string.sub(bucket, 1, 2) == 's:' and (f.sess or '') ~= '' and f.home and f.home ~= '' and
    session_owner(f.sess, now) ~= string.sub(bucket, 3) then
  bucket = f.home
  wq_register(bucket)
end

-- write
wq_remove(k_wq(f.bucket), f.eid)
lock_owner_move(f.node, '', 'w:' .. wid)
if delay == 0 then
  wq_append(bucket, wid, {'tok', '', 'ldl', '', 'att', att, 'attb', att, 'node', ''})
else
  wq_delay(bucket, wid, now + delay)
  redis.call('HSET', KEYS[2], 'bucket', bucket, 'tok', '', 'ldl', '', 'att', att, 'attb', att, 'node', '', 'eid', '')
end
return 1
