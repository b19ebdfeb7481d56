-- Moves a stream's entry in the deadline index after a sweep, unless a sync
-- moved it earlier meanwhile. KEYS: 1 the index. ARGV: 1 stream, 2 the score
-- the sweep saw, 3 the next deadline, or "" to remove the entry.
-- Returns 1 if this call changed the entry.
local cur = redis.call("ZSCORE", KEYS[1], ARGV[1])
if ARGV[3] == "" then
  if cur and tonumber(cur) == tonumber(ARGV[2]) then return redis.call("ZREM", KEYS[1], ARGV[1]) end
  return 0
end
if cur and tonumber(cur) == tonumber(ARGV[2]) then
  redis.call("ZADD", KEYS[1], ARGV[3], ARGV[1])
  return 1
end
return redis.call("ZADD", KEYS[1], "LT", "CH", ARGV[3], ARGV[1])
