-- One sync of the eventstreamd protocol, atomically, on one stream's keys.
-- KEYS: streamKeys (store_redis.go): 1 meta (hash), 2 log (stream),
--   3 ids (hash: keyed hash of private id -> public id),
--   4 seen (zset: public id -> last heard from, ms; connected clients only),
--   5 clients (hash: public id -> last batch hashes, comma-separated;
--     "r:" .. public id -> the fair-use buckets: "<syncs> <events> <ms>").
-- ARGV: syncArgs (store_redis.go), in this order:
--   1 now in ms, or ""; 2 keyed hash of the private id; 3 last known tick;
--   4 epoch the client gave, or ""; 5 batch hash, or ""; 6 epoch for a new stream;
--   7 tick rate for a new stream; 8 max clients; 9 max events; 10 max bytes;
--   11 page events; 12 page bytes; 13 "1" if the stream may be created;
--   14 batch ids remembered per client; 15 the epoch of the replica's cache of
--   sealed ticks, or ""; 16 the first tick it holds; 17 the first tick it does not
--   hold; 18 and 19 the page events and bytes left beside the cached events;
--   20 syncs a second a client may make, 21 their burst, 22 events a second
--   a client may post, 23 their burst; 24 the number of events; then per event
--   its type and its body, both JSON string literals.
-- Returns {"err", code} (scriptErrors in store_redis.go), {"err", "rate_limited",
-- "syncs" or "events", wait in ms}, or decodeSyncReply's
-- {"ok", public id, t, epoch, tick rate, more, created, connected, appended, events,
-- 1 if the cached ticks were skipped, the first tick the reply covers}.

local now = now_ms(ARGV[1])
local m = meta_load(KEYS[1])
local created = false
if not m then
  if ARGV[13] ~= "1" then return {"err", "server_full"} end
  created = true
  m = {epoch = ARGV[6], created = now, rate = tonumber(ARGV[7]), last_t = 0,
    next_id = 0, connected = 0, count = 0, lid_t = 0, lid_seq = 0, bytes = 0, tick_bytes = 0}
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
local nev = tonumber(ARGV[24])

-- The fair-use buckets (ratelimit.go): a new client's are full.
local srate, sburst, erate, eburst = tonumber(ARGV[20]), tonumber(ARGV[21]), tonumber(ARGV[22]), tonumber(ARGV[23])
local syncs, evs = sburst, eburst
if not isNew then
  local r = redis.call("HGET", KEYS[5], "r:" .. pub)
  if r then
    local st, et, lt = string.match(r, "^(%S+) (%S+) (%S+)$")
    syncs = refill(tonumber(st), tonumber(lt), now, srate, sburst)
    evs = refill(tonumber(et), tonumber(lt), now, erate, eburst)
  end
end
local posted = nev
if rep then posted = 0 end
if srate > 0 and syncs < 1 then
  return {"err", "rate_limited", "syncs", math.ceil((1 - syncs) / srate * 1000)}
end
if erate > 0 and posted > 0 and evs < posted then
  return {"err", "rate_limited", "events", math.ceil((posted - evs) / erate * 1000)}
end

-- What the request appends, encoded, and checked against the caps before
-- anything is written. A request that appends nothing is always served.
local who = pub or tostring(m.next_id + 1)
local adds, size = {}, 0
local function add(tick, ev)
  adds[#adds + 1] = {tick, ev}
  size = size + #ev
end
if created then add(0, encode_event(0, '"_a"', "_", '"' .. m.epoch .. '"')) end
if connect then add(t, encode_event(t, '"_c"', "_", '"' .. who .. '"')) end
if not rep then
  for i = 0, nev - 1 do add(t, encode_event(t, ARGV[25 + 2 * i], who, ARGV[26 + 2 * i])) end
end
if #adds > 0 and m.count + #adds > tonumber(ARGV[9]) then return {"err", "event_cap"} end
if #adds > 0 and m.bytes + size > tonumber(ARGV[10]) then return {"err", "byte_cap"} end
-- A tick holds at most a page, so that every reply fits one.
local in_tick = 0
if m.lid_t == t then in_tick = m.tick_bytes end
for _, a in ipairs(adds) do
  if a[1] == t then in_tick = in_tick + 1 + #a[2] end
end
if #adds > 0 and in_tick > tonumber(ARGV[12]) + 1 then return {"err", "tick_full"} end

-- Every check is done: from here on, the request takes effect.
if created then redis.call("HSET", KEYS[1], "epoch", m.epoch, "created", m.created, "rate", m.rate) end
if isNew then
  m.next_id = m.next_id + 1
  pub = who
  redis.call("HSET", KEYS[3], ARGV[2], pub)
end
for _, a in ipairs(adds) do log_append(KEYS[2], m, a[1], a[2]) end
redis.call("ZADD", KEYS[4], now, pub)
-- What the buckets hold now; one that is off is not spent (spend, ratelimit.go).
if srate > 0 then syncs = syncs - 1 end
if erate > 0 then evs = evs - posted end
redis.call("HSET", KEYS[5], "r:" .. pub, string.format("%.17g %.17g %d", syncs, evs, now))
if connect then
  m.connected = m.connected + 1
  if m.connected == 1 then
    for _, k in ipairs(KEYS) do redis.call("PERSIST", k) end
    redis.call("HDEL", KEYS[1], "empty_since")
  end
end
local appended = 0
if not rep then
  appended = nev
  if ARGV[5] ~= "" then
    local list = {}
    if batches then for b in string.gmatch(batches, "[^,]+") do list[#list + 1] = b end end
    list[#list + 1] = ARGV[5]
    while #list > tonumber(ARGV[14]) do table.remove(list, 1) end
    redis.call("HSET", KEYS[5], pub, table.concat(list, ","))
  end
end
m.last_t = t
meta_save(KEYS[1], m)

-- The reply: events with from <= tick < t, at most a page, cut between ticks.
local from = tonumber(ARGV[3])
if from > t or (ARGV[4] ~= "" and ARGV[4] ~= m.epoch) then from = 0 end
local page, page_bytes = tonumber(ARGV[11]), tonumber(ARGV[12])
-- The replica holds the sealed ticks [ARGV[16], ARGV[17]) of this epoch:
-- they are final, so only what follows them is read here.
local skipped, asked, must_fit = 0, from, false
if ARGV[15] == m.epoch and from == tonumber(ARGV[3]) and from >= tonumber(ARGV[16]) and from < tonumber(ARGV[17]) and tonumber(ARGV[17]) <= t then
  from, skipped = tonumber(ARGV[17]), 1
  must_fit = tonumber(ARGV[18]) < page -- the cached events are the page's start
  page, page_bytes = tonumber(ARGV[18]), tonumber(ARGV[19])
end
local out, more, replyT = read_page(KEYS[2], from, t, page, page_bytes, must_fit)
local c, k = 0, 0
if created then c = 1 end
if connect then k = 1 end
return {"ok", pub, replyT, m.epoch, m.rate, more, c, k, appended, table.concat(out, ","), skipped, asked}
