/**
 * Three gateway PROCESSES sharing real Redis and PostgreSQL, with `/api/me` guarded by admission
 * through config (`admission.routes.guard`), their clocks skewed by −2 min, 0 and +2 min
 * (`PORTCULLIS_CLOCK_OFFSET_MS`, proven in effect below): 600 concurrent requests from one key with a
 * burst of 50 admit exactly 50, the rest 429 with Retry-After; with an hourly cap of 70 (and a
 * large burst) exactly 70; a platform-wide change (rate limits, route patterns) and an org override
 * made through one process are enforced by another within 1 s.
 *
 * Keys are minted through the −2 min process, and `portcullis init` runs with the same offset, so
 * every credential's issue time lies in the past on every replica (a key minted "now" would look
 * issued in the future to a replica whose clock is behind, and be refused; that is key
 * verification doing its job, not admission).
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guardedMeYaml } from '../support/admission-yaml.js';
import { initDistributedDeployment, type DistributedDeployment } from '../support/distributed-deployment.js';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';

const OFFSETS_MS = [-120_000, 0, 120_000];
const ADMISSION_YAML = guardedMeYaml(50);

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

async function call(base: string, path: string, token: string, method = 'GET', body?: unknown): Promise<Answer> {
  const response = await fetch(new URL(path, base), {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

/** Polls until `seen` holds, failing when it takes longer than `withinMs` from `since`. */
async function within(withinMs: number, since: number, seen: () => Promise<boolean>, what: string): Promise<void> {
  for (;;) {
    if (await seen()) return;
    if (performance.now() - since > withinMs) throw new Error(`${what} not seen within ${withinMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('admission across three gateway processes with skewed clocks', () => {
  let deployment: DistributedDeployment;
  let replicas: GatewayProcess[] = [];
  let token: string;
  let orgId: string;

  const replica = (i: number): GatewayProcess => {
    const r = replicas[i];
    if (r === undefined) throw new Error('replicas missing');
    return r;
  };

  /** A fresh key (its own rate-limit windows), minted through the −2 min replica. */
  async function mintKey(through = 0): Promise<{ token: string; expiresAt: string }> {
    const created = await call(replica(through).url, `/api/orgs/${orgId}/keys`, token, 'POST', { name: `k-${randomBytes(3).toString('hex')}`, ttlDays: 1 });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    return { token: String(created.body.token), expiresAt: String((created.body.key as { expiresAt: string }).expiresAt) };
  }

  /** 600 concurrent requests to /api/me, spread over the three processes. */
  const burst = (key: string) => Promise.all(Array.from({ length: 600 }, (_, i) => call(replica(i % 3).url, '/api/me', key)));

  beforeAll(async () => {
    deployment = await initDistributedDeployment('admission', { PORTCULLIS_CLOCK_OFFSET_MS: String(OFFSETS_MS[0]) });
    token = deployment.adminToken;
    appendFileSync(deployment.configPath, ADMISSION_YAML);
    const { env, dir } = deployment;
    replicas = await Promise.all(OFFSETS_MS.map((offset) => startGatewayProcess({ ...env, PORTCULLIS_CLOCK_OFFSET_MS: String(offset) }, dir, 120_000)));
    const orgs = await call(replica(1).url, '/api/orgs', token);
    orgId = ((orgs.body.orgs as { id: string }[] | undefined)?.[0] ?? { id: '' }).id;
    expect(orgId).not.toBe('');
  }, 240_000);

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    await deployment?.remove();
  });

  it('the clock offsets are in effect: a key minted on the +2 min process expires four minutes after one minted on the −2 min process', async () => {
    const behind = await mintKey(0);
    const ahead = await mintKey(2);
    const apart = Date.parse(ahead.expiresAt) - Date.parse(behind.expiresAt);
    expect(apart).toBeGreaterThan(240_000 - 10_000);
    expect(apart).toBeLessThan(240_000 + 10_000);
  });

  it('600 concurrent requests for one key, burst 50: exactly 50 admitted, the rest 429 with Retry-After from store time', async () => {
    const key = await mintKey();
    const answers = await burst(key.token);
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(50);
    expect(statuses.filter((s) => s === 429)).toHaveLength(550);
    for (const answer of answers.filter((a) => a.status === 429)) {
      // A replica deciding on its own skewed clock would answer up to two minutes off.
      const retryAfter = Number(answer.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(answer.headers.get('ratelimit-policy')).toBe('"burst";q=50;w=60');
      expect(answer.body).toMatchObject({ error: { code: 'rate_limited', gate: 'rate_limit', limit_window: 'burst' } });
    }
  }, 120_000);

  it('a platform change through one process (rate limits, route patterns) is enforced by the others within 1 s; an hourly cap of 70 admits exactly 70', async () => {
    const probe = await mintKey();
    const hourly = { burst: 100_000, burstWindowSeconds: 60, hourly: 70 };
    const change = {
      rateLimits: { anonymous: hourly, registered: hourly, paid: hourly, privileged: hourly },
      routes: { guard: ['^/api/me$', '^/api/orgs$'] },
    };
    const invalid = await call(replica(2).url, '/api/admission', token, 'PUT', { backpressure: { thresholds: { paid: 0.99 } } });
    expect(invalid.status).toBe(400);
    expect(invalid.body).toMatchObject({ error: { code: 'validation_failed', message: 'admission.backpressure.thresholds.paid: must be below hard' } });
    const put = await call(replica(2).url, '/api/admission', token, 'PUT', change);
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    const changedAt = performance.now();
    for (const other of [0, 1]) {
      const url = replica(other).url;
      await within(1000, changedAt, async () => (await call(url, '/api/me', probe.token)).headers.get('ratelimit-policy') === '"burst";q=100000;w=60, "hour";q=70;w=3600', `the new limits on replica ${other}`);
      // A route that was authenticate-only, already registered, is guarded from now on.
      await within(1000, changedAt, async () => (await call(url, '/api/orgs', probe.token)).headers.get('ratelimit-policy') !== null, `the new route pattern on replica ${other}`);
    }

    const key = await mintKey();
    const answers = await burst(key.token);
    expect(answers.filter((a) => a.status === 200)).toHaveLength(70);
    const refused = answers.filter((a) => a.status === 429);
    expect(refused).toHaveLength(530);
    for (const answer of refused) {
      expect(answer.body).toMatchObject({ error: { code: 'rate_limited', limit_window: 'hour', limit_limit: 70 } });
      const retryAfter = Number(answer.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(3590);
      expect(retryAfter).toBeLessThanOrEqual(3600);
    }
  }, 120_000);

  it('an org override made through one process is enforced by another within 1 s', async () => {
    const tight = { burst: 1000, burstWindowSeconds: 60, hourly: 1 };
    const put = await call(replica(0).url, `/api/orgs/${orgId}/admission`, token, 'PUT', { rateLimits: { anonymous: tight, registered: tight, paid: tight, privileged: tight } });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    const changedAt = performance.now();
    const probe = await mintKey();
    await within(1000, changedAt, async () => (await call(replica(1).url, '/api/me', probe.token)).headers.get('ratelimit-policy')?.includes('"hour";q=1;') === true, 'the org override on replica 1');
  }, 60_000);
});
