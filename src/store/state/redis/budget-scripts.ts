/**
 * Reservation scripts: the Redis twins of memory/memory-budgets.ts. Their Lua functions
 * (BUDGET_LUA) are shared with the admit script, which reserves in the same step as the windows.
 *
 * A budget line is a hash {used, reserved} expiring at the end of its period. A reservation is a
 * hash {st: r|c|x, amt (its amounts, comma-separated), set (the settled amounts, likewise), ttl,
 * lines (JSON [[line key, expiresAt, amount index], ...])}, and an index sorted set per scope scores
 * unsettled reservations by their deadline for the reaper. Amounts travel as decimal strings, never
 * through cjson, which keeps only 14 significant digits.
 *
 * Settlement reaches line keys named inside the reservation rather than in KEYS; they share the
 * scope's hash tag with the declared keys, so every script still touches exactly one Cluster slot.
 */
import { LIMITS } from '../validation.js';
import { LUA_PRELUDE, LuaScript } from './lua-script.js';

/**
 * settle: frees or commits one reservation (commit, release, the reaper); `actuals` are the
 * committed actuals, comma-separated, one per reserved amount; when `used_out` is a table, appends
 * the name and new committed usage of every line a commit moved.
 * lines_check / reserve_hold: line i of a reservation lives at KEYS[kb + i] with its name, cap,
 * expiresAt and amount index (0-based) at ARGV[ab + 4(i-1) + 1..4]; `amounts` are the
 * reservation's amounts, split.
 */
export const BUDGET_LUA = `
local function split_amounts(csv)
  local out = {}
  for v in string.gmatch(csv, '[^,]+') do out[#out + 1] = v end
  return out
end

local function settle(rkey, idx, id, mode, actuals, line_prefix, now, used_out)
  local r = redis.call('HMGET', rkey, 'st', 'amt', 'set', 'ttl', 'lines')
  if not r[1] then return { 'unknown', '' } end
  if r[1] == 'c' then return { 'already_committed', r[3] } end
  if r[1] == 'x' then return { 'already_released', r[3] } end
  local amounts, actual = split_amounts(r[2]), nil
  if mode == 'c' then
    actual = split_amounts(actuals)
    if #actual ~= #amounts then return { 'mismatch', '' } end
  end
  for _, l in ipairs(cjson.decode(r[5])) do
    local expires = tonumber(l[2])
    local ai = (l[3] or 0) + 1
    local amount = tonumber(amounts[ai]) or 0
    -- A line whose period is over is gone; nothing is carried into the next period.
    if expires > now then
      local k = line_prefix .. l[1]
      -- A line that still holds this reservation exists with its expiry; one that does not was
      -- lost (evicted) and is recreated here, so only then is its expiry set again.
      local lost = amount == 0
      if amount > 0 and redis.call('HINCRBY', k, 'reserved', int(-amount)) < 0 then
        redis.call('HSET', k, 'reserved', 0)
        lost = true
      end
      if mode == 'c' then
        local used = redis.call('HINCRBY', k, 'used', actual[ai])
        if used_out then
          used_out[#used_out + 1] = l[1]
          used_out[#used_out + 1] = used
        end
      end
      if lost and redis.call('PTTL', k) < 0 then redis.call('PEXPIREAT', k, int(expires)) end
    end
  end
  local settled = r[2]
  if mode == 'c' then settled = actuals end
  redis.call('HSET', rkey, 'st', mode, 'set', settled)
  -- Remembered for a while after settlement (at most its ttl), so a retried settlement still gets
  -- the first answer; not for the whole ttl, which would keep every call of a busy gateway.
  redis.call('PEXPIRE', rkey, math.min(tonumber(r[4]), ${LIMITS.settledRecordMs}))
  redis.call('ZREM', idx, id)
  if mode == 'c' then return { 'committed', settled } end
  return { 'released', settled }
end

-- Releases reservations of the scope past their deadline, at most \`batch\`; returns how many.
local function reap_due(idx, reservation_prefix, line_prefix, now, batch)
  local ids = redis.call('ZRANGEBYSCORE', idx, '-inf', int(now), 'LIMIT', 0, batch)
  local released = 0
  for _, id in ipairs(ids) do
    local r = settle(reservation_prefix .. id, idx, id, 'x', '', line_prefix, now, nil)
    if r[1] == 'released' then released = released + 1 else redis.call('ZREM', idx, id) end
  end
  return released
end

-- nil when every line takes its amount; otherwise the first line that would pass its cap, its used and reserved.
local function lines_check(kb, ab, n, amounts)
  for i = 1, n do
    local a = ab + 4 * (i - 1)
    local cap, amount = tonumber(ARGV[a + 2]), tonumber(amounts[tonumber(ARGV[a + 4]) + 1])
    local v = redis.call('HMGET', KEYS[kb + i], 'used', 'reserved')
    local used, reserved = tonumber(v[1]) or 0, tonumber(v[2]) or 0
    if used + reserved + amount > cap then return i, used, reserved end
  end
  return nil, 0, 0
end

-- \`amounts_csv\` as the caller sent it (stored as it is), \`amounts\` split.
local function reserve_hold(now, rkey, idx, id, amounts_csv, amounts, ttl_ms, kb, ab, n)
  local ttl = tonumber(ttl_ms)
  local deadline = now + ttl
  local last = deadline
  local held = {}
  for i = 1, n do
    local k, a = KEYS[kb + i], ab + 4 * (i - 1)
    local ai = tonumber(ARGV[a + 4])
    -- A line lives at least as long as the reservation on it, even if its period ends sooner.
    local expires = math.max(tonumber(ARGV[a + 3]), deadline)
    redis.call('HINCRBY', k, 'reserved', amounts[ai + 1])
    local pttl = redis.call('PTTL', k)
    if pttl < 0 or now + pttl < expires then redis.call('PEXPIREAT', k, int(expires)) end
    held[i] = { ARGV[a + 1], int(expires), ai }
    if expires > last then last = expires end
  end
  redis.call('HSET', rkey, 'st', 'r', 'amt', amounts_csv, 'set', '', 'ttl', ttl_ms, 'lines', cjson.encode(held))
  -- Once every line is gone the record no longer matters; until then the reaper settles it.
  redis.call('PEXPIREAT', rkey, int(last + ttl))
  redis.call('ZADD', idx, int(deadline), id)
  local ipttl = redis.call('PTTL', idx)
  if ipttl < 0 or now + ipttl < last + ttl then redis.call('PEXPIREAT', idx, int(last + ttl)) end
end
`;

/**
 * KEYS: reservation, index, line1..lineN
 * ARGV: reservation id, amounts (comma-separated), ttlMs, then per line: line key name, cap,
 *       expiresAt, amount index
 * Returns {'ok'} | {'duplicate'} | {'exceeded', line index, used, reserved}
 */
export const reserveScript = new LuaScript(
  'reserve',
  `${LUA_PRELUDE}${BUDGET_LUA}
local now = now_ms()
if redis.call('EXISTS', KEYS[1]) == 1 then return { 'duplicate' } end
local n = #KEYS - 2
local amounts = split_amounts(ARGV[2])
local bad, used, reserved = lines_check(2, 3, n, amounts)
if bad then return { 'exceeded', bad, int(used), int(reserved) } end
reserve_hold(now, KEYS[1], KEYS[2], ARGV[1], ARGV[2], amounts, ARGV[3], 2, 3, n)
return { 'ok' }
`,
);

/**
 * KEYS: reservation, index
 * ARGV: reservation id, mode ('c' commit | 'x' release), actuals (comma-separated; '' on release), line prefix
 * Returns {state, settled amounts (comma-separated)}; state 'unknown' or 'mismatch' changed nothing
 */
export const settleScript = new LuaScript(
  'settle',
  `${LUA_PRELUDE}${BUDGET_LUA}
return settle(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], now_ms(), nil)
`,
);

/**
 * Settlements in batches of steps (step-batch.ts), one step per call being settled, run one after
 * the other at one server time as separate calls would be.
 * KEYS: 1 the scope's reservation index, then per step: one reservation key per settlement
 * ARGV: 1 step count, 2 line prefix, then per step: settlement count, then per settlement:
 *       reservation id, mode ('c' | 'x'), actuals (comma-separated; '' on release)
 * Returns per step, in order: { {state1, amounts1, state2, amounts2, ...}, {line name, used, ...} }
 */
export const settleManyScript = new LuaScript(
  'settle_many',
  `${LUA_PRELUDE}${BUDGET_LUA}
local now = now_ms()
local idx, line_prefix = KEYS[1], ARGV[2]
local replies, kb, ab = {}, 1, 2
for i = 1, tonumber(ARGV[1]) do
  local n = tonumber(ARGV[ab + 1])
  local states, used = {}, {}
  for j = 1, n do
    local a = ab + 2 + 3 * (j - 1)
    local r = settle(KEYS[kb + j], idx, ARGV[a], ARGV[a + 1], ARGV[a + 2], line_prefix, now, used)
    states[#states + 1] = r[1]
    states[#states + 1] = r[2]
  end
  replies[i] = { states, used }
  kb, ab = kb + n, ab + 1 + 3 * n
end
return replies
`,
);

/**
 * KEYS: index   ARGV: reservation key prefix, line prefix, batch size
 * Returns the number of reservations released.
 */
export const reapScript = new LuaScript(
  'reap',
  `${LUA_PRELUDE}${BUDGET_LUA}
return reap_due(KEYS[1], ARGV[1], ARGV[2], now_ms(), tonumber(ARGV[3]))
`,
);
