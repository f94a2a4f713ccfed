/**
 * The hot-state contract against a real Redis, plus what only a real server can show: two
 * connections as two replicas, fail-fast when the server is gone, recovery after a dropped
 * connection. Fails (never skips) when Redis is unreachable. Everything lives under a prefix unique
 * to this run and is deleted at the end.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deletePrefix, REDIS_URL } from '../support/redis.js';
import { describeHotStateContract } from '../../src/store/state/contract.js';
import { createHotState, HotStateUnavailable, isHotStateUnavailable } from '../../src/store/state/index.js';
import { RedisHotState } from '../../src/store/state/redis/redis-hot-state.js';
import { LUA_PRELUDE, LuaScript } from '../../src/store/state/redis/lua-script.js';
import { WINDOWS_LUA } from '../../src/store/state/redis/window-script.js';
import { RedisKeys } from '../../src/store/state/redis/keys.js';
import { LIMITS } from '../../src/store/state/validation.js';

const PREFIX = `pc-test-${randomBytes(5).toString('hex')}`;

/** Finds this run's connections by client name and kills them, as a network blip would. */
async function killConnections(namePrefix: string): Promise<number> {
  const admin = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await admin.connect();
  try {
    const list = await admin.client('LIST');
    const ids = String(list)
      .split('\n')
      .filter((line) => line.includes(` name=${namePrefix}`))
      .map((line) => /\bid=(\d+)/.exec(line)?.[1])
      .filter((id): id is string => id !== undefined);
    for (const id of ids) await admin.client('KILL', 'ID', id);
    return ids.length;
  } finally {
    await admin.quit();
  }
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describeHotStateContract('redis', async () => {
  const state = await RedisHotState.connect({ url: REDIS_URL, prefix: PREFIX });
  const peers: RedisHotState[] = [];
  return {
    state,
    peer: async () => {
      const peer = await RedisHotState.connect({ url: REDIS_URL, prefix: PREFIX });
      peers.push(peer);
      return peer;
    },
    cleanup: async () => {
      await Promise.all([state, ...peers].map((s) => s.close()));
      await deletePrefix(PREFIX);
    },
  };
});

describe('RedisHotState against a real server', () => {
  const prefix = `${PREFIX}-x`;
  let state: RedisHotState;

  beforeAll(async () => {
    state = await RedisHotState.connect({ url: REDIS_URL, prefix, connectionName: `${prefix}-conn` });
  });
  afterAll(async () => {
    await state.close();
    await deletePrefix(prefix);
  });

  it('keeps every key of a scope in one hash-tagged slot under the prefix', async () => {
    await state.set('org_1', 'k', 'v');
    await state.hitWindows('org_1', 'k', [{ name: 'w', limit: 5, windowMs: 60_000 }]);
    await state.reserve('org_1', { reservationId: 'r', amounts: [1], lines: [{ key: 'b', cap: 9, expiresAt: Date.now() + 60_000 }], ttlMs: 60_000 });
    const keys = await state.client.keys(`${prefix}:*`);
    expect(keys.length).toBeGreaterThanOrEqual(5);
    for (const key of keys) expect(key.startsWith(`${prefix}:{org_1}:`)).toBe(true);
    // Cluster hashes only the text between the first braces, so one tag means one slot.
    const tags = new Set(keys.map((k) => /\{([^}]*)\}/.exec(k)?.[1]));
    expect([...tags]).toEqual(['org_1']);
  });

  it('remembers a settled reservation for the retry horizon, not for its whole ttl', async () => {
    const month = Date.now() + 30 * 24 * 3600 * 1000;
    await state.reserve('org_2', { reservationId: 'settled', amounts: [10], lines: [{ key: 'cost', cap: 1000, expiresAt: month }], ttlMs: 600_000 });
    const key = `${new RedisKeys(prefix).reservationPrefix('org_2')}settled`;
    // Held: kept until its line is over (the reaper's safety net).
    expect(await state.client.pttl(key)).toBeGreaterThan(600_000);
    expect(await state.commit('org_2', 'settled', [5])).toEqual({ ok: true, state: 'committed', amounts: [5] });
    const ttl = await state.client.pttl(key);
    expect(ttl).toBeGreaterThan(LIMITS.settledRecordMs - 5000);
    expect(ttl).toBeLessThanOrEqual(LIMITS.settledRecordMs);
    expect(await state.commit('org_2', 'settled', [9])).toEqual({ ok: true, state: 'already_committed', amounts: [5] });
  });

  it('stays exact across three replicas (connections) hitting the same keys at once', async () => {
    const replicas = await Promise.all([1, 2, 3].map(() => RedisHotState.connect({ url: REDIS_URL, prefix })));
    try {
      const scope = `multi-${randomBytes(3).toString('hex')}`;
      const pick = (i: number): RedisHotState => replicas[i % 3]!;
      const windows = [{ name: 'burst', limit: 50, windowMs: 60_000 }];
      const hits = await Promise.all(Array.from({ length: 300 }, (_, i) => pick(i).hitWindows(scope, 'k', windows)));
      expect(hits.filter((h) => h.allowed)).toHaveLength(50);

      const lines = [{ key: 'org', cap: 1_000_000, expiresAt: Date.now() + 3_600_000 }];
      const reserves = await Promise.all(
        Array.from({ length: 200 }, (_, i) => pick(i).reserve(scope, { reservationId: `r${i}`, amounts: [100_000], lines, ttlMs: 60_000 })),
      );
      expect(reserves.filter((r) => r.ok)).toHaveLength(10);
      expect(await state.budgetUsage(scope, 'org')).toEqual({ used: 0, reserved: 1_000_000 });

      const enqueues = await Promise.all(
        Array.from({ length: 90 }, (_, i) => pick(i).enqueue(scope, { id: `t${i}`, payload: '' }, { maxLoad: 25 }, `e${i}`)),
      );
      expect(enqueues.filter((r) => r.ok)).toHaveLength(25);
      expect(await state.readOutbox(scope, 100)).toHaveLength(25);
    } finally {
      await Promise.all(replicas.map((r) => r.close()));
    }
  });

  it('takes its time from the server', async () => {
    const before = Date.now();
    const now = await state.now();
    expect(Math.abs(now - before)).toBeLessThan(5_000);
  });

  it('fails fast with HotStateUnavailable when Redis cannot be reached', async () => {
    const started = Date.now();
    const err: unknown = await RedisHotState.connect({ url: 'redis://127.0.0.1:1', prefix, connectTimeoutMs: 500 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HotStateUnavailable);
    expect(isHotStateUnavailable(err)).toBe(true);
    expect(Date.now() - started).toBeLessThan(3_000);
    await expect(createHotState({ redisUrl: 'redis://127.0.0.1:1', prefix })).rejects.toBeInstanceOf(HotStateUnavailable);
  });

  it('answers HotStateUnavailable while disconnected, then heals and resubscribes by itself', async () => {
    const got: string[] = [];
    const off = await state.subscribe('heal', (m) => got.push(m));
    expect(await killConnections(`${prefix}-conn`)).toBeGreaterThanOrEqual(2);
    // Straight after the kill a call either fails as unavailable or already runs on the new connection.
    const outcome = await state.get('s', 'k').then(
      () => 'ok',
      (e: unknown) => (isHotStateUnavailable(e) ? 'unavailable' : 'other'),
    );
    expect(['ok', 'unavailable']).toContain(outcome);
    await waitFor(async () => {
      await state.ping();
      return true;
    }, 5_000);
    const other = await RedisHotState.connect({ url: REDIS_URL, prefix });
    try {
      await waitFor(async () => {
        await other.publish('heal', 'back');
        return got.includes('back');
      }, 5_000);
    } finally {
      await other.close();
      await off();
    }
  });

  it('reports a closed adapter as unavailable, not as a bug', async () => {
    const closing = await RedisHotState.connect({ url: REDIS_URL, prefix });
    await closing.close();
    await expect(closing.get('s', 'k')).rejects.toBeInstanceOf(HotStateUnavailable);
  });

  it('sends a script in full when the server does not know its hash', async () => {
    // SCRIPT FLUSH would disturb other suites sharing this server; a never-seen script is the same case.
    const script = new LuaScript('probe', `-- ${randomBytes(8).toString('hex')}\nreturn ARGV[1]`);
    expect(await state.client.script('EXISTS', script.sha)).toEqual([0]);
    expect(await script.run(state.client, [], ['hello'])).toBe('hello');
    expect(await state.client.script('EXISTS', script.sha)).toEqual([1]);
  });

  it('keeps two hits of the same millisecond and total apart, as after the server clock stepped back', async () => {
    const probe = new LuaScript('log_hit_probe', `${LUA_PRELUDE}${WINDOWS_LUA}
log_hit(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
return redis.call('ZRANGE', KEYS[1], 0, -1)`);
    const log = `${prefix}:{clock}:log`;
    await probe.run(state.client, [log], [1_000, 5, 2]);
    const members = (await probe.run(state.client, [log], [1_000, 5, 2])) as string[];
    expect(members).toHaveLength(2);
    expect(new Set(members).size).toBe(2);
    // Both still say their cost, which is all a window reads from a member.
    for (const member of members) expect(member.endsWith(':2')).toBe(true);
    expect(await state.client.zcount(log, 1_000, 1_000)).toBe(2);
  });
});
