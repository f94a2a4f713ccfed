/**
 * Reservation scripts: the Redis twins of memory/memory-budgets.ts.
 *
 * A budget line is a hash {used, reserved} expiring at the end of its period. A reservation is a
 * hash {st: r|c|x, amt, set (settled amount), ttl, lines (JSON [[line key, expiresAt], ...])}, and
 * an index sorted set per scope scores unsettled reservations by their deadline for the reaper.
 *
 * Settlement reaches line keys named inside the reservation rather than in KEYS; they share the
 * scope's hash tag with the declared keys, so every script still touches exactly one Cluster slot.
 */
import { LUA_PRELUDE, LuaScript } from './lua-script.js';

/** Frees or commits one reservation; shared by commit, release and the reaper. */
const SETTLE = `
local function settle(rkey, idx, id, mode, actual, line_prefix, now)
  local r = redis.call('HMGET', rkey, 'st', 'amt', 'set', 'ttl', 'lines')
  if not r[1] then return { 'unknown' } end
  if r[1] == 'c' then return { 'already_committed', r[3] } end
  if r[1] == 'x' then return { 'already_released', r[3] } end
  local amount = tonumber(r[2])
  for _, l in ipairs(cjson.decode(r[5])) do
    local expires = tonumber(l[2])
    -- A line whose period is over is gone; nothing is carried into the next period.
    if expires > now then
      local k = line_prefix .. l[1]
      if amount > 0 and redis.call('HINCRBY', k, 'reserved', int(-amount)) < 0 then
        redis.call('HSET', k, 'reserved', 0)
      end
      if mode == 'c' then redis.call('HINCRBY', k, 'used', actual) end
      if redis.call('PTTL', k) < 0 then redis.call('PEXPIREAT', k, int(expires)) end
    end
  end
  local settled = r[2]
  if mode == 'c' then settled = actual end
  redis.call('HSET', rkey, 'st', mode, 'set', settled)
  -- Remembered for a full ttl after settlement, so late retries still get the first answer.
  redis.call('PEXPIRE', rkey, r[4])
  redis.call('ZREM', idx, id)
  if mode == 'c' then return { 'committed', settled } end
  return { 'released', settled }
end
`;

/**
 * KEYS: reservation, index, line1..lineN
 * ARGV: reservation id, amount, ttlMs, then per line: line key name, cap, expiresAt
 * Returns {'ok'} | {'duplicate'} | {'exceeded', line index, used, reserved}
 */
export const reserveScript = new LuaScript(
  'reserve',
  `${LUA_PRELUDE}
local now = now_ms()
local rkey, idx = KEYS[1], KEYS[2]
if redis.call('EXISTS', rkey) == 1 then return { 'duplicate' } end
local amount, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
local n = #KEYS - 2
for i = 1, n do
  local cap = tonumber(ARGV[3 + 3 * (i - 1) + 2])
  local v = redis.call('HMGET', KEYS[2 + i], 'used', 'reserved')
  local used, reserved = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  if used + reserved + amount > cap then
    return { 'exceeded', i, int(used), int(reserved) }
  end
end
local deadline = now + ttl
local last = deadline
local held = {}
for i = 1, n do
  local k = KEYS[2 + i]
  -- A line lives at least as long as the reservation on it, even if its period ends sooner.
  local expires = math.max(tonumber(ARGV[3 + 3 * (i - 1) + 3]), deadline)
  redis.call('HINCRBY', k, 'reserved', ARGV[2])
  local pttl = redis.call('PTTL', k)
  if pttl < 0 or now + pttl < expires then redis.call('PEXPIREAT', k, int(expires)) end
  held[i] = { ARGV[3 + 3 * (i - 1) + 1], int(expires) }
  if expires > last then last = expires end
end
redis.call('HSET', rkey, 'st', 'r', 'amt', ARGV[2], 'set', '0', 'ttl', ARGV[3], 'lines', cjson.encode(held))
-- Once every line is gone the record no longer matters; until then the reaper settles it.
redis.call('PEXPIREAT', rkey, int(last + ttl))
redis.call('ZADD', idx, int(deadline), ARGV[1])
local ipttl = redis.call('PTTL', idx)
if ipttl < 0 or now + ipttl < last + ttl then redis.call('PEXPIREAT', idx, int(last + ttl)) end
return { 'ok' }
`,
);

/**
 * KEYS: reservation, index   ARGV: reservation id, mode ('c' commit | 'x' release), actual, line prefix
 * Returns {state, settled amount} | {'unknown'}
 */
export const settleScript = new LuaScript(
  'settle',
  `${LUA_PRELUDE}${SETTLE}
return settle(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], now_ms())
`,
);

/**
 * KEYS: index   ARGV: reservation key prefix, line prefix, batch size
 * Returns the number of reservations released.
 */
export const reapScript = new LuaScript(
  'reap',
  `${LUA_PRELUDE}${SETTLE}
local now = now_ms()
local idx = KEYS[1]
local ids = redis.call('ZRANGEBYSCORE', idx, '-inf', int(now), 'LIMIT', 0, tonumber(ARGV[3]))
local released = 0
for _, id in ipairs(ids) do
  local r = settle(ARGV[1] .. id, idx, id, 'x', '0', ARGV[2], now)
  if r[1] == 'released' then released = released + 1 else redis.call('ZREM', idx, id) end
end
return released
`,
);
