-- One sync of the eventstreamd protocol, atomically, on one stream's keys.
-- KEYS: streamKeys (store_redis.go): 1 meta (hash), 2 log (stream),
--   3 ids (hash: keyed hash of private id -> public id),
--   4 seen (zset: public id -> last heard from, ms; connected clients only),
--   5 batches (hash: public id -> last batch hashes, comma-separated).
-- ARGV: syncArgs (store_redis.go), in this order:
--   1 now in ms, or ""; 2 keyed hash of the private id; 3 last known tick;
--   4 epoch the client gave, or ""; 5 batch hash, or ""; 6 epoch for a new stream;
--   7 tick rate for a new stream; 8 max clients; 9 max events; 10 page size;
--   11 "1" if the stream may be created; 12 batch ids remembered per client;
--   13 the epoch of the replica's cache of sealed ticks, or ""; 14 the first tick
--   it holds; 15 the first tick it does not hold; 16 the page size left beside the
--   cached events; 17 the number of events; then per event its type and its body,
--   both JSON string literals.
-- Returns {"err", code} (scriptErrors in store_redis.go) or decodeSyncReply's
-- {"ok", public id, t, epoch, tick rate, more, created, connected, appended, events,
-- 1 if the cached ticks were skipped, the first tick the reply covers}.

local now = now_ms(ARGV[1])
local m = meta_load(KEYS[1])
local created = false
if not m then
  if ARGV[11] ~= "1" then return {"err", "server_full"} end
  created = true
  m = {epoch = ARGV[6], created = now, rate = tonumber(ARGV[7]), last_t = 0,
    next_id = 0, connected = 0, count = 0, lid_t = 0, lid_seq = 0}
end
local t = tick_at(m.created, m.rate, now, m.last_t)

local pub = redis.call("HGET", KEYS[3], ARGV[2])
local isNew = not pub
if isNew and m.next_id >= tonumber(ARGV[8]) then return {"err", "client_cap"} end
local connect = isNew or not redis.call("ZSCORE", KEYS[4], pub)
local batches = false
local rep = false
if ARGV[5] ~= "" and not isNew then
  batches = redis.call("HGET", KEYS[5], pub)
  if batches and string.find("," .. batches .. ",", "," .. ARGV[5] .. ",", 1, true) then rep = true end
end
local nev = tonumber(ARGV[17])
local n = 0
if created then n = n + 1 end
if connect then n = n + 1 end
if not rep then n = n + nev end
if m.count + n > tonumber(ARGV[9]) then return {"err", "event_cap"} end

-- Every check is done: from here on, the request takes effect.
if created then
  redis.call("HSET", KEYS[1], "epoch", m.epoch, "created", m.created, "rate", m.rate)
  log_append(KEYS[2], m, 0, '"_a"', "_", '"' .. m.epoch .. '"')
end
if isNew then
  m.next_id = m.next_id + 1
  pub = tostring(m.next_id)
  redis.call("HSET", KEYS[3], ARGV[2], pub)
end
redis.call("ZADD", KEYS[4], now, pub)
if connect then
  m.connected = m.connected + 1
  log_append(KEYS[2], m, t, '"_c"', "_", '"' .. pub .. '"')
  if m.connected == 1 then
    for _, k in ipairs(KEYS) do redis.call("PERSIST", k) end
    redis.call("HDEL", KEYS[1], "empty_since")
  end
end
local appended = 0
if not rep then
  for i = 0, nev - 1 do log_append(KEYS[2], m, t, ARGV[18 + 2 * i], pub, ARGV[19 + 2 * i]) end
  appended = nev
  if ARGV[5] ~= "" then
    local list = {}
    if batches then for b in string.gmatch(batches, "[^,]+") do list[#list + 1] = b end end
    list[#list + 1] = ARGV[5]
    while #list > tonumber(ARGV[12]) do table.remove(list, 1) end
    redis.call("HSET", KEYS[5], pub, table.concat(list, ","))
  end
end
m.last_t = t
meta_save(KEYS[1], m)

-- The reply: events with from <= tick < t, at most a page, cut between ticks.
local from = tonumber(ARGV[3])
if from > t or (ARGV[4] ~= "" and ARGV[4] ~= m.epoch) then from = 0 end
local page = tonumber(ARGV[10])
-- The replica holds the sealed ticks [ARGV[14], ARGV[15]) of this epoch:
-- they are final, so only what follows them is read here.
local skipped, asked = 0, from
if ARGV[13] == m.epoch and from == tonumber(ARGV[3]) and from >= tonumber(ARGV[14]) and from < tonumber(ARGV[15]) and tonumber(ARGV[15]) <= t then
  from, page, skipped = tonumber(ARGV[15]), tonumber(ARGV[16]), 1
end
local entries = redis.call("XRANGE", KEYS[2], from .. "-0", "(" .. t .. "-0", "COUNT", page + 1)
local function tickOf(id) return tonumber(string.match(id, "^(%d+)-")) end
local out = {}
local more, replyT = 0, t
if #entries > page then
  local first, cut = tickOf(entries[1][1]), tickOf(entries[page + 1][1])
  if cut == first then
    -- One tick larger than a page is sent whole.
    local all = redis.call("XRANGE", KEYS[2], first .. "-0", first .. "-18446744073709551615")
    for i, e in ipairs(all) do out[i] = e[2][2] end
    local nxt = redis.call("XRANGE", KEYS[2], "(" .. first .. "-18446744073709551615", "(" .. t .. "-0", "COUNT", 1)
    if #nxt > 0 then more, replyT = 1, tickOf(nxt[1][1]) end
  else
    for i = 1, page do
      if tickOf(entries[i][1]) >= cut then break end
      out[i] = entries[i][2][2]
    end
    more, replyT = 1, cut
  end
else
  for i, e in ipairs(entries) do out[i] = e[2][2] end
end
local c, k = 0, 0
if created then c = 1 end
if connect then k = 1 end
return {"ok", pub, replyT, m.epoch, m.rate, more, c, k, appended, table.concat(out, ","), skipped, asked}
