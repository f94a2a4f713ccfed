/**
 * Three gateway processes sharing real Redis and PostgreSQL, with `/api/me` guarded by admission
 * through config (`admission.routes.guard`): 600 concurrent requests from one key with a burst of
 * 50 admit exactly 50, the rest 429 with Retry-After; a live override made through one process
 * is enforced by another within 1 s.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';
import { createTempDatabase, type TempDatabase } from '../support/postgres.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const LIMIT = '{ burst: 50, burstWindowSeconds: 60, hourly: null }';
const ADMISSION_YAML = `
admission:
  rateLimits:
    anonymous: ${LIMIT}
    registered: ${LIMIT}
    paid: ${LIMIT}
    privileged: ${LIMIT}
  routes:
    guard: ['^/api/me$']
`;

async function call(base: string, path: string, token: string, method = 'GET', body?: unknown) {
  const response = await fetch(new URL(path, base), {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

describe('admission across three gateway processes', () => {
  let database: TempDatabase;
  let dir: string;
  let replicas: GatewayProcess[] = [];
  let token: string;

  beforeAll(async () => {
    database = await createTempDatabase();
    dir = mkdtempSync(join(tmpdir(), 'portcullis-admission-'));
    const env = {
      DATABASE_URL: database.url,
      REDIS_URL,
      PORTCULLIS_REDIS_PREFIX: `a${randomBytes(4).toString('hex')}`,
      PORTCULLIS_CONFIG: join(dir, 'portcullis.yaml'),
    };
    const init = await runCli(['init', '--data-dir', dir], { ...env, PORTCULLIS_CONFIG: '' });
    expect(init.code, init.stderr).toBe(0);
    token = /(pck_[^\s]+)/.exec(init.stdout)?.[1] ?? '';
    expect(token).not.toBe('');
    appendFileSync(join(dir, 'portcullis.yaml'), ADMISSION_YAML);
    replicas = await Promise.all([0, 1, 2].map(() => startGatewayProcess(env, dir, 120_000)));
  }, 240_000);

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('600 concurrent requests for one key, burst 50: exactly 50 admitted, the rest 429 with Retry-After', async () => {
    const answers = await Promise.all(Array.from({ length: 600 }, (_, i) => call((replicas[i % 3] as GatewayProcess).url, '/api/me', token)));
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(50);
    expect(statuses.filter((s) => s === 429)).toHaveLength(550);
    for (const answer of answers.filter((a) => a.status === 429)) {
      const retryAfter = Number(answer.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(answer.headers.get('ratelimit-policy')).toBe('"burst";q=50;w=60');
      expect(answer.body).toMatchObject({ error: { code: 'rate_limited', gate: 'rate_limit' } });
    }
  }, 120_000);

  it('an override made through one process is enforced by another within 1 s', async () => {
    const [a, b] = replicas;
    if (a === undefined || b === undefined) throw new Error('replicas missing');
    // Another org would be 404; the bootstrap admin administers its own org.
    const orgs = await call(a.url, '/api/orgs', token);
    const orgId = ((orgs.body.orgs as { id: string }[] | undefined)?.[0] ?? { id: '' }).id;
    const tight = { burst: 1000, burstWindowSeconds: 60, hourly: 1 };
    const put = await call(a.url, `/api/orgs/${orgId}/admission`, token, 'PUT', { rateLimits: { anonymous: tight, registered: tight, paid: tight, privileged: tight } });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    const changedAt = performance.now();
    // Seen on B: its policy header names the hourly cap of 1.
    for (;;) {
      const answer = await call(b.url, '/api/me', token);
      if (answer.headers.get('ratelimit-policy')?.includes('"hour";q=1;') === true) break;
      if (performance.now() - changedAt > 1000) throw new Error('override not applied on the other process within 1 s');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }, 60_000);
});
