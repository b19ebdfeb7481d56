-- Presence and expiry of one stream, atomically; safe to run twice at once.
-- KEYS: as sync.lua. ARGV: 1 now in ms, or ""; 2 client timeout in ms; 3 stream TTL in ms.
-- Returns {"gone"} when the stream does not exist (it expired),
-- {"expired"} when this call deleted it, or
-- {"ok", next deadline in ms, tick of the disconnects, public ids disconnected...}.

local function now_ms()
  if ARGV[1] ~= "" then return tonumber(ARGV[1]) end
  local tm = redis.call("TIME")
  return tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
end

local now = now_ms()
local timeout, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
local m = redis.call("HMGET", KEYS[1], "epoch", "created", "rate", "last_t", "connected", "count", "lid_t", "lid_seq", "empty_since")
if not m[1] then return {"gone"} end
local createdAt, rate, lastT = tonumber(m[2]), tonumber(m[3]), tonumber(m[4])
local connected, count, lidT, lidSeq = tonumber(m[5]), tonumber(m[6]), tonumber(m[7]), tonumber(m[8])
local emptySince = tonumber(m[9])

if connected == 0 and emptySince and now >= emptySince + ttl then
  redis.call("DEL", KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
  return {"expired"}
end

local t = 1
if now > createdAt then t = 1 + math.floor((now - createdAt) * rate / 1000) end
if t < lastT then t = lastT end

local silent = redis.call("ZRANGEBYSCORE", KEYS[4], "-inf", now - timeout)
local out = {"ok", 0, t}
if #silent > 0 then
  for _, pub in ipairs(silent) do
    if t == lidT then lidSeq = lidSeq + 1 else lidT, lidSeq = t, 1 end
    redis.call("XADD", KEYS[2], t .. "-" .. lidSeq, "e", '{"t":' .. t .. ',"type":"_d","origin":"_","body":"' .. pub .. '"}')
    redis.call("ZREM", KEYS[4], pub)
    count = count + 1
    connected = connected - 1
    out[#out + 1] = pub
  end
  redis.call("HSET", KEYS[1], "last_t", t, "connected", connected, "count", count, "lid_t", lidT, "lid_seq", lidSeq)
  if connected == 0 then
    emptySince = now
    redis.call("HSET", KEYS[1], "empty_since", now)
    -- Redis deletes the stream by itself if no sweeper does.
    for i = 1, 5 do redis.call("PEXPIRE", KEYS[i], ttl + 1000) end
  end
end

if connected > 0 then
  local first = redis.call("ZRANGE", KEYS[4], 0, 0, "WITHSCORES")
  out[2] = tonumber(first[2]) + timeout
else
  out[2] = (emptySince or now) + ttl
end
return out
