-- One sync of the eventstreamd protocol, atomically, on one stream's keys.
-- KEYS: 1 meta (hash), 2 log (stream), 3 ids (hash: keyed hash of private id -> public id),
--       4 seen (zset: public id -> last heard from, ms; connected clients only),
--       5 batches (hash: public id -> last batch hashes, comma-separated)
-- ARGV: 1 now in ms, or "" for Redis's TIME; 2 keyed hash of the private id;
--       3 last known tick; 4 epoch the client gave, or ""; 5 batch hash, or "";
--       6 epoch for a new stream; 7 tick rate for a new stream; 8 max clients;
--       9 max events; 10 page size; 11 "1" if the stream may be created;
--       12 number of events; 13 the epoch of the replica's cache of sealed ticks, or "";
--       14 the first tick it holds; 15 the first tick it does not hold; 16 the page size
--       left beside the cached events; then per event its type and its body, both JSON
--       string literals.
-- Returns {"err", code} or {"ok", public id, t, epoch, tick rate, more, created, connected,
-- appended, events, 1 if the cached ticks were skipped, the first tick the reply covers}.

local function now_ms()
  if ARGV[1] ~= "" then return tonumber(ARGV[1]) end
  local tm = redis.call("TIME")
  return tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
end

local now = now_ms()
local m = redis.call("HMGET", KEYS[1], "epoch", "created", "rate", "last_t", "next_id", "connected", "count", "lid_t", "lid_seq")
local epoch = m[1]
local created = false
local createdAt, rate, lastT, nextID, connected, count, lidT, lidSeq
if not epoch then
  if ARGV[11] ~= "1" then return {"err", "server_full"} end
  created = true
  epoch, createdAt, rate = ARGV[6], now, tonumber(ARGV[7])
  lastT, nextID, connected, count, lidT, lidSeq = 0, 0, 0, 0, 0, 0
else
  createdAt, rate, lastT = tonumber(m[2]), tonumber(m[3]), tonumber(m[4])
  nextID, connected, count = tonumber(m[5]), tonumber(m[6]), tonumber(m[7])
  lidT, lidSeq = tonumber(m[8]), tonumber(m[9])
end

local t = 1
if now > createdAt then t = 1 + math.floor((now - createdAt) * rate / 1000) end
if t < lastT then t = lastT end

local pub = redis.call("HGET", KEYS[3], ARGV[2])
local isNew = not pub
if isNew and nextID >= tonumber(ARGV[8]) then return {"err", "too_many_clients"} end
local connect = isNew or not redis.call("ZSCORE", KEYS[4], pub)
local batches = false
local rep = false
if ARGV[5] ~= "" and not isNew then
  batches = redis.call("HGET", KEYS[5], pub)
  if batches and string.find("," .. batches .. ",", "," .. ARGV[5] .. ",", 1, true) then rep = true end
end
local nev = tonumber(ARGV[12])
local n = 0
if created then n = n + 1 end
if connect then n = n + 1 end
if not rep then n = n + nev end
if count + n > tonumber(ARGV[9]) then return {"err", "too_many_events"} end

-- Every check is done: from here on, the request takes effect.
local function append(tick, typ, origin, body)
  if tick == lidT then lidSeq = lidSeq + 1 else lidT, lidSeq = tick, 1 end
  redis.call("XADD", KEYS[2], tick .. "-" .. lidSeq, "e",
    '{"t":' .. tick .. ',"type":' .. typ .. ',"origin":"' .. origin .. '","body":' .. body .. "}")
  count = count + 1
end

if created then
  redis.call("HSET", KEYS[1], "epoch", epoch, "created", createdAt, "rate", rate)
  append(0, '"_a"', "_", '"' .. epoch .. '"')
end
if isNew then
  nextID = nextID + 1
  pub = tostring(nextID)
  redis.call("HSET", KEYS[3], ARGV[2], pub)
end
redis.call("ZADD", KEYS[4], now, pub)
if connect then
  connected = connected + 1
  append(t, '"_c"', "_", '"' .. pub .. '"')
  if connected == 1 then
    for i = 1, 5 do redis.call("PERSIST", KEYS[i]) end
    redis.call("HDEL", KEYS[1], "empty_since")
  end
end
local appended = 0
if not rep then
  for i = 0, nev - 1 do append(t, ARGV[17 + 2 * i], pub, ARGV[18 + 2 * i]) end
  appended = nev
  if ARGV[5] ~= "" then
    local list = {}
    if batches then for b in string.gmatch(batches, "[^,]+") do list[#list + 1] = b end end
    list[#list + 1] = ARGV[5]
    while #list > 8 do table.remove(list, 1) end
    redis.call("HSET", KEYS[5], pub, table.concat(list, ","))
  end
end
redis.call("HSET", KEYS[1], "last_t", t, "next_id", nextID, "connected", connected, "count", count, "lid_t", lidT, "lid_seq", lidSeq)

-- The reply: events with from <= tick < t, at most a page, cut between ticks.
local from = tonumber(ARGV[3])
if from > t or (ARGV[4] ~= "" and ARGV[4] ~= epoch) then from = 0 end
local page = tonumber(ARGV[10])
-- The replica holds the sealed ticks [ARGV[14], ARGV[15]) of this epoch:
-- they are final, so only what follows them is read here.
local skipped, asked = 0, from
if ARGV[13] == epoch and from == tonumber(ARGV[3]) and from >= tonumber(ARGV[14]) and from < tonumber(ARGV[15]) and tonumber(ARGV[15]) <= t then
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
return {"ok", pub, replyT, epoch, rate, more, c, k, appended, table.concat(out, ","), skipped, asked}
