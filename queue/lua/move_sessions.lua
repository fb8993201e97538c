-- move_sessions.lua: give back the session work of an owner that is gone.
-- KEYS[1] prefix "{ns}:"
-- ARGV[1] mode: "release" (graceful shutdown of ARGV[2]) or "reclaim"
--   (every node-bucket owner that is not a live node)
-- ARGV[2] owner id (release)   ARGV[3] max items moved per owner
-- Release deletes every session the owner holds and moves the items of its
-- node bucket back to their home bucket: each gets a new entry at the back
-- of the home bucket's stream (delayed ones keep their due time). Reclaim
-- does the same for owners that are not live nodes and whose sessions'
-- leases have lapsed (a live lease means the owner may still be working).
-- Either way a live lock stays where it is (its stream entry is pending in
-- the node stream, which its holder's ack, renew and abandon fence on)
-- until it is acked or abandoned, or expires and a later reclaim moves it;
-- an expired lock counts as an attempt when moved.
-- Returns the number of items moved.
local mode, limit = ARGV[1], tonumber(ARGV[3])
local now = now_ms()
local moved = 0

local function move_owner(owner)
  local nb = node_bucket(owner)
  local key, dk = k_wq(nb), k_wqd(nb)
  -- items in the node stream (ready, or delivered: locked or not)
  for _, e in ipairs(redis.call('XRANGE', key, '-', '+', 'COUNT', I(limit))) do
    local eid, wid = e[1], e[2][2]
    local f = redis.call('HMGET', k_wi(wid), 'home', 'tok', 'ldl', 'bucket', 'eid', 'attb')
    if not f[1] or f[4] ~= nb or f[5] ~= eid then
      wq_remove(key, eid)
    elseif not ((f[2] or '') ~= '' and num(f[3]) > now) then
      local _, dc = wq_pel(key, eid)
      wq_remove(key, eid)
      wq_register(f[1])
      local attb = num(f[6])
      if dc and (f[2] or '') ~= '' then attb = attb + dc end -- an expired lock was an attempt
      wq_append(f[1], wid, {'attb', I(attb), 'tok', '', 'ldl', ''})
      moved = moved + 1
    end
  end
  -- items waiting in the node bucket's delayed set keep their due time
  local r = redis.call('ZRANGE', dk, '0', I(limit - 1), 'WITHSCORES')
  for i = 1, #r, 2 do
    local wid, due = r[i], r[i + 1]
    redis.call('ZREM', dk, wid)
    local home = redis.call('HGET', k_wi(wid), 'home')
    if home then
      wq_register(home)
      wq_delay(home, wid, tonumber(due))
      redis.call('HSET', k_wi(wid), 'bucket', home, 'eid', '')
      moved = moved + 1
    end
  end
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
  move_owner(ARGV[2])
  return moved
end

for _, b in ipairs(redis.call('SMEMBERS', K_WORK_BUCKETS)) do
  if string.sub(b, 1, 2) == 's:' then
    local owner = string.sub(b, 3)
    local live = tonumber(redis.call('ZSCORE', K_NODES, owner) or 0) > now
    if not live then
      drop_sessions(owner, true)
      if redis.call('SCARD', k_osess(owner)) == 0 then
        move_owner(owner)
        if redis.call('XLEN', k_wq(b)) == 0 and redis.call('ZCARD', k_wqd(b)) == 0 then
          redis.call('SREM', K_WORK_BUCKETS, b) -- a dead, empty owner is forgotten
        end
      end
    end
  end
end
return moved
