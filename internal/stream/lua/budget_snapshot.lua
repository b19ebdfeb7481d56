-- A stream's snapshot cost for the checkpoint budget (store_redis_budget.go),
-- on the budget's keys, not a stream's.
-- KEYS: 1 the bytes held; 2 the snapshots' costs (stream -> cost).
-- ARGV: 1 the stream; 2 the cost of its new snapshot, or 0 when it has none.
-- Gives back the cost of the snapshot it had; returns the bytes held.

local old = tonumber(redis.call("ZSCORE", KEYS[2], ARGV[1])) or 0
if ARGV[2] == "0" then
  redis.call("ZREM", KEYS[2], ARGV[1])
else
  redis.call("ZADD", KEYS[2], ARGV[2], ARGV[1])
end
return redis.call("DECRBY", KEYS[1], old)
