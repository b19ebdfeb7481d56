-- A client's desync dump of a checkpoint, stored if a desync report of the
-- checkpoint asked it for one (MemoryStore.PutDump).
-- KEYS: streamKeys (store_redis.go). ARGV: 1 keyed hash of the private id;
-- 2 the checkpoint tick; 3 the dump; 4 the id the checkpoint budget knows
-- it by; 5 "1" to check only, storing nothing.
-- Returns {"err", "not_found" or "forbidden"} or {"ok", its public id}.

local pub = redis.call("HGET", KEYS[3], ARGV[1])
if not pub then return {"err", "not_found"} end
local t = tonumber(ARGV[2])
local reps = reports_load(redis.call("HGET", KEYS[6], "r"))
for _, rep in ipairs(reps) do
  if rep.t == t then
    for _, c in ipairs(rep.clients) do
      if c.pub == pub then
        if ARGV[5] == "1" then return {"ok", pub} end
        c.dump = "1"
        redis.call("HSET", KEYS[6], "r", reports_save(reps), "d:" .. t .. ":" .. pub, ARGV[3], "dv:" .. t .. ":" .. pub, ARGV[4])
        return {"ok", pub}
      end
    end
    return {"err", "forbidden"} -- the report did not ask this client
  end
end
return {"err", "not_found"}
