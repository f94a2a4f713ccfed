/**
 * The sliding-window script: the Redis twin of memory/sliding-log.ts, in one atomic step. Its Lua
 * functions (WINDOWS_LUA) are shared with the admit script, which checks the same windows first.
 *
 * Per window two keys: a sorted set of hits scored by store time (member "time:seq:cost", where seq
 * numbers hits within one millisecond so members stay unique) and a string holding the sum of the
 * costs in the set, so a check reads only the hits that left the window since the last check.
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
-- Returns the totals, then the refusing index, its remaining units and resetAt (nil when all allow).
local function windows_check(now, kb, ab, n, cost)
  local totals = {}
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
  return totals, refused, refused_remaining, refused_reset
end

-- The tightest window (index, remaining, resetAt) of a hit every window allows; consumes \`cost\`
-- from each first when \`consume\` is set, otherwise reports them as they stand.
local function windows_tightest(now, kb, ab, n, cost, totals, consume)
  local best, best_remaining, best_reset = 1, nil, now
  for i = 1, n do
    local log, tot = KEYS[kb + 2 * i - 1], KEYS[kb + 2 * i]
    local limit, win = tonumber(ARGV[ab + 2 * i - 1]), tonumber(ARGV[ab + 2 * i])
    local total = totals[i]
    if consume and cost > 0 then
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
  return best, best_remaining, best_reset
end
`;

export const hitWindowsScript = new LuaScript(
  'hit_windows',
  `${LUA_PRELUDE}${WINDOWS_LUA}
local now = now_ms()
local cost = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local totals, refused, remaining, reset = windows_check(now, 0, 2, n, cost)
if refused then return { 0, refused, remaining, reset, reset - now, now } end
local best, best_remaining, best_reset = windows_tightest(now, 0, 2, n, cost, totals, true)
return { 1, best, best_remaining, best_reset, 0, now }
`,
);
