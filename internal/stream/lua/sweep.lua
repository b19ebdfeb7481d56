-- Presence and expiry of one stream, atomically; safe to run twice at once.
-- KEYS: streamKeys (store_redis.go). ARGV: 1 now in ms, or ""; 2 client
-- timeout in ms; 3 stream TTL in ms.
-- Returns {"gone"} when the stream does not exist (it expired),
-- {"expired"} when this call deleted it, or
-- {"ok", next deadline in ms, tick of the disconnects, public ids disconnected...}.

local now = now_ms(ARGV[1])
local timeout, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
local m = meta_load(KEYS[1])
if not m then return {"gone"} end

if m.connected == 0 and m.empty_since and now >= m.empty_since + ttl then
  redis.call("DEL", unpack(KEYS))
  return {"expired"}
end

local t = tick_at(m.created, m.rate, now, m.last_t)
local silent = redis.call("ZRANGEBYSCORE", KEYS[4], "-inf", now - timeout)
local out = {"ok", 0, t}
if #silent > 0 then
  for _, pub in ipairs(silent) do
    log_append(KEYS[2], m, t, encode_event(t, '"_d"', "_", '"' .. pub .. '"'))
    redis.call("ZREM", KEYS[4], pub)
    redis.call("ZREM", KEYS[7], pub)
    redis.call("ZADD", KEYS[8], t, pub) -- admission.go: forgetLess
    m.connected = m.connected - 1
    out[#out + 1] = pub
  end
  m.last_t = t
  meta_save(KEYS[1], m)
  if m.connected == 0 then
    m.empty_since = now
    redis.call("HSET", KEYS[1], "empty_since", now)
    -- Redis deletes the stream by itself if no sweeper does.
    for _, k in ipairs(KEYS) do redis.call("PEXPIRE", k, ttl + 1000) end
  end
end

if m.connected > 0 then
  local first = redis.call("ZRANGE", KEYS[4], 0, 0, "WITHSCORES")
  out[2] = tonumber(first[2]) + timeout
else
  out[2] = (m.empty_since or now) + ttl
end
return out
