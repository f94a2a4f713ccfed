/**
 * The sliding-window script: the Redis twin of memory/sliding-log.ts, in one atomic step. Its Lua
 * functions (WINDOWS_LUA) are shared with the admit script, which checks the same windows first.
 *
 * Per window two keys: a sorted set of hits scored by store time (member "time:tag:cost", the tag
 * keeping members unique: see log_hit) and a string holding the sum of the costs in the set, so a
 * check reads only the hits that left the window since the last check.
 *
 * KEYS: log1, total1, log2, total2, ...   ARGV: cost, n, then per window: limit, windowMs
 * Returns { allowed 0|1, window index (1-based), remaining, resetAt, retryAfterMs, now }.
 */
import { LUA_PRELUDE, LuaScript } from './lua-script.js';

/**
 * Window i of a call lives at KEYS[kb + 2i - 1] (log) and KEYS[kb + 2i] (total), with its limit
 * and length at ARGV[ab + 2i - 1] and ARGV[ab + 2i].
 */
export const WINDOWS_LUA = `
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

-- Trims n windows to now and finds the one refusing a hit of \`cost\` (the one that frees last).
-- Returns the totals, then the refusing index, its remaining units and resetAt (nil when all allow),
-- then which totals changed: they are stored once, by windows_tightest or windows_keep, so a hit
-- that consumes writes its total once rather than after the trim and again after the hit.
local function windows_check(now, kb, ab, n, cost)
  local totals, dirty = {}, {}
  local refused, refused_reset, refused_remaining = nil, nil, nil
  for i = 1, n do
    local log, tot = KEYS[kb + 2 * i - 1], KEYS[kb + 2 * i]
    local limit, win = tonumber(ARGV[ab + 2 * i - 1]), tonumber(ARGV[ab + 2 * i])
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
      dirty[i] = #stale > 0 or not raw
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
  return totals, refused, refused_remaining, refused_reset, dirty
end

-- Stores the totals windows_check changed, when nothing is consumed after it.
local function windows_keep(kb, ab, n, totals, dirty)
  for i = 1, n do
    if dirty[i] then redis.call('SET', KEYS[kb + 2 * i], int(totals[i]), 'PX', int(ARGV[ab + 2 * i])) end
  end
end

-- Adds a hit at \`now\` to a log. Members are "time:tag:cost"; the tag is the total after the hit,
-- which only grows within one millisecond (nothing leaves the window while the time stands
-- still), so it is unique without counting the hits of that millisecond. Should the server's
-- clock step back onto a millisecond already logged, the tag is extended until it is unique.
local function log_hit(log, now, total, cost)
  local base = int(now) .. ':' .. int(total)
  local member = base .. ':' .. int(cost)
  local extra = 0
  while redis.call('ZADD', log, 'NX', int(now), member) == 0 do
    extra = extra + 1
    member = base .. '.' .. extra .. ':' .. int(cost)
  end
end

-- The tightest window (index, remaining, resetAt) of a hit every window allows; consumes \`cost\`
-- from each first when \`consume\` is set, otherwise reports them as they stand. Stores the totals
-- windows_check changed either way.
local function windows_tightest(now, kb, ab, n, cost, totals, dirty, consume)
  local best, best_remaining, best_reset = 1, nil, now
  for i = 1, n do
    local log, tot = KEYS[kb + 2 * i - 1], KEYS[kb + 2 * i]
    local limit, win = tonumber(ARGV[ab + 2 * i - 1]), tonumber(ARGV[ab + 2 * i])
    local total = totals[i]
    if consume and cost > 0 then
      total = total + cost
      log_hit(log, now, total, cost)
      redis.call('PEXPIRE', log, int(win))
      redis.call('SET', tot, int(total), 'PX', int(win))
    elseif dirty[i] then
      redis.call('SET', tot, int(total), 'PX', int(win))
    end
    local remaining = limit - total
    if best_remaining == nil or remaining < best_remaining then
      local oldest = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
      best, best_remaining = i, remaining
      if oldest[2] then best_reset = tonumber(oldest[2]) + win else best_reset = now end
    end
  end
  return best, best_remaining, best_reset
end
`;

export const hitWindowsScript = new LuaScript(
  'hit_windows',
  `${LUA_PRELUDE}${WINDOWS_LUA}
local now = now_ms()
local cost = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local totals, refused, remaining, reset, dirty = windows_check(now, 0, 2, n, cost)
if refused then
  windows_keep(0, 2, n, totals, dirty)
  return { 0, refused, remaining, reset, reset - now, now }
end
local best, best_remaining, best_reset = windows_tightest(now, 0, 2, n, cost, totals, dirty, true)
return { 1, best, best_remaining, best_reset, 0, now }
`,
);
