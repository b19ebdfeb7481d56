-- A client's snapshot of a checkpoint, stored if its SHA-256 is the
-- checkpoint's canonical hash (MemoryStore.PutSnapshot).
-- KEYS: streamKeys (store_redis.go). ARGV: 1 keyed hash of the private id;
-- 2 the checkpoint tick; 3 the snapshot's SHA-256, lowercase hex; 4 the snapshot;
-- 5 now in ms, or ""; 6 the ticks a checkpoint is kept; 7 "1" to check
-- only, storing nothing (the reply's last value is then 1 if it would be).
-- Returns {"err", "not_found", "forbidden" or "snapshot_mismatch"} or {"ok",
-- the tick of the stream's snapshot, 1 if it is this one}.

local m = meta_load(KEYS[1])
local pub = m and redis.call("HGET", KEYS[3], ARGV[1])
if not pub then return {"err", "not_found"} end
local t = tonumber(ARGV[2])
if not snap_asked(m, t, pub) then return {"err", "forbidden"} end
if m.snap_t and m.snap_t >= t then return {"ok", m.snap_t, 0} end
local now_t = tick_at(m.created, m.rate, now_ms(ARGV[5]), m.last_t)
if ck_verdict(KEYS[1], t) ~= ARGV[3] or not ck_kept(t, now_t, tonumber(ARGV[6])) then return {"err", "snapshot_mismatch"} end
if ARGV[7] == "1" then return {"ok", t, 1} end
redis.call("HSET", KEYS[1], "snap_t", t, "snap_h", ARGV[3], "snap", ARGV[4], "since_snap", 0, "snap_by", pub)
if m.ck_want <= t then redis.call("HSET", KEYS[1], "ck_want", -1, "ck_ask_pub", "") end
return {"ok", t, 1}
