import { describe, it, expect } from 'vitest';
import { useEmptyAuditStore } from './audit-test-store.js';
import { AuditLog } from './audit-log.js';
import { runAuditVerify } from './cli.js';
import { hashRecord, signCheckpoint, type AuditRecord } from './record.js';
import { checkpointFromRow, recordFromRow, rowFromCheckpoint } from './rows.js';
import { TEST_AUDIT_KEY, testAuditKeys } from './testing.js';
import { verifyAuditLog } from './verify.js';

// One embedded database per file; each test starts from empty audit tables.
const store = useEmptyAuditStore();

/** Writes `count` records, checkpointing every `every`. */
async function seed(count: number, every = 1000): Promise<void> {
  const log = new AuditLog({ db: store().db, signingKey: TEST_AUDIT_KEY, checkpointEvery: every, flushIntervalMs: 60_000 });
  for (let i = 1; i <= count; i += 1) {
    await log.record({ actor: `usr_${i % 3}`, orgId: 'org_a', action: 'settings.update', target: `setting_${i}`, outcome: 'success', details: { i } });
  }
  await log.close();
}

async function recordAt(seq: number): Promise<AuditRecord> {
  const row = await store().db.selectFrom('audit_log').selectAll().where('seq', '=', String(seq)).executeTakeFirstOrThrow();
  return recordFromRow(row);
}

/** An attacker with write access edits a record and recomputes its own hash. */
async function editAndRehash(seq: number, edit: (record: AuditRecord) => AuditRecord): Promise<void> {
  const edited = edit(await recordAt(seq));
  const hash = hashRecord(edited);
  await store().db
    .updateTable('audit_log')
    .set({ actor: edited.actor, details: JSON.stringify(edited.details), prev_hash: edited.prevHash, hash })
    .where('seq', '=', String(seq))
    .execute();
}

const verify = (pageSize = 4) => verifyAuditLog(store().db, testAuditKeys(), { pageSize });

describe('verifyAuditLog', () => {
  it('accepts an empty log and an intact one', async () => {
    expect(await verify()).toEqual({ ok: true, records: 0, checkpoints: 0, unsignedTail: 0, anchored: false });
    await seed(10, 4);
    // 4 and 8, plus 10 from close().
    expect(await verify()).toEqual({ ok: true, records: 10, checkpoints: 3, unsignedTail: 0, anchored: false });
  });

  it('names an edited field: hash_mismatch at that record', async () => {
    await seed(10);
    await store().db.updateTable('audit_log').set({ actor: 'usr_innocent' }).where('seq', '=', '6').execute();
    expect(await verify()).toEqual({ ok: false, firstBadSeq: '6', reason: 'hash_mismatch' });
  });

  it('names an edited jsonb detail and an edited time', async () => {
    await seed(10);
    await store().db.updateTable('audit_log').set({ details: JSON.stringify({ i: 99 }) }).where('seq', '=', '3').execute();
    await store().db.updateTable('audit_log').set({ at: new Date(0) }).where('seq', '=', '8').execute();
    expect(await verify()).toEqual({ ok: false, firstBadSeq: '3', reason: 'hash_mismatch' });
  });

  it('names a deleted middle record: gap at the missing seq', async () => {
    await seed(10);
    await store().db.deleteFrom('audit_log').where('seq', '=', '5').execute();
    expect(await verify()).toEqual({ ok: false, firstBadSeq: '5', reason: 'gap' });
  });

  it('names a deleted first record', async () => {
    await seed(3);
    await store().db.deleteFrom('audit_log').where('seq', '=', '1').execute();
    expect(await verify()).toEqual({ ok: false, firstBadSeq: '1', reason: 'gap' });
  });

  it('catches an edited record that was re-hashed: the link breaks at the next record', async () => {
    await seed(10);
    await editAndRehash(4, (record) => ({ ...record, actor: 'usr_innocent' }));
    expect(await verify()).toEqual({ ok: false, firstBadSeq: '5', reason: 'broken_link' });
  });

  it('names the record itself when a re-hashed record sits on a checkpoint', async () => {
    await seed(10, 4);
    await editAndRehash(4, (record) => ({ ...record, actor: 'usr_innocent' }));
    expect(await verify()).toEqual({ ok: false, firstBadSeq: '4', reason: 'checkpoint_mismatch' });
  });

  it('catches a rewrite of the whole tail after a deletion through the signed checkpoints', async () => {
    await seed(10, 4);
    // Delete record 3, renumber 4..10 down by one and re-chain every hash: internally consistent.
    await store().db.deleteFrom('audit_log').where('seq', '=', '3').execute();
    let prev = (await recordAt(2)).hash;
    for (let seq = 4; seq <= 10; seq += 1) {
      const record = await recordAt(seq);
      const moved = { ...record, seq: String(seq - 1), prevHash: prev };
      const hash = hashRecord(moved);
      await store().db.deleteFrom('audit_log').where('seq', '=', String(seq)).execute();
      await store().db
        .insertInto('audit_log')
        .values({ seq: moved.seq, id: moved.id, at: moved.at, actor: moved.actor, org_id: moved.orgId, action: moved.action, target: moved.target, outcome: moved.outcome, details: JSON.stringify(moved.details), prev_hash: moved.prevHash, hash })
        .execute();
      prev = hash;
    }
    expect(await verify()).toEqual({ ok: false, firstBadSeq: '4', reason: 'checkpoint_mismatch' });
  });

  it('detects truncation of the tail below the last checkpoint', async () => {
    await seed(12, 5);
    await store().db.deleteFrom('audit_log').where('seq', '>=', '9').execute();
    expect(await verify()).toEqual({ ok: false, firstBadSeq: '9', reason: 'truncated' });
  });

  it('detects truncation of records written after the last periodic checkpoint thanks to close()', async () => {
    await seed(12, 5);
    await store().db.deleteFrom('audit_log').where('seq', '>=', '11').execute();
    expect(await verify()).toEqual({ ok: false, firstBadSeq: '11', reason: 'truncated' });
  });

  it('cannot see truncation when the checkpoints above the cut are deleted too (the limit of in-database checkpoints)', async () => {
    await seed(12, 5);
    await store().db.deleteFrom('audit_log').where('seq', '>=', '11').execute();
    await store().db.deleteFrom('audit_checkpoints').where('seq', '>=', '11').execute();
    expect(await verify()).toEqual({ ok: true, records: 10, checkpoints: 2, unsignedTail: 0, anchored: false });
  });

  it('names a forged checkpoint', async () => {
    await seed(10, 5);
    const record = await recordAt(7);
    const forged = signCheckpoint({ id: TEST_AUDIT_KEY.id, secret: 'an-attacker-guess-that-is-long-enough-0000' }, record.seq, record.hash, new Date());
    await store().db.insertInto('audit_checkpoints').values(rowFromCheckpoint(forged)).execute();
    expect(await verify()).toEqual({ ok: false, firstBadSeq: '7', reason: 'checkpoint_signature' });
  });

  it('names a checkpoint signed with an unknown key id, and one forged beyond the end', async () => {
    await seed(6);
    const record = await recordAt(2);
    const unknown = signCheckpoint({ id: 'other', secret: 'x'.repeat(40) }, record.seq, record.hash, new Date());
    await store().db.insertInto('audit_checkpoints').values(rowFromCheckpoint(unknown)).execute();
    expect(await verify()).toEqual({ ok: false, firstBadSeq: '2', reason: 'checkpoint_signature' });
    await store().db.deleteFrom('audit_checkpoints').execute();
    const beyond = signCheckpoint({ id: TEST_AUDIT_KEY.id, secret: 'y'.repeat(40) }, '50', 'f'.repeat(64), new Date());
    await store().db.insertInto('audit_checkpoints').values(rowFromCheckpoint(beyond)).execute();
    expect(await verify()).toEqual({ ok: false, firstBadSeq: '50', reason: 'checkpoint_signature' });
  });

  it('names an edited checkpoint time', async () => {
    await seed(6, 3);
    await store().db.updateTable('audit_checkpoints').set({ at: new Date(0) }).where('seq', '=', '3').execute();
    expect(await verify()).toEqual({ ok: false, firstBadSeq: '3', reason: 'checkpoint_signature' });
  });

  it('reports the earliest problem when there are several', async () => {
    await seed(12, 5);
    await store().db.deleteFrom('audit_log').where('seq', '>=', '11').execute();
    await store().db.deleteFrom('audit_log').where('seq', '=', '8').execute();
    await store().db.updateTable('audit_log').set({ target: 'x' }).where('seq', '=', '2').execute();
    expect(await verify()).toEqual({ ok: false, firstBadSeq: '2', reason: 'hash_mismatch' });
  });

  it('verifies checkpoints made under a retired key while it is still supplied', async () => {
    const oldKey = { id: 'audit-old', secret: 'old-audit-signing-secret-0123456789abcdef' };
    const before = new AuditLog({ db: store().db, signingKey: oldKey, checkpointEvery: 2 });
    await before.append({ actor: 'system', orgId: null, action: 'settings.update', outcome: 'success' });
    await before.append({ actor: 'system', orgId: null, action: 'settings.update', outcome: 'success' });
    await seed(2, 2);
    expect(await verifyAuditLog(store().db, testAuditKeys(oldKey))).toEqual({ ok: true, records: 4, checkpoints: 2, unsignedTail: 0, anchored: false });
    expect(await verifyAuditLog(store().db, testAuditKeys())).toEqual({ ok: false, firstBadSeq: '2', reason: 'checkpoint_signature' });
  });
});

describe('verifyAuditLog with an anchor kept outside the database', () => {
  const anchorAt = async (seq: number) => checkpointFromRow(await store().db.selectFrom('audit_checkpoints').selectAll().where('seq', '=', String(seq)).executeTakeFirstOrThrow());

  it('detects a tail deleted together with its checkpoints', async () => {
    await seed(12, 5);
    const anchor = await anchorAt(12);
    await store().db.deleteFrom('audit_log').where('seq', '>=', '11').execute();
    await store().db.deleteFrom('audit_checkpoints').where('seq', '>=', '11').execute();
    expect(await verify()).toMatchObject({ ok: true, records: 10 });
    expect(await verifyAuditLog(store().db, testAuditKeys(), { anchor, pageSize: 4 })).toEqual({ ok: false, firstBadSeq: '11', reason: 'truncated' });
  });

  it('detects records rewritten under the anchor, and refuses a forged anchor before reading anything', async () => {
    await seed(9, 5);
    const record = await recordAt(7);
    const elsewhere = signCheckpoint(TEST_AUDIT_KEY, '7', 'a'.repeat(64), new Date());
    expect(await verifyAuditLog(store().db, testAuditKeys(), { anchor: elsewhere })).toEqual({ ok: false, firstBadSeq: '7', reason: 'checkpoint_mismatch' });
    const forged = signCheckpoint({ id: TEST_AUDIT_KEY.id, secret: 'an-attacker-guess-that-is-long-enough-0000' }, '7', record.hash, new Date());
    expect(await verifyAuditLog(store().db, testAuditKeys(), { anchor: forged })).toEqual({ ok: false, firstBadSeq: '7', reason: 'checkpoint_signature' });
    expect(await verifyAuditLog(store().db, testAuditKeys(), { anchor: signCheckpoint(TEST_AUDIT_KEY, '7', record.hash, new Date()) })).toMatchObject({ ok: true, anchored: true });
  });

  it('counts the records no signature covers, the anchor included', async () => {
    const log = new AuditLog({ db: store().db, signingKey: TEST_AUDIT_KEY, checkpointEvery: 5, checkpointOnClose: false });
    for (let i = 0; i < 13; i += 1) await log.append({ actor: 'system', orgId: null, action: 'settings.update', outcome: 'success' });
    await log.close();
    expect(await verify()).toEqual({ ok: true, records: 13, checkpoints: 2, unsignedTail: 3, anchored: false });
    const anchor = signCheckpoint(TEST_AUDIT_KEY, '12', (await recordAt(12)).hash, new Date());
    expect(await verifyAuditLog(store().db, testAuditKeys(), { anchor })).toEqual({ ok: true, records: 13, checkpoints: 2, unsignedTail: 1, anchored: true });
    const unsealed = await runAuditVerify({ db: store().db, keys: testAuditKeys() });
    expect(unsealed.message).toContain('The last 3 record(s) come after the newest signed checkpoint');
    expect(unsealed.message).toContain('--anchor');
    const anchored = await runAuditVerify({ db: store().db, keys: testAuditKeys(), anchor });
    expect(anchored.exitCode).toBe(0);
    expect(anchored.message).toContain('It still holds the anchor at record 12.');
  });
});

describe('runAuditVerify', () => {
  it('exits 0 with the count on an intact log', async () => {
    await seed(3, 3);
    const result = await runAuditVerify({ db: store().db, keys: testAuditKeys() });
    expect(result.exitCode).toBe(0);
    expect(result.message).toContain('3 record(s)');
    expect(result.message).toContain('1 signed checkpoint(s)');
  });

  it('exits 1 naming the first bad record and why', async () => {
    await seed(5);
    await store().db.deleteFrom('audit_log').where('seq', '=', '2').execute();
    const result = await runAuditVerify({ db: store().db, keys: testAuditKeys() });
    expect(result.exitCode).toBe(1);
    expect(result.message).toMatch(/record 2 \(gap\)/);
    expect(result.message).not.toContain(String(TEST_AUDIT_KEY.secret));
  });
});
