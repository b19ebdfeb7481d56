-- Moves the entries of swept streams in the deadline index to their next
-- deadlines. An entry still at the claim's score was not touched since the
-- claim: it takes the next deadline, or goes when the stream is gone. One
-- a sync moved meanwhile keeps the earlier of its deadline and the next:
-- the sync's client, or a stream it created anew, is never lost.
-- KEYS: 1 the index. ARGV: 1 the claim's score; then per stream its name and
-- its next deadline in ms, or "" when the stream is gone.
-- Returns per stream 1 if its entry was removed, else 0.
local claim = tonumber(ARGV[1])
local out = {}
for i = 2, #ARGV, 2 do
  local s, nxt = ARGV[i], ARGV[i + 1]
  local cur = redis.call("ZSCORE", KEYS[1], s)
  local removed = 0
  if cur and tonumber(cur) == claim then
    if nxt == "" then
      redis.call("ZREM", KEYS[1], s)
      removed = 1
    else
      redis.call("ZADD", KEYS[1], nxt, s)
    end
  elseif cur and nxt ~= "" then
    redis.call("ZADD", KEYS[1], "LT", nxt, s)
  end
  out[#out + 1] = removed
end
return out
