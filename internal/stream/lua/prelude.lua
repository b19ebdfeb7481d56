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

-- refill is the fair-use rule's token bucket: the tokens of a bucket that
-- held tokens at last, at now (ms), filled at rate a second up to burst.
-- Mirrored in refill (ratelimit.go).
local function refill(tokens, last, now, rate, burst)
  if now > last then tokens = tokens + (now - last) * rate / 1000 end
  if tokens > burst then tokens = burst end
  return tokens
end

-- encode_event is the event's JSON: typ and body are JSON string literals,
-- origin needs no escaping ("_" or a public id). Mirrored in appendEvent
-- (event_json.go).
local function encode_event(t, typ, origin, body)
  return '{"t":' .. t .. ',"type":' .. typ .. ',"origin":"' .. origin .. '","body":' .. body .. '}'
end

-- A stream's meta hash (KEYS[1] of every stream script), as a table.
-- count and bytes are the retained events'; since_snap counts the events
-- appended since the last snapshot was stored; compacted_to is the last
-- tick compacted (-1: none), stored as the field "floor", the name the
-- streams already in Redis hold it under; snap_t the snapshot's tick; cks and ck_j the open
-- and the judged checkpoints (lua/checkpoint.lua) and ck_due the first tick
-- one is due to be judged (-1: none);
-- ck_want, ck_want_h, ck_ask_pub and ck_ask_until the snapshot asked for;
-- dumps the clients to be asked for a dump (memCheckpoints in
-- store_memory_checkpoint.go); snap_by the client whose snapshot is kept;
-- last_join the tick of the latest "_c" (memStream.lastJoin); buckets the
-- stream's buckets (ratelimit.go), "<bytes> <joins> <ms>".
local META = {"epoch", "created", "rate", "last_t", "next_id", "connected", "count", "lid_t", "lid_seq", "empty_since",
  "bytes", "tick_bytes", "since_snap", "floor", "snap_t", "cks", "ck_want", "ck_ask_pub", "ck_ask_until",
  "ck_due", "ck_want_h", "dumps", "ck_j", "snap_by", "last_join", "buckets"}

local function meta_load(key)
  local v = redis.call("HMGET", key, unpack(META))
  if not v[1] then return nil end
  return {epoch = v[1], created = tonumber(v[2]), rate = tonumber(v[3]), last_t = tonumber(v[4]),
    next_id = tonumber(v[5]), connected = tonumber(v[6]), count = tonumber(v[7]),
    lid_t = tonumber(v[8]), lid_seq = tonumber(v[9]), empty_since = tonumber(v[10]),
    bytes = tonumber(v[11]) or 0, tick_bytes = tonumber(v[12]) or 0,
    since_snap = tonumber(v[13]) or 0, compacted_to = tonumber(v[14]) or -1, snap_t = tonumber(v[15]),
    cks = v[16] or "", ck_want = tonumber(v[17]) or -1, ck_ask_pub = v[18] or "", ck_ask_until = tonumber(v[19]) or 0,
    ck_due = tonumber(v[20]) or -1, ck_want_h = v[21] or "", dumps = tonumber(v[22]) or 0, ck_j = v[23] or "",
    snap_by = v[24] or "", last_join = tonumber(v[25]) or 0, buckets = v[26]}
end

-- meta_save writes back what the scripts change of a stream's meta.
local function meta_save(key, m)
  if m.buckets then
    redis.call("HSET", key, "last_t", m.last_t, "next_id", m.next_id, "connected", m.connected,
      "count", m.count, "lid_t", m.lid_t, "lid_seq", m.lid_seq, "bytes", m.bytes, "tick_bytes", m.tick_bytes,
      "since_snap", m.since_snap, "buckets", m.buckets)
    return
  end
  redis.call("HSET", key, "last_t", m.last_t, "next_id", m.next_id, "connected", m.connected,
    "count", m.count, "lid_t", m.lid_t, "lid_seq", m.lid_seq, "bytes", m.bytes, "tick_bytes", m.tick_bytes,
    "since_snap", m.since_snap)
end

-- log_append appends one encoded event of tick t to the log at key. Entry
-- ids are <tick>-<n>, n counting the tick's events from 1, so that a range
-- of ticks is a range of ids.
-- m.tick_bytes counts the bytes of the events of tick m.lid_t, each with
-- a comma (memStream.tickBytes).
local function log_append(key, m, t, ev)
  if t == m.lid_t then
    m.lid_seq = m.lid_seq + 1
  else
    m.lid_t, m.lid_seq, m.tick_bytes = t, 1, 0
  end
  redis.call("XADD", key, t .. "-" .. m.lid_seq, "e", ev)
  m.count = m.count + 1
  m.since_snap = m.since_snap + 1
  m.bytes = m.bytes + #ev
  m.tick_bytes = m.tick_bytes + 1 + #ev
end

-- reply_start returns the first tick of a reply at tick t to a client that
-- has seen the ticks below known of epoch ("" when it does not say), and
-- the tick of the snapshot the reply starts after, or -1: 0 when the client
-- is behind a reset (ahead of t, or of another epoch), so that it is sent
-- the whole stream; after the snapshot when the ticks it asks for are
-- compacted. Mirrored in memStream.replyStart (store_memory.go).
local function reply_start(m, known, epoch, t)
  local from = known
  if from > t or (epoch ~= "" and epoch ~= m.epoch) then from = 0 end
  if m.compacted_to >= 0 and from <= m.compacted_to then return m.snap_t + 1, m.snap_t end
  return from, -1
end

local function tick_of(id) return tonumber(string.match(id, "^(%d+)-")) end

-- read_page reads the events of the log at key with from <= tick < t: at
-- most page events and page_bytes bytes (their JSON, with a comma between
-- each), cut before the tick that does not fit. A first tick larger than
-- that is read whole, unless must_fit (the reply holds events already).
-- It reads in chunks, so that Redis never holds much more than a page.
-- Mirrored in memStream.page (store_memory.go).
-- Returns the events, 1 if some were left out, and the reply's t.
local function read_page(key, from, t, page, page_bytes, must_fit)
  local out, bytes = {}, -1
  local first, cur, cur_start = nil, nil, 1
  local cursor = from .. "-0"
  while true do
    local entries = redis.call("XRANGE", key, cursor, "(" .. t .. "-0", "COUNT", 128)
    if #entries == 0 then return out, 0, t end
    for _, e in ipairs(entries) do
      local et, ev = tick_of(e[1]), e[2][2]
      if first == nil then first = et end
      if et ~= cur then cur, cur_start = et, #out + 1 end
      if #out + 1 > page or bytes + 1 + #ev > page_bytes then
        if et ~= first or must_fit then
          for i = #out, cur_start, -1 do out[i] = nil end
          return out, 1, et
        end
      end
      out[#out + 1] = ev
      bytes = bytes + 1 + #ev
    end
    cursor = "(" .. entries[#entries][1]
  end
end

