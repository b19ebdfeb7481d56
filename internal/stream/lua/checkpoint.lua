-- Checkpoints: the rules of checkpoint.go and store_memory_checkpoint.go,
-- for the scripts that need them (sync, put_snapshot, put_dump). Each
-- function names its Go mirror.
-- A stream's checkpoints are its meta's cks: "<tick>,<reports>,<state>;"
-- per checkpoint, state "?" while open, "!" when judged without a
-- canonical hash, else the canonical hash. A client's reports are its
-- clients field "v:<public id>": "<tick>=<hash>,", ascending. The desync
-- reports are the desyncs hash's field "r": "<tick> <at> <hash or -> <client>...;"
-- with each client "<public id>=<hash>=<0 or 1: its dump is stored>"; dumps
-- are its fields "d:<tick>:<public id>".

local MAX_CHECKPOINTS, MAX_VOTES, MAX_REPORTS, MAX_DUMPS = 32, 16, 4, 4

local function cks_load(s)
  local out = {}
  for t, n, st in string.gmatch(s, "(%d+),(%d+),([^;]*);") do
    out[#out + 1] = {t = tonumber(t), votes = tonumber(n), state = st}
  end
  return out
end

local function cks_save(recs)
  local b = {}
  for i, r in ipairs(recs) do b[i] = r.t .. "," .. r.votes .. "," .. r.state .. ";" end
  return table.concat(b)
end

local function ck_find(recs, t)
  for _, r in ipairs(recs) do
    if r.t == t then return r end
  end
  return nil
end

local function votes_load(s)
  local out = {}
  if s then
    for t, h in string.gmatch(s, "(%d+)=(%x+),") do out[#out + 1] = {t = tonumber(t), h = h} end
  end
  return out
end

local function votes_save(vs)
  local b = {}
  for i, v in ipairs(vs) do b[i] = v.t .. "=" .. v.h .. "," end
  return table.concat(b)
end

-- vote_of mirrors voteOf: the hash of checkpoint t, or nil.
local function vote_of(vs, t)
  for _, v in ipairs(vs) do
    if v.t == t then return v.h end
  end
  return nil
end

-- add_vote mirrors addVote: the newest MAX_VOTES, ascending.
local function add_vote(vs, t, h)
  local i = #vs + 1
  for k, v in ipairs(vs) do
    if v.t == t then return false end
    if v.t > t then i = k; break end
  end
  if #vs >= MAX_VOTES and i == 1 then return false end
  table.insert(vs, i, {t = t, h = h})
  if #vs > MAX_VOTES then table.remove(vs, 1) end
  return true
end

-- pub_less orders public ids as numbers (pubLess).
local function pub_less(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end

-- tally mirrors judge (checkpoint.go): votes {pub, hash} in public id
-- order. Returns the canonical hash or nil, and the diverged public ids.
local function tally(votes, connected, quorum)
  local counts, top = {}, 0
  for _, v in ipairs(votes) do
    counts[v[2]] = (counts[v[2]] or 0) + 1
    if counts[v[2]] > top then top = counts[v[2]] end
  end
  local tops, seen = {}, {}
  for _, v in ipairs(votes) do
    if counts[v[2]] == top and not seen[v[2]] then
      seen[v[2]] = true
      tops[#tops + 1] = v[2]
    end
  end
  local div = {}
  if #tops > 1 then
    for _, v in ipairs(votes) do div[#div + 1] = v[1] end
    return nil, div
  end
  local q = quorum
  if connected < q then q = math.max(connected, 1) end
  if top > 0 and top >= q then
    for _, v in ipairs(votes) do
      if v[2] ~= tops[1] then div[#div + 1] = v[1] end
    end
    return tops[1], div
  end
  return nil, div
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
    local rep = {t = tonumber(f[1]), at = tonumber(f[2]), hash = f[3], clients = {}}
    if rep.hash == "-" then rep.hash = "" end
    for i = 4, #f do
      local pub, h, d = string.match(f[i], "^(%d+)=(%x*)=([01])$")
      rep.clients[#rep.clients + 1] = {pub = pub, hash = h, dump = d}
    end
    out[#out + 1] = rep
  end
  return out
end

local function reports_save(reps)
  local b = {}
  for _, rep in ipairs(reps) do
    local h = rep.hash
    if h == "" then h = "-" end
    local line = {rep.t, rep.at, h}
    for _, c in ipairs(rep.clients) do line[#line + 1] = c.pub .. "=" .. c.hash .. "=" .. c.dump end
    b[#b + 1] = table.concat(line, " ") .. ";"
  end
  return table.concat(b)
end
