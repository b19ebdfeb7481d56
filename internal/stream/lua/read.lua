-- A read of a stream's events as a sync would reply them, without a client
-- (MemoryStore.Read): nothing is written but the tick it issues, last_t, so
-- that a clock that steps back cannot stamp an event below it.
-- KEYS: streamKeys (store_redis.go). ARGV: 1 now in ms, or ""; 2 last known
-- tick; 3 the epoch the reader gave, or ""; 4 page events; 5 page bytes.
-- Returns {"err", "not_found"} or {"ok", t, epoch, tick rate, more, events, base or -1}.

local m = meta_load(KEYS[1])
if not m then return {"err", "not_found"} end
local t = tick_at(m.created, m.rate, now_ms(ARGV[1]), m.last_t)
if t > m.last_t then redis.call("HSET", KEYS[1], "last_t", t) end
local from, base = reply_start(m, tonumber(ARGV[2]), ARGV[3], t)
local out, more, replyT = read_page(KEYS[2], from, t, tonumber(ARGV[4]), tonumber(ARGV[5]), false)
return {"ok", replyT, m.epoch, m.rate, more, table.concat(out, ","), base}
