-- move_sessions.lua: give back the session work of an owner that is gone.
-- KEYS[1] prefix "{ns}:"
-- ARGV[1] mode: "release" (graceful shutdown of ARGV[2]) or "reclaim"
--   (every node-bucket owner that is not a live node)
-- ARGV[2] owner id (release)   ARGV[3] max items moved per owner
-- Release deletes every session the owner holds and moves all items of its
-- node bucket back to their home bucket (a locked item keeps its lock and
-- score: its holder's ack or abandon then applies to the home bucket).
-- Reclaim does the same for owners that are not live nodes and whose
-- sessions' leases have lapsed (a live lease means the owner may still be
-- working); locked items are left until their lock expires.
-- Returns the number of items moved.
local mode, limit = ARGV[1], tonumber(ARGV[3])
local now = now_ms()
local moved = 0

local function move_owner(owner, keep_locked)
  local nbk = k_work('s:' .. owner)
  local r = redis.call('ZRANGE', nbk, 0, limit - 1, 'WITHSCORES')
  local woken = {}
  for i = 1, #r, 2 do
    local wid, score = r[i], r[i + 1]
    local f = redis.call('HMGET', k_wi(wid), 'home', 'tok', 'ldl')
    if not f[1] then
      redis.call('ZREM', nbk, wid)
    elseif not (keep_locked and (f[2] or '') ~= '' and num(f[3]) > now) then
      redis.call('ZREM', nbk, wid)
      redis.call('ZADD', k_work(f[1]), score, wid)
      redis.call('HSET', k_wi(wid), 'bucket', f[1])
      woken[f[1]] = true
      moved = moved + 1
    end
  end
  publish_all(CH_WAKE_WORK, woken)
end

local function drop_sessions(owner, only_lapsed)
  for _, sid in ipairs(redis.call('SMEMBERS', k_osess(owner))) do
    local f = redis.call('HMGET', k_sess(sid), 'owner', 'ldl')
    if f[1] ~= owner then
      redis.call('SREM', k_osess(owner), sid)
    elseif not only_lapsed or num(f[2]) <= now then
      redis.call('DEL', k_sess(sid))
      redis.call('SREM', k_osess(owner), sid)
    end
  end
end

if mode == 'release' then
  drop_sessions(ARGV[2], false)
  move_owner(ARGV[2], false)
  return moved
end

for _, b in ipairs(redis.call('SMEMBERS', K_WORK_BUCKETS)) do
  if string.sub(b, 1, 2) == 's:' then
    local owner = string.sub(b, 3)
    local live = tonumber(redis.call('ZSCORE', K_NODES, owner) or 0) > now
    if not live then
      drop_sessions(owner, true)
      if redis.call('SCARD', k_osess(owner)) == 0 then
        move_owner(owner, true)
        if redis.call('ZCARD', k_work(b)) == 0 then
          redis.call('SREM', K_WORK_BUCKETS, b) -- a dead, empty owner is forgotten
        end
      end
    end
  end
end
return moved
