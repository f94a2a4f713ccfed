/**
 * The admit script: a request's rate-limit windows and budget reservations in one atomic step, the
 * Redis twin of memory/memory-admit.ts. Windows are checked first, then (unless the caller says a
 * gate in between refused) every reservation; only when everything passes are the windows
 * consumed and the reservations held. All keys share the scope's hash tag: one Cluster slot.
 *
 * One call carries a batch of such steps (step-batch.ts), run one after the other at the same
 * server time exactly as separate calls would be: a later step sees what an earlier one consumed.
 *
 * KEYS: 1 the scope's reservation index; then per step: per window: log, total; then per
 *       reservation: its key, then its line keys.
 * ARGV: 1 step count, 2 reap batch, 3 reservation key prefix, 4 line key prefix (the same for every
 *       step of a scope, so sent once); then per step: window count, cost, refused after
 *       ('' | 'w' | 'r'), reservation count; per window: limit, windowMs; per reservation: id,
 *       amounts (comma-separated), ttlMs, line count, then per line: line key name, cap,
 *       expiresAt, amount index.
 * Returns one reply per step, in order: { outcome ('ok' | 'windows' | 'caller' | 'duplicate' |
 *           'exceeded'), reaped, now, window index (0: none), window allowed 0|1, remaining,
 *           resetAt, retryAfterMs, then for 'duplicate' and 'exceeded': reservation index, line
 *           index, used, reserved }.
 */
import { BUDGET_LUA } from './budget-scripts.js';
import { LUA_PRELUDE, LuaScript } from './lua-script.js';
import { WINDOWS_LUA } from './window-script.js';

export const admitScript = new LuaScript(
  'admit',
  `${LUA_PRELUDE}${WINDOWS_LUA}${BUDGET_LUA}
-- The reservations of the step whose keys follow KEYS[kb] and whose arguments follow ARGV[ab],
-- and where the next step's keys and arguments begin.
local function admit_layout(kb, ab)
  local nw, nr = tonumber(ARGV[ab + 1]), tonumber(ARGV[ab + 4])
  local reservations = {}
  local kpos, apos = kb + 2 * nw + 1, ab + 5 + 2 * nw
  for j = 1, nr do
    local n = tonumber(ARGV[apos + 3])
    reservations[j] = { id = ARGV[apos], amounts_csv = ARGV[apos + 1], ttl = ARGV[apos + 2], n = n, kb = kpos, ab = apos + 3 }
    kpos = kpos + 1 + n
    apos = apos + 4 + 4 * n
  end
  return reservations, kpos - 1, apos - 1
end

local idx, reap_batch, reservation_prefix, line_prefix = KEYS[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]

local function admit_one(now, kb, ab, reservations)
  local nw, cost, stop, nr = tonumber(ARGV[ab + 1]), tonumber(ARGV[ab + 2]), ARGV[ab + 3], tonumber(ARGV[ab + 4])
  local wa = ab + 4

  local totals, dirty = {}, {}
  if nw > 0 then
    local refused, remaining, reset
    totals, refused, remaining, reset, dirty = windows_check(now, kb, wa, nw, cost)
    if refused then
      windows_keep(kb, wa, nw, totals, dirty)
      return { 'windows', 0, now, refused, 0, remaining, reset, reset - now }
    end
  end

  local reaped, tried_reap = 0, false
  -- Nothing consumed: the windows are reported as they stand.
  local function stopped(outcome, j, line, used, reserved)
    local best, remaining, reset = 0, 0, now
    if nw > 0 then best, remaining, reset = windows_tightest(now, kb, wa, nw, cost, totals, dirty, false) end
    return { outcome, reaped, now, best, 1, remaining, reset, 0, j, line, int(used), int(reserved) }
  end

  if stop == 'w' then return stopped('caller', 0, 0, 0, 0) end
  for j = 1, nr do
    local r = reservations[j]
    if redis.call('EXISTS', KEYS[r.kb]) == 1 then return stopped('duplicate', j, 0, 0, 0) end
    r.amounts = split_amounts(r.amounts_csv)
    local bad, used, reserved = lines_check(r.kb, r.ab, r.n, r.amounts)
    -- Held reservations may be leaks past their deadline: free them once and look again.
    if bad and reserved > 0 and not tried_reap then
      tried_reap = true
      reaped = reap_due(idx, reservation_prefix, line_prefix, now, reap_batch)
      if reaped > 0 then bad, used, reserved = lines_check(r.kb, r.ab, r.n, r.amounts) end
    end
    if bad then return stopped('exceeded', j, bad, used, reserved) end
  end
  if stop == 'r' then return stopped('caller', 0, 0, 0, 0) end

  for j = 1, nr do
    local r = reservations[j]
    reserve_hold(now, KEYS[r.kb], idx, r.id, r.amounts_csv, r.amounts, r.ttl, r.kb, r.ab, r.n)
  end
  local best, remaining, reset = 0, 0, now
  if nw > 0 then best, remaining, reset = windows_tightest(now, kb, wa, nw, cost, totals, dirty, true) end
  return { 'ok', reaped, now, best, 1, remaining, reset, 0 }
end

local now = now_ms()
local replies, kb, ab = {}, 1, 4
for i = 1, tonumber(ARGV[1]) do
  local reservations, next_kb, next_ab = admit_layout(kb, ab)
  replies[i] = admit_one(now, kb, ab, reservations)
  kb, ab = next_kb, next_ab
end
return replies
`,
);

/**
 * Presence. KEYS: members hash (member -> value), deadlines sorted set (member -> expiry).
 * ARGV: member, value, ttlMs, most members. Returns the live members flat {member, value, ...},
 * or false when the set is full.
 */
export const heartbeatScript = new LuaScript(
  'heartbeat',
  `${LUA_PRELUDE}
local now = now_ms()
local members, deadlines = KEYS[1], KEYS[2]
local gone = redis.call('ZRANGEBYSCORE', deadlines, '-inf', int(now))
if #gone > 0 then
  redis.call('ZREMRANGEBYSCORE', deadlines, '-inf', int(now))
  for _, m in ipairs(gone) do redis.call('HDEL', members, m) end
end
if redis.call('HEXISTS', members, ARGV[1]) == 0 and redis.call('HLEN', members) >= tonumber(ARGV[4]) then return false end
redis.call('HSET', members, ARGV[1], ARGV[2])
redis.call('ZADD', deadlines, int(now + tonumber(ARGV[3])), ARGV[1])
-- Both keys live as long as the longest-lived member.
local last = redis.call('ZRANGE', deadlines, -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', members, int(tonumber(last[2])))
redis.call('PEXPIREAT', deadlines, int(tonumber(last[2])))
return redis.call('HGETALL', members)
`,
);
