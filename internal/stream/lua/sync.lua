-- One sync of the eventstreamd protocol, atomically, on one stream's keys.
-- KEYS: streamKeys (store_redis.go): 1 meta (hash), 2 log (stream),
--   3 ids (hash: keyed hash of private id -> public id),
--   4 seen (zset: public id -> last heard from, ms; connected clients only),
--   5 clients (hash: public id -> last batch hashes, comma-separated;
--     "r:" .. public id -> the fair-use buckets: "<syncs> <events> <ms>";
--     "v:<checkpoint>:<public id>" -> its hash report; "d:" .. public id ->
--     "<checkpoint> <tick>": the dump it owes, asked for from that tick),
--   6 desyncs (hash: the desync reports and dumps, lua/checkpoint.lua),
--   7 joined (zset: public id -> the tick of its latest "_c"; connected
--     clients only; one of a stream older than the key is not in it, and
--     counts as joined at 0),
--   8 left (zset: public id -> the tick of its latest "_d"; disconnected
--     clients only, the ones a new id may take the place of, admission.go).
--   KEYS[5] also holds "k:" .. public id -> the keyed hash of its private id.
-- ARGV: syncArgs (store_redis.go), in this order:
--   1 now in ms, or ""; 2 keyed hash of the private id; 3 last known tick;
--   4 epoch the client gave, or ""; 5 batch hash, or ""; 6 epoch for a new stream;
--   7 tick rate for a new stream; 8 max clients; 9 max events; 10 max bytes;
--   11 page events; 12 page bytes; 13 "1" if the stream may be created;
--   14 batch ids remembered per client; 15 the epoch of the replica's cache of
--   sealed ticks, or ""; 16 the first tick it holds; 17 the first tick it does not
--   hold; 18 and 19 the page events and bytes left beside the cached events;
--   20 syncs a second a client may make, 21 their burst, 22 events a second
--   a client may post, 23 their burst; 24 the number of events; 25 the
--   checkpoint interval (0: off); 26 the quorum; 27 snapshot every (events);
--   28 the ticks a checkpoint waits to be judged; 29 the ticks one is kept;
--   30 the ticks history is retained; 31 the number of hash reports;
--   32 the most checkpoints kept, 33 desync reports kept, 34 clients asked
--   for a dump per report (checkpoint.go); 35 the most ids a stream knows
--   (admission.go); 36 bytes a second all of a stream's clients may post,
--   37 their burst; 38 new ids a second a stream takes, 39 their burst
--   (ratelimit.go); 40 "1" if only a known id may sync (SyncRequest.KnownOnly);
--   41 the ticks of the checkpoint voter tenure (Config.voter);
--   then per event its type and its body, both JSON string
--   literals; then per hash report its tick and its hash.
-- Returns {"err", code} (scriptErrors in store_redis.go), {"err", "rate_limited",
-- "syncs" or "events", wait in ms}, or decodeSyncReply's
-- {"ok", public id, t, epoch, tick rate, more, created, connected, appended, events,
-- 1 if the cached ticks were skipped, the first tick the reply covers,
-- the checkpoint whose snapshot is asked for or -1, the one whose dump is or -1,
-- the base or -1, checkpoints judged, clients diverged, events compacted}.

local now = now_ms(ARGV[1])
local m = meta_load(KEYS[1])
local nev = tonumber(ARGV[24])
-- A post to another epoch, or to a stream that is gone, applies nothing
-- (SyncRequest.misdirected in store.go).
if nev > 0 and ARGV[4] ~= "" and (not m or ARGV[4] ~= m.epoch) then return {"err", "epoch_mismatch"} end
local created = false
if not m then
  if ARGV[13] ~= "1" then return {"err", "server_full"} end
  created = true
  m = {epoch = ARGV[6], created = now, rate = tonumber(ARGV[7]), last_t = 0,
    next_id = 0, connected = 0, count = 0, lid_t = 0, lid_seq = 0, bytes = 0, tick_bytes = 0,
    since_snap = 0, compacted_to = -1, cks = "", ck_want = -1, ck_ask_pub = "", ck_ask_until = 0,
    ck_due = -1, ck_want_h = "", dumps = 0, ck_j = ""}
end
local t = tick_at(m.created, m.rate, now, m.last_t)

local pub = redis.call("HGET", KEYS[3], ARGV[2])
local isNew = not pub
if isNew and ARGV[40] == "1" then return {"err", "new_client"} end
local connect = isNew or not redis.call("ZSCORE", KEYS[4], pub)
-- Admission (Config.admit, admission.go): the cap counts the clients
-- connected now; the ids a stream knows are bounded too.
-- A new id that finds the most ids remembered takes the place of the one
-- disconnected longest (forgetLess; memStream.forgettable), or is refused
-- when every one is connected.
if connect and m.connected >= tonumber(ARGV[8]) then return {"err", "client_cap"} end
local forget = false
if isNew and redis.call("HLEN", KEYS[3]) >= tonumber(ARGV[35]) then
  local first = redis.call("ZRANGE", KEYS[8], 0, 0, "WITHSCORES")
  if #first == 0 then return {"err", "client_cap"} end
  for _, p in ipairs(redis.call("ZRANGEBYSCORE", KEYS[8], first[2], first[2])) do
    if not forget or pub_less(p, forget) then forget = p end
  end
end
local batches = false
local rep = false
if ARGV[5] ~= "" and not isNew then
  batches = redis.call("HGET", KEYS[5], pub)
  if batches and string.find("," .. batches .. ",", "," .. ARGV[5] .. ",", 1, true) then rep = true end
end
local EV = 42 -- the first event's ARGV

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
local server_bytes = size -- the rest of size, the client's events'
if not rep then
  for i = 0, nev - 1 do add(t, encode_event(t, ARGV[EV + 2 * i], who, ARGV[EV + 1 + 2 * i])) end
end
local posted_bytes = size - server_bytes
-- The stream's buckets (ratelimit.go: streamLimited): a new stream's are full.
local brate, bburst, jrate, jburst = tonumber(ARGV[36]), tonumber(ARGV[37]), tonumber(ARGV[38]), tonumber(ARGV[39])
local sbytes, sjoins = bburst, jburst
if m.buckets then
  local b, j, at = string.match(m.buckets, "^(%S+) (%S+) (%S+)$")
  sbytes = refill(tonumber(b), tonumber(at), now, brate, bburst)
  sjoins = refill(tonumber(j), tonumber(at), now, jrate, jburst)
end
if jrate > 0 and isNew and sjoins < 1 then
  return {"err", "rate_limited", "new clients", math.ceil((1 - sjoins) / jrate * 1000)}
end
if brate > 0 and posted_bytes > 0 and sbytes < posted_bytes then
  return {"err", "rate_limited", "stream bytes", math.ceil((posted_bytes - sbytes) / brate * 1000)}
end
-- Compaction (memStream.compact): the events at or below the snapshot's
-- tick older than the history retained go, a page at most; none with
-- snapshot every 0 (full history). Saved at once: the request may still
-- fail, and compaction stands regardless.
local compacted = 0
if m.snap_t and tonumber(ARGV[27]) > 0 then
  local target = math.min(m.snap_t, t - tonumber(ARGV[30]) - 1)
  if target > m.compacted_to then
    local out, more, next_t = read_page(KEYS[2], 0, target + 1, tonumber(ARGV[11]), tonumber(ARGV[12]), false)
    local freed = 0
    for _, ev in ipairs(out) do freed = freed + #ev end
    m.compacted_to = target
    if more == 1 then m.compacted_to = next_t - 1 end
    if #out > 0 then redis.call("XTRIM", KEYS[2], "MINID", (m.compacted_to + 1) .. "-0") end
    compacted, m.count, m.bytes = #out, m.count - #out, m.bytes - freed
    redis.call("HSET", KEYS[1], "floor", m.compacted_to, "count", m.count, "bytes", m.bytes)
  end
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
if forget then
  -- The forgotten id's mapping and its state (KEYS[5]); its votes are
  -- moot, as it is not connected (connected_votes).
  local priv = redis.call("HGET", KEYS[5], "k:" .. forget)
  if priv then redis.call("HDEL", KEYS[3], priv) end
  redis.call("HDEL", KEYS[5], forget, "r:" .. forget, "k:" .. forget)
  if redis.call("HDEL", KEYS[5], "d:" .. forget) == 1 then
    m.dumps = m.dumps - 1
    redis.call("HSET", KEYS[1], "dumps", m.dumps)
  end
  redis.call("ZREM", KEYS[8], forget)
end
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
redis.call("HSET", KEYS[5], "r:" .. pub, string.format("%.17g %.17g %d", syncs, evs, now), "k:" .. pub, ARGV[2])
-- The stream's, written when spent: refilled later, an older state gives
-- the same tokens.
if (brate > 0 and posted_bytes > 0) or (jrate > 0 and isNew) then
  if brate > 0 then sbytes = sbytes - posted_bytes end
  if jrate > 0 and isNew then sjoins = sjoins - 1 end
  m.buckets = string.format("%.17g %.17g %d", sbytes, sjoins, now)
end
if connect then
  m.connected = m.connected + 1
  m.last_join = t
  redis.call("HSET", KEYS[1], "last_join", t)
  redis.call("ZADD", KEYS[7], t, pub)
  if not isNew then redis.call("ZREM", KEYS[8], pub) end
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
-- Checkpoints (memStream.checkpoint).
local snap_ask, dump_ask, judged, diverged = -1, -1, 0, 0
local N = tonumber(ARGV[25])
local nrep = tonumber(ARGV[31])
local reports = nrep > 0 and (ARGV[4] == "" or ARGV[4] == m.epoch) -- those of an older epoch are moot
if N > 0 and (reports or (m.ck_due >= 0 and t >= m.ck_due)) then
  local quorum, snap_every = tonumber(ARGV[26]), tonumber(ARGV[27])
  local judge_ticks, keep_ticks = tonumber(ARGV[28]), tonumber(ARGV[29])
  local max_checkpoints, max_reports, max_dumps = tonumber(ARGV[32]), tonumber(ARGV[33]), tonumber(ARGV[34])
  local tenure = tonumber(ARGV[41])
  local open = cks_load(m.cks)
  local was = {m.ck_j, m.ck_due, m.ck_want, m.dumps}
  local reps = nil -- the desync reports, loaded when needed

  -- voters returns the connected clients that vote on checkpoint ck
  -- (ck_voter): all of them but those that joined too late.
  local function voters(ck)
    local pubs = redis.call("ZRANGE", KEYS[4], 0, -1)
    if ck_voter(m.last_join, ck, tenure) or #pubs == 0 then return pubs end
    local late, out = {}, {}
    for _, p in ipairs(redis.call("ZRANGEBYSCORE", KEYS[7], "(" .. ck_voter_until(ck, tenure), "+inf")) do late[p] = true end
    for _, p in ipairs(pubs) do
      if not late[p] then out[#out + 1] = p end
    end
    return out
  end
  -- eligible mirrors memStream.eligible: how many clients vote on ck, in
  -- O(log n) (a report of each client asks).
  local function eligible(ck)
    if ck_voter(m.last_join, ck, tenure) then return m.connected end
    return m.connected - redis.call("ZCOUNT", KEYS[7], "(" .. ck_voter_until(ck, tenure), "+inf")
  end
  -- connected_votes mirrors memStream.votes: {public id, hash} in order,
  -- and how many voters there are.
  local function connected_votes(ck)
    local pubs = voters(ck)
    table.sort(pubs, pub_less)
    local f = {}
    for i, p in ipairs(pubs) do f[i] = "v:" .. ck .. ":" .. p end
    local out = {}
    if #f == 0 then return out, 0 end
    local hs = redis.call("HMGET", KEYS[5], unpack(f))
    for i, p in ipairs(pubs) do
      if hs[i] then out[#out + 1] = {p, hs[i]} end
    end
    return out, #pubs
  end
  local function ask_dump(rep, p, h)
    if #rep.clients >= max_dumps then return end
    for _, c in ipairs(rep.clients) do
      if c.pub == p then return end
    end
    rep.clients[#rep.clients + 1] = {pub = p, hash = h or "", dump = "0"}
    if redis.call("HSET", KEYS[5], "d:" .. p, rep.t .. " 0") == 1 then m.dumps = m.dumps + 1 end
  end
  -- desync mirrors memStream.desync; late says a late report named div.
  local function desync(ck, canonical, div, late)
    log_append(KEYS[2], m, t, encode_event(t, '"_x"', "_", desync_body(ck, div)))
    diverged = diverged + #div
    if not reps then reps = reports_load(redis.call("HGET", KEYS[6], "r")) end
    local rep = nil
    for _, x in ipairs(reps) do
      if x.t == ck then rep = x end
    end
    if not rep then
      rep = {t = ck, at = t, late = late, hash = canonical, clients = {}}
      reps[#reps + 1] = rep
      if #reps > max_reports then
        -- The oldest made by a late report goes, else the oldest
        -- (maxDesyncReports, checkpoint.go).
        local drop = 1
        for k, x in ipairs(reps) do
          if x.late then drop = k; break end
        end
        local gone = table.remove(reps, drop)
        for _, c in ipairs(gone.clients) do
          redis.call("HDEL", KEYS[6], "d:" .. gone.t .. ":" .. c.pub, "dv:" .. gone.t .. ":" .. c.pub)
        end
        if gone == rep then return end -- every report kept is a verdict's
      end
      for _, v in ipairs(connected_votes(ck)) do -- canonical is never nil here: a tie names nobody
        if v[2] == canonical then ask_dump(rep, v[1], v[2]); break end
      end
    end
    for _, p in ipairs(div) do ask_dump(rep, p, redis.call("HGET", KEYS[5], "v:" .. ck .. ":" .. p)) end
  end
  -- judge mirrors memStream.judge: the open checkpoint open[i] is judged.
  local function judge(i)
    local r = table.remove(open, i)
    local votes, n = connected_votes(r.t)
    local canonical, div = tally(votes, n, quorum)
    redis.call("HSET", KEYS[1], "h:" .. r.t, canonical or "!")
    -- Into the list of the judged, in order.
    local before, after = {}, {}
    for x in string.gmatch(m.ck_j, "(%d+) ") do
      if tonumber(x) < r.t then before[#before + 1] = x else after[#after + 1] = x end
    end
    before[#before + 1] = tostring(r.t)
    for _, x in ipairs(after) do before[#before + 1] = x end
    m.ck_j = table.concat(before, " ") .. " "
    judged = judged + 1
    if #div > 0 then desync(r.t, canonical, div, false) end
    if canonical and snap_every > 0 and m.since_snap >= snap_every and (not m.snap_t or r.t > m.snap_t) and r.t > m.ck_want then
      m.ck_want, m.ck_want_h = r.t, canonical
    end
  end
  local function kept()
    local _, n = string.gsub(m.ck_j, " ", "")
    return #open + n
  end

  -- The reports (memStream.report).
  if reports then
    local H = EV + 2 * nev
    local joined = tonumber(redis.call("ZSCORE", KEYS[7], pub)) or 0
    for i = 0, nrep - 1 do
      local ck, h = tonumber(ARGV[H + 2 * i]), ARGV[H + 1 + 2 * i]
      local r = ck_find(open, ck)
      local verdict = nil
      if not r then verdict = ck_verdict(KEYS[1], ck) end
      local ok = ck_reportable(ck, t, keep_ticks) and ck_voter(joined, ck, tenure)
      if ok and not r and not verdict then
        if kept() >= max_checkpoints then
          local oldest = ck_first(m.ck_j)
          if #open > 0 and (not oldest or open[1].t < oldest) then oldest = open[1].t end
          if ck < oldest then
            ok = false -- older than every checkpoint kept
          else
            if #open > 0 and open[1].t == oldest then judge(1) end
            m.ck_j = ck_drop(KEYS[1], KEYS[5], m.ck_j, oldest, m.next_id)
          end
        end
        if ok then
          r = {t = ck, votes = 0}
          local at = #open + 1
          for k, x in ipairs(open) do
            if x.t > ck then at = k; break end
          end
          table.insert(open, at, r)
        end
      end
      if ok and redis.call("HSETNX", KEYS[5], "v:" .. ck .. ":" .. pub, h) == 1 then -- the first report counts
        if r then
          r.votes = r.votes + 1
        elseif verdict ~= "!" and h ~= verdict then
          desync(ck, verdict, {pub}, true) -- a late report that differs
        end
      end
    end
  end
  local i = 1
  while i <= #open do
    local r = open[i]
    if t >= ck_judge_at(r.t, judge_ticks) or (reports and r.votes >= eligible(r.t)) then judge(i) else i = i + 1 end
  end
  m.ck_due = -1
  for _, r in ipairs(open) do
    local at = ck_judge_at(r.t, judge_ticks)
    if m.ck_due < 0 or at < m.ck_due then m.ck_due = at end
  end
  local first = ck_first(m.ck_j)
  while first and not ck_kept(first, t, keep_ticks) do
    m.ck_j = ck_drop(KEYS[1], KEYS[5], m.ck_j, first, m.next_id)
    first = ck_first(m.ck_j)
  end
  if m.ck_want >= 0 and redis.call("HEXISTS", KEYS[1], "h:" .. m.ck_want) == 0 then m.ck_want = -1 end
  if reps then redis.call("HSET", KEYS[6], "r", reports_save(reps)) end
  if m.ck_j == was[1] and m.ck_due == was[2] and m.ck_want == was[3] and m.dumps == was[4] then
    redis.call("HSET", KEYS[1], "cks", cks_save(open)) -- a report, the usual change
  else
    redis.call("HSET", KEYS[1], "cks", cks_save(open), "ck_j", m.ck_j, "ck_due", m.ck_due, "ck_want", m.ck_want,
      "ck_want_h", m.ck_want_h, "dumps", m.dumps)
  end
end
if N > 0 and m.ck_want >= 0 and (m.ck_ask_pub == "" or t >= m.ck_ask_until)
  and redis.call("HGET", KEYS[5], "v:" .. m.ck_want .. ":" .. pub) == m.ck_want_h then
  snap_ask = m.ck_want
  redis.call("HSET", KEYS[1], "ck_ask_pub", pub, "ck_ask_until", ask_again_at(t, tonumber(ARGV[28])))
end
-- The dump the client owes, asked again until it is stored
-- (memStream.checkpoint).
if m.dumps > 0 then
  local d = redis.call("HGET", KEYS[5], "d:" .. pub)
  local ck, at = nil, nil
  if d then ck, at = string.match(d, "^(%d+) ?(%d*)$") end
  if ck and t >= (tonumber(at) or 0) then
    if dump_owed(KEYS[6], tonumber(ck), pub) then
      dump_ask = tonumber(ck)
      redis.call("HSET", KEYS[5], "d:" .. pub, ck .. " " .. ask_again_at(t, tonumber(ARGV[28])))
    else
      redis.call("HDEL", KEYS[5], "d:" .. pub)
      redis.call("HSET", KEYS[1], "dumps", m.dumps - 1)
    end
  end
end

m.last_t = t
meta_save(KEYS[1], m)

-- The reply: events with from <= tick < t, at most a page, cut between ticks.
local from, base = reply_start(m, tonumber(ARGV[3]), ARGV[4], t)
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
return {"ok", pub, replyT, m.epoch, m.rate, more, c, k, appended, table.concat(out, ","), skipped, asked,
  snap_ask, dump_ask, base, judged, diverged, compacted}
