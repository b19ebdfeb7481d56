-- Drops a dump for the checkpoint budget (memDump.drop), if it is still
-- the one the budget knows by its id: its report keeps the client, with
-- its dump marked dropped (2), so that it is not asked for it again.
-- KEYS: streamKeys (store_redis.go). ARGV: 1 the checkpoint tick; 2 the
-- public id; 3 the dump's id.
-- Returns 1 if it was dropped, 0 if it was gone.

local f = ARGV[1] .. ":" .. ARGV[2]
if redis.call("HGET", KEYS[6], "dv:" .. f) ~= ARGV[3] then return 0 end
redis.call("HDEL", KEYS[6], "d:" .. f, "dv:" .. f)
local reps = reports_load(redis.call("HGET", KEYS[6], "r"))
for _, rep in ipairs(reps) do
  if rep.t == tonumber(ARGV[1]) then
    for _, c in ipairs(rep.clients) do
      if c.pub == ARGV[2] then c.dump = "2" end
    end
  end
end
redis.call("HSET", KEYS[6], "r", reports_save(reps))
return 1
