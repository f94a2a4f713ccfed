/**
 * The seeded route fuzz (test/support/route-fuzz.ts) against the built gateway on real PostgreSQL
 * and Redis, whose stores answer bad text and odd keys in their own ways: whatever is sent, the
 * answer is a deliberate one — never a 500, never a stack trace, every refusal in the error shape.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';
import { createTempDatabase, type TempDatabase } from '../support/postgres.js';
import { REDIS_URL, deletePrefix } from '../support/redis.js';
import { expectOnlyDeliberateAnswers, fuzzRoutes, memberOf, type FuzzTarget } from '../support/route-fuzz.js';

const REQUESTS = 1_200;
const SEED = 20261205;

let database: TempDatabase;
let dir: string;
let prefix: string;
let gateway: GatewayProcess;
let target: FuzzTarget;

beforeAll(async () => {
  database = await createTempDatabase();
  dir = mkdtempSync(join(tmpdir(), 'portcullis-fuzz-'));
  prefix = `t${randomBytes(4).toString('hex')}`;
  const env = { DATABASE_URL: database.url, REDIS_URL, PORTCULLIS_REDIS_PREFIX: prefix, PORTCULLIS_CONFIG: join(dir, 'portcullis.yaml') };
  const init = await runCli(['init', '--data-dir', dir], { ...env, PORTCULLIS_CONFIG: '' });
  expect(init.code, init.stderr).toBe(0);
  const adminToken = /(pck_[^\s]+)/.exec(init.stdout)?.[1] ?? '';
  expect(adminToken).not.toBe('');
  gateway = await startGatewayProcess(env, dir, 90_000);
  target = await memberOf(gateway.url, adminToken);
}, 180_000);

afterAll(async () => {
  await gateway?.stop();
  await database?.drop();
  await deletePrefix(prefix);
  rmSync(dir, { recursive: true, force: true });
});

describe('every route on Redis + PostgreSQL against schema-derived and bent requests', () => {
  it(`answers ${REQUESTS} of them deliberately: no 500, no stack trace, every refusal in the error shape`, async () => {
    expectOnlyDeliberateAnswers(await fuzzRoutes(target, { seed: SEED, requests: REQUESTS }));
  }, 240_000);
});
