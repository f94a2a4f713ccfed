/**
 * Two replicas sharing real Redis: a proof-of-possession proof accepted by one is refused as a
 * replay by the other. Isolated by a unique key prefix; the one replay record is deleted after.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redeemCapability, sealCapability, type RedeemDeps } from '../../src/capabilities/index.js';
import { sha256Hex } from '../../src/core/crypto.js';
import { RedisHotState } from '../../src/store/state/redis/redis-hot-state.js';
import { claims, keyring } from '../../src/capabilities/testing/fixtures.js';
import { ath, makeProof, proofKey } from '../../src/capabilities/testing/proofs.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const run = randomBytes(5).toString('hex');
const OPENAI = 'https://api.openai.com/v1/chat/completions';

let replicaA: RedisHotState;
let replicaB: RedisHotState;
const cleanup: Array<[string, string]> = [];

beforeAll(async () => {
  replicaA = await RedisHotState.connect({ url: REDIS_URL, prefix: `tcap${run}` });
  replicaB = await RedisHotState.connect({ url: REDIS_URL, prefix: `tcap${run}` });
});

afterAll(async () => {
  for (const [scope, key] of cleanup) await replicaA?.delete(scope, key);
  await Promise.allSettled([replicaA?.close(), replicaB?.close()]);
});

describe('proof replay across replicas sharing Redis', () => {
  it('refuses on replica B a proof already used on replica A', async () => {
    const ring = keyring();
    const key = await proofKey('ES256');
    // Real time here: the Redis adapter's TTLs run on the server clock.
    const now = Date.now();
    const token = sealCapability(claims({ binding: { type: 'pop', jkt: key.jkt }, issuedAt: now - 1000, expiresAt: now + 3_600_000 }), ring);
    const jti = `replay-${run}`;
    const proof = await makeProof(key, { jti, htm: 'POST', htu: OPENAI, iat: Math.floor(now / 1000), ath: ath(token) });
    cleanup.push([`pop:${key.jkt}`, `jti:${sha256Hex(jti)}`]);

    const deps = (replay: RedisHotState): RedeemDeps => ({ keyring: ring, isRevoked: async () => false, replay });
    const request = { method: 'POST', url: OPENAI, proof, now };
    const results = await Promise.all([redeemCapability(token, request, deps(replicaA)), redeemCapability(token, request, deps(replicaB))]);
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok)).toEqual([expect.objectContaining({ ok: false, reason: 'proof_replayed', status: 403 })]);

    const later = await redeemCapability(token, request, deps(replicaB));
    expect(later).toMatchObject({ ok: false, reason: 'proof_replayed' });
  });
});
