-- Checkpoints: the rules of checkpoint.go and store_memory_checkpoint.go,
-- the prelude of the scripts that need them (sync, put_snapshot, put_dump;
-- checkpointScript in store_redis.go). Each function names its Go mirror;
-- durations and limits come in as the scripts' arguments.
-- A stream's open checkpoints are its meta's cks, "<tick>,<reports>;" each,
-- ascending; a judged one is its meta's field "h:<tick>" (the canonical
-- hash, or "!" for none), its tick listed in ck_j ("<tick> " each,
-- ascending). So a sync with reports reads the few open checkpoints, not
-- every one kept. A client's report of checkpoint c is the clients field
-- "v:<c>:<public id>"; the tick of its latest "_c" is its score in the
-- joined set (KEYS[7]; none: 0, a client of a stream older than the set).
-- The desync
-- reports are the desyncs hash's field "r": "<tick> <at> <hash or ->
-- <client>...;" with each client "<public id>=<hash>=<0, 1 or 2: its dump
-- is not stored, stored, or dropped by the checkpoint budget and not asked
-- for again (memBudget)>", and at written "+<at>" for a report made by a late report
-- (memReport.late; a sign every reader of numbers ignores); dumps are its
-- fields "d:<tick>:<public id>", each with "dv:<tick>:<public id>" the id
-- the checkpoint budget knows it by (store_redis_budget.go).

-- ck_kept mirrors Config.kept (checkpoint.go): whether checkpoint ck is
-- still kept at tick t, for keep_ticks after its tick.
local function ck_kept(ck, t, keep_ticks) return ck > t - keep_ticks end

-- ck_reportable mirrors Config.reportable: a report of checkpoint ck made
-- at tick t counts if ck is sealed and still kept.
local function ck_reportable(ck, t, keep_ticks) return ck < t and ck_kept(ck, t, keep_ticks) end

-- ck_judge_at mirrors Config.judgeAt: the tick from which open checkpoint
-- ck is judged without waiting for more reports.
local function ck_judge_at(ck, judge_ticks) return ck + 1 + judge_ticks end

-- ck_voter_until mirrors Config.voterUntil (checkpoint.go): the latest
-- tick of a "_c" that votes on checkpoint ck, tenure the voter tenure in
-- ticks.
local function ck_voter_until(ck, tenure) return math.max(ck - tenure, math.min(tenure, ck)) end

-- ck_voter mirrors Config.voter (checkpoint.go): a client connected at
-- tick joined votes on checkpoint ck only if it was in the stream tenure
-- before ck, or is one of the stream's founders (joined within its first
-- tenure) and was in it at ck.
local function ck_voter(joined, ck, tenure) return joined <= ck_voter_until(ck, tenure) end

-- snap_asked mirrors memCheckpoints.asked (store_memory_checkpoint.go):
-- client pub may upload its snapshot of checkpoint ck if it was asked
-- last, or if its snapshot of ck is the one kept (a retry).
local function snap_asked(m, ck, pub)
  return (m.ck_want == ck and m.ck_ask_pub == pub) or (m.snap_t == ck and m.snap_by == pub)
end

-- ask_again_at mirrors Config.askAgainAt: the tick from which a client
-- asked at tick t for a snapshot or a dump that has not come is asked again.
local function ask_again_at(t, judge_ticks) return t + judge_ticks end

local function cks_load(s)
  local out = {}
  for t, n in string.gmatch(s, "(%d+),(%d+);") do
    out[#out + 1] = {t = tonumber(t), votes = tonumber(n)}
  end
  return out
end

local function cks_save(recs)
  local b = {}
  for i, r in ipairs(recs) do b[i] = r.t .. "," .. r.votes .. ";" end
  return table.concat(b)
end

local function ck_find(recs, t)
  for i, r in ipairs(recs) do
    if r.t == t then return r, i end
  end
  return nil
end

-- ck_verdict returns the canonical hash of judged checkpoint t, "!" for
-- none, or nil when it is not judged (or not kept).
local function ck_verdict(meta, t)
  local v = redis.call("HGET", meta, "h:" .. t)
  if v then return v end
  return nil
end

-- ck_first returns the oldest judged checkpoint of the list j, or nil.
local function ck_first(j)
  return tonumber(string.match(j, "^(%d+) "))
end

-- ck_drop forgets judged checkpoint t, the first of the list j: its
-- verdict and its reports, of every public id the stream gave
-- (memStream drops its record). It returns the list without t.
local function ck_drop(meta, clients, j, t, next_id)
  redis.call("HDEL", meta, "h:" .. t)
  for lo = 1, next_id, 500 do
    local f = {}
    for p = lo, math.min(lo + 499, next_id) do f[#f + 1] = "v:" .. t .. ":" .. p end
    redis.call("HDEL", clients, unpack(f))
  end
  return string.sub(j, #tostring(t) + 2)
end

-- pub_less orders public ids as numbers (pubLess).
local function pub_less(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end

-- tally mirrors judge (checkpoint.go): votes {pub, hash} of the
-- checkpoint's voters still connected, in public id order, eligible of
-- them. Returns the canonical hash or nil, and the diverged public ids: a
-- tie names nobody.
local function tally(votes, eligible, quorum)
  local counts, top, tops, canonical = {}, 0, 0, nil
  for _, v in ipairs(votes) do
    local n = (counts[v[2]] or 0) + 1
    counts[v[2]] = n
    if n > top then
      top, tops, canonical = n, 1, v[2]
    elseif n == top then
      tops = tops + 1
    end
  end
  local div = {}
  if tops ~= 1 or top < math.min(quorum, math.max(eligible, 1)) then return nil, div end
  for _, v in ipairs(votes) do
    if v[2] ~= canonical then div[#div + 1] = v[1] end
  end
  return canonical, div
end

-- desync_body mirrors desyncBody: a JSON string literal.
local function desync_body(t, ids)
  local q = {}
  for i, id in ipairs(ids) do q[i] = '\\"' .. id .. '\\"' end
  return '"{\\"t\\":' .. t .. ',\\"ids\\":[' .. table.concat(q, ",") .. ']}"'
end

local function reports_load(s)
  local out = {}
  if not s then return out end
  for line in string.gmatch(s, "([^;]+);") do
    local f = {}
    for w in string.gmatch(line, "%S+") do f[#f + 1] = w end
    local rep = {t = tonumber(f[1]), at = tonumber(f[2]), late = string.sub(f[2], 1, 1) == "+", hash = f[3], clients = {}}
    if rep.hash == "-" then rep.hash = "" end
    for i = 4, #f do
      local pub, h, d = string.match(f[i], "^(%d+)=(%x*)=([012])$")
      rep.clients[#rep.clients + 1] = {pub = pub, hash = h, dump = d}
    end
    out[#out + 1] = rep
  end
  return out
end

-- dump_owed mirrors memStream.dumpOwed: whether the desync report of
-- checkpoint ck (in the desyncs hash at key) is still kept and waits for
-- the dump of client pub.
local function dump_owed(key, ck, pub)
  for _, rep in ipairs(reports_load(redis.call("HGET", key, "r"))) do
    if rep.t == ck then
      for _, c in ipairs(rep.clients) do
        if c.pub == pub then return c.dump == "0" end
      end
    end
  end
  return false
end

local function reports_save(reps)
  local b = {}
  for _, rep in ipairs(reps) do
    local h = rep.hash
    if h == "" then h = "-" end
    local at = rep.at
    if rep.late then at = "+" .. at end
    local line = {rep.t, at, h}
    for _, c in ipairs(rep.clients) do line[#line + 1] = c.pub .. "=" .. c.hash .. "=" .. c.dump end
    b[#b + 1] = table.concat(line, " ") .. ";"
  end
  return table.concat(b)
end
