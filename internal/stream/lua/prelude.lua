-- The rules every script shares, prepended to each at load (newScript in
-- store_redis.go). Each rule written here is mirrored in Go, as named.

-- now_ms returns arg (a time in Unix ms, given by tests' fake clock) or,
-- when it is "", Redis's own clock, so that replicas' skew cannot matter.
local function now_ms(arg)
  if arg ~= "" then return tonumber(arg) end
  local tm = redis.call("TIME")
  return tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
end

-- tick_at is the tick formula. Mirrored in tickAt (tick.go).
local function tick_at(created, rate, now, last)
  local t = 1
  if now > created then t = 1 + math.floor((now - created) * rate / 1000) end
  if t < last then t = last end
  return t
end

-- encode_event is the event's JSON: typ and body are JSON string literals,
-- origin needs no escaping ("_" or a public id). Mirrored in appendEvent
-- (event_json.go).
local function encode_event(t, typ, origin, body)
  return '{"t":' .. t .. ',"type":' .. typ .. ',"origin":"' .. origin .. '","body":' .. body .. '}'
end

-- A stream's meta hash (KEYS[1] of every stream script), as a table.
local META = {"epoch", "created", "rate", "last_t", "next_id", "connected", "count", "lid_t", "lid_seq", "empty_since"}

local function meta_load(key)
  local v = redis.call("HMGET", key, unpack(META))
  if not v[1] then return nil end
  return {epoch = v[1], created = tonumber(v[2]), rate = tonumber(v[3]), last_t = tonumber(v[4]),
    next_id = tonumber(v[5]), connected = tonumber(v[6]), count = tonumber(v[7]),
    lid_t = tonumber(v[8]), lid_seq = tonumber(v[9]), empty_since = tonumber(v[10])}
end

-- meta_save writes back what the scripts change of a stream's meta.
local function meta_save(key, m)
  redis.call("HSET", key, "last_t", m.last_t, "next_id", m.next_id, "connected", m.connected,
    "count", m.count, "lid_t", m.lid_t, "lid_seq", m.lid_seq)
end

-- log_append appends one event to the log at key. Entry ids are
-- <tick>-<n>, n counting the tick's events from 1, so that a range of
-- ticks is a range of ids.
local function log_append(key, m, t, typ, origin, body)
  if t == m.lid_t then m.lid_seq = m.lid_seq + 1 else m.lid_t, m.lid_seq = t, 1 end
  redis.call("XADD", key, t .. "-" .. m.lid_seq, "e", encode_event(t, typ, origin, body))
  m.count = m.count + 1
end

