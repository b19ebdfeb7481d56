-- Claims the streams whose sweep is due, so that each is swept by one
-- replica: their entries in the deadline index move to the claim's score,
-- later than any deadline a sync can set meanwhile (a sync moves an entry
-- only earlier), and no other replica sees them due.
-- KEYS: 1 the index. ARGV: 1 now in ms; 2 the claim's score; 3 the most to claim.
-- Returns the streams claimed.
local due = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", ARGV[1], "LIMIT", 0, tonumber(ARGV[3]))
for _, s in ipairs(due) do redis.call("ZADD", KEYS[1], ARGV[2], s) end
return due
