/**
 * The sliding-window script: the Redis twin of memory/sliding-log.ts, in one atomic step.
 *
 * Per window two keys: a sorted set of hits scored by store time (member "time:seq:cost", where seq
 * numbers hits within one millisecond so members stay unique) and a string holding the sum of the
 * costs in the set, so a check reads only the hits that left the window since the last check.
 *
 * KEYS: log1, total1, log2, total2, ...   ARGV: cost, n, then per window: limit, windowMs
 * Returns { allowed 0|1, window index (1-based), remaining, resetAt, retryAfterMs, now }.
 */
import { LUA_PRELUDE, LuaScript } from './lua-script.js';

export const hitWindowsScript = new LuaScript(
  'hit_windows',
  `${LUA_PRELUDE}
local function member_cost(m)
  return tonumber(string.match(m, ':(%d+)$'))
end

-- Store time of the hit whose expiry frees at least \`need\` units, oldest first; nil if never.
local function freed_after(log, need)
  local freed, start = 0, 0
  while true do
    local batch = redis.call('ZRANGE', log, start, start + 127, 'WITHSCORES')
    if #batch == 0 then return nil end
    for j = 1, #batch, 2 do
      freed = freed + member_cost(batch[j])
      if freed >= need then return tonumber(batch[j + 1]) end
    end
    start = start + 128
  end
end

local now = now_ms()
local cost = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local totals = {}
local refused, refused_reset, refused_remaining = nil, nil, nil

for i = 1, n do
  local log, tot = KEYS[2 * i - 1], KEYS[2 * i]
  local limit, win = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  local total = 0
  if redis.call('EXISTS', log) == 1 then
    -- A hit at t counts while now < t + win: drop everything at or before now - win.
    local threshold = int(now - win)
    local stale = redis.call('ZRANGEBYSCORE', log, '-inf', threshold)
    if #stale > 0 then redis.call('ZREMRANGEBYSCORE', log, '-inf', threshold) end
    local raw = redis.call('GET', tot)
    if raw then
      total = tonumber(raw)
      for _, m in ipairs(stale) do total = total - member_cost(m) end
    else
      -- The running total was lost (eviction): rebuild it from the log.
      for _, m in ipairs(redis.call('ZRANGE', log, 0, -1)) do total = total + member_cost(m) end
    end
    if #stale > 0 or not raw then redis.call('SET', tot, int(total), 'PX', int(win)) end
  end
  totals[i] = total
  if total + cost > limit then
    local reset
    if cost > limit then
      reset = now + win
    else
      local at = freed_after(log, total + cost - limit)
      if at then reset = at + win else reset = now + win end
    end
    if refused == nil or reset > refused_reset then
      refused, refused_reset = i, reset
      refused_remaining = math.max(0, limit - total)
    end
  end
end

if refused then
  return { 0, refused, refused_remaining, refused_reset, refused_reset - now, now }
end

local best, best_remaining, best_reset = 1, nil, now
for i = 1, n do
  local log, tot = KEYS[2 * i - 1], KEYS[2 * i]
  local limit, win = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  local total = totals[i]
  if cost > 0 then
    local member = int(now) .. ':' .. redis.call('ZCOUNT', log, now, now) .. ':' .. int(cost)
    redis.call('ZADD', log, int(now), member)
    redis.call('PEXPIRE', log, int(win))
    total = total + cost
    redis.call('SET', tot, int(total), 'PX', int(win))
  end
  local remaining = limit - total
  if best_remaining == nil or remaining < best_remaining then
    local oldest = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
    best, best_remaining = i, remaining
    if oldest[2] then best_reset = tonumber(oldest[2]) + win else best_reset = now end
  end
end
return { 1, best, best_remaining, best_reset, 0, now }
`,
);
