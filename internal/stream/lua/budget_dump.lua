-- Queues a dump just stored for the checkpoint budget
-- (store_redis_budget.go), on the budget's keys, not a stream's: its
-- entry is scored by a counter, so that the oldest is popped first however
-- the replicas' clocks disagree.
-- KEYS: 1 the dumps (zset); 2 the counter. ARGV: 1 the entry.

redis.call("ZADD", KEYS[1], redis.call("INCR", KEYS[2]), ARGV[1])
return 1
