/**
 * The audit chain on real PostgreSQL, where two connection pools (two "replicas") really append
 * side by side: the advisory lock must keep one linear chain with no gap, fork or duplicate, and
 * what node-postgres hands back (timestamptz, jsonb) must rehash to exactly what was written.
 * Isolated in a unique schema, dropped afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { TEST_AUDIT_KEY, testAuditKeys } from '../../src/audit/testing.js';
import { verifyAuditLog } from '../../src/audit/verify.js';
import type { AuditEventInput } from '../../src/audit/sink.js';
import type { RecordStore } from '../../src/store/db/index.js';
import { openSharedSchema, type SharedSchema } from '../support/postgres.js';

let schema: SharedSchema;
let replicaA: RecordStore;
let replicaB: RecordStore;

beforeAll(async () => {
  schema = await openSharedSchema('audit', 2);
  [replicaA, replicaB] = schema.stores as [RecordStore, RecordStore];
});

afterAll(async () => {
  await schema?.drop();
});

function event(replica: string, n: number): AuditEventInput {
  return {
    actor: `usr_${replica}`,
    orgId: n % 2 === 0 ? 'org_a' : null,
    action: 'member.role_change',
    target: `usr_${n}`,
    outcome: 'success',
    // Values whose storage is easy to get subtly wrong: unicode, floats, large and negative numbers.
    details: { n, ratio: n / 7, big: 2 ** 53 - n, neg: -n, text: `Zoë 🚀 «${n}»`, flag: n % 3 === 0, none: null },
  };
}

describe('audit chain on PostgreSQL with two replicas', () => {
  it('keeps one valid chain while both replicas append concurrently, durable and buffered', async () => {
    const logA = new AuditLog({ db: replicaA.db, signingKey: TEST_AUDIT_KEY, checkpointEvery: 25, batchSize: 16, flushIntervalMs: 5 });
    const logB = new AuditLog({ db: replicaB.db, signingKey: TEST_AUDIT_KEY, checkpointEvery: 25, batchSize: 16, flushIntervalMs: 5 });
    const work: Promise<unknown>[] = [];
    for (let i = 0; i < 60; i += 1) {
      work.push(logA.append(event('a', i)), logB.append(event('b', i)));
      work.push(logA.record(event('a', 1000 + i)), logB.record(event('b', 1000 + i)));
    }
    await Promise.all(work);
    await Promise.all([logA.close(), logB.close()]);

    const result = await verifyAuditLog(replicaA.db, testAuditKeys(), { pageSize: 37 });
    // Every 25th record, plus the head sealed by close() (the second close finds it already signed).
    expect(result).toEqual({ ok: true, records: 240, checkpoints: Math.floor(240 / 25) + 1, unsignedTail: 0, anchored: false });

    const seqs = await schema.admin.query<{ n: string; distinct_ids: string; max: string }>(
      `SELECT count(*) AS n, count(DISTINCT id) AS distinct_ids, max(seq) AS max FROM ${schema.name}.audit_log`,
    );
    expect(seqs.rows[0]).toEqual({ n: '240', distinct_ids: '240', max: '240' });
  });

  it('detects an edit made directly in PostgreSQL', async () => {
    await schema.admin.query(`UPDATE ${schema.name}.audit_log SET details = jsonb_set(details, '{n}', '999') WHERE seq = 17`);
    expect(await verifyAuditLog(replicaB.db, testAuditKeys())).toEqual({ ok: false, firstBadSeq: '17', reason: 'hash_mismatch' });
  });
});
