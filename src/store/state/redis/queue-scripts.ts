/**
 * Work-queue scripts: the Redis twins of memory/memory-queue.ts. All keys of one queue share the
 * queue name as hash tag.
 *
 * KEYS (every script): ready (list, head = next), items (hash id -> payload), lease (sorted set
 * id -> lease expiry), holder (hash id -> worker), attempts (hash id -> claims so far), outbox
 * (stream of events written with enqueues, completions and requeues).
 */
import { LUA_PRELUDE, LuaScript } from './lua-script.js';

/**
 * ARGV: id, payload, maxLoad ('' for none), has event ('1' | '0'), event.
 * Returns {'ok', depth} | {'duplicate'} | {'full', load}. The outbox event is written only with a push.
 */
export const enqueueScript = new LuaScript(
  'enqueue',
  `
local ready, items, lease = KEYS[1], KEYS[2], KEYS[3]
if redis.call('HEXISTS', items, ARGV[1]) == 1 then return { 'duplicate' } end
local load = redis.call('LLEN', ready) + redis.call('ZCARD', lease)
if ARGV[3] ~= '' and load + 1 > tonumber(ARGV[3]) then return { 'full', load } end
redis.call('HSET', items, ARGV[1], ARGV[2])
local depth = redis.call('RPUSH', ready, ARGV[1])
if ARGV[4] == '1' then redis.call('XADD', KEYS[6], '*', 'e', ARGV[5]) end
return { 'ok', depth }
`,
);

/** ARGV: worker, leaseMs. Returns {id, payload, leaseExpiresAt, attempts} or nil. */
export const claimScript = new LuaScript(
  'claim',
  `${LUA_PRELUDE}
local ready, items, lease, holder, attempts = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now = now_ms()
while true do
  local id = redis.call('LPOP', ready)
  if not id then return false end
  local payload = redis.call('HGET', items, id)
  if payload then
    local expires = now + tonumber(ARGV[2])
    redis.call('ZADD', lease, int(expires), id)
    redis.call('HSET', holder, id, ARGV[1])
    local n = redis.call('HINCRBY', attempts, id, 1)
    return { id, payload, expires, n }
  end
end
`,
);

/** ARGV: id, worker, leaseMs. Returns 1 when renewed. */
export const renewScript = new LuaScript(
  'renew',
  `${LUA_PRELUDE}
local lease, holder = KEYS[3], KEYS[4]
local now = now_ms()
if redis.call('HGET', holder, ARGV[1]) ~= ARGV[2] then return 0 end
local expires = tonumber(redis.call('ZSCORE', lease, ARGV[1]))
if not expires or expires <= now then return 0 end
redis.call('ZADD', lease, int(now + tonumber(ARGV[3])), ARGV[1])
return 1
`,
);

/**
 * ARGV: id, worker, has event ('1' | '0'), event. Returns 1 when removed; the outbox event is
 * written only with a removal.
 */
export const completeScript = new LuaScript(
  'complete',
  `
local items, lease, holder, attempts = KEYS[2], KEYS[3], KEYS[4], KEYS[5]
if redis.call('HGET', holder, ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', items, ARGV[1])
redis.call('HDEL', holder, ARGV[1])
redis.call('HDEL', attempts, ARGV[1])
redis.call('ZREM', lease, ARGV[1])
if ARGV[3] == '1' then redis.call('XADD', KEYS[6], '*', 'e', ARGV[4]) end
return 1
`,
);

/**
 * ARGV: batch size, write outbox entries ('1' | '0'), the entry type. Puts lapsed items back at
 * the head, earliest lapse first; returns how many. With outbox entries, each moved item gets one
 * (a RequeueOutboxEvent: type, itemId, workerId, attempts, at), in lapse order.
 */
export const requeueScript = new LuaScript(
  'requeue',
  `${LUA_PRELUDE}
local ready, lease, holder, attempts = KEYS[1], KEYS[3], KEYS[4], KEYS[5]
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', lease, '-inf', int(now), 'LIMIT', 0, tonumber(ARGV[1]))
if ARGV[2] == '1' then
  for i = 1, #ids do
    local worker = redis.call('HGET', holder, ids[i])
    if worker then
      local n = tonumber(redis.call('HGET', attempts, ids[i]) or '0')
      local event = '{"type":' .. cjson.encode(ARGV[3]) .. ',"itemId":' .. cjson.encode(ids[i]) ..
        ',"workerId":' .. cjson.encode(worker) .. ',"attempts":' .. int(n) .. ',"at":' .. int(now) .. '}'
      redis.call('XADD', KEYS[6], '*', 'e', event)
    end
  end
end
for i = #ids, 1, -1 do
  redis.call('ZREM', lease, ids[i])
  redis.call('HDEL', holder, ids[i])
  redis.call('LPUSH', ready, ids[i])
end
return #ids
`,
);

/** ARGV: id. Returns {'held', worker} | {'queued'} | {'absent'}. */
export const itemStateScript = new LuaScript(
  'queue_item_state',
  `
local items, holder = KEYS[2], KEYS[4]
local worker = redis.call('HGET', holder, ARGV[1])
if worker then return { 'held', worker } end
if redis.call('HEXISTS', items, ARGV[1]) == 1 then return { 'queued' } end
return { 'absent' }
`,
);

/** Returns {queued, inFlight} read together. */
export const loadScript = new LuaScript(
  'queue_load',
  `
return { redis.call('LLEN', KEYS[1]), redis.call('ZCARD', KEYS[3]) }
`,
);
