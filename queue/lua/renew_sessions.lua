-- renew_sessions.lua: heartbeat of one session owner.
-- KEYS[1] prefix "{ns}:"
-- ARGV[1] owner id   ARGV[2] lease ms   ARGV[3] idle timeout ms
-- Extends the lease of every session the owner holds that saw activity
-- within the idle timeout; unpins (deletes) the idle ones, so that any worker
-- may claim them again. Sessions now owned by someone else are forgotten.
-- Returns {renewed, unpinned}.
local owner, lease, idle = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
local renewed, unpinned = 0, 0
for _, sid in ipairs(redis.call('SMEMBERS', k_osess(owner))) do
  local f = redis.call('HMGET', k_sess(sid), 'owner', 'last')
  if f[1] ~= owner then
    redis.call('SREM', k_osess(owner), sid)
  elseif now - num(f[2]) > idle then
    redis.call('DEL', k_sess(sid))
    redis.call('SREM', k_osess(owner), sid)
    unpinned = unpinned + 1
  else
    redis.call('HSET', k_sess(sid), 'ldl', now + lease)
    renewed = renewed + 1
  end
end
return {renewed, unpinned}
