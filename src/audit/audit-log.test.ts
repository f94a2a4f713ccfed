import { describe, it, expect } from 'vitest';
import { sql } from 'kysely';
import { ManualClock } from '../core/clock.js';
import { AppError } from '../core/errors.js';
import { useEmptyAuditStore } from './audit-test-store.js';
import { createLogger } from '../core/logger.js';
import { parseAuditAnchor } from './anchor.js';
import { AuditLog } from './audit-log.js';
import { GENESIS_HASH, hashRecord } from './record.js';
import type { AuditEventInput } from './sink.js';
import { TEST_AUDIT_KEY, testAuditKeys } from './testing.js';
import { verifyAuditLog } from './verify.js';

// One embedded database per file; each test starts from empty audit tables.
const store = useEmptyAuditStore();

function event(n: number, overrides: Partial<AuditEventInput> = {}): AuditEventInput {
  return { actor: 'usr_admin', orgId: 'org_a', action: 'member.role_change', target: `usr_${n}`, outcome: 'success', details: { n }, ...overrides };
}

async function allRows() {
  return store().db.selectFrom('audit_log').selectAll().orderBy('seq', 'asc').execute();
}

describe('AuditLog.append', () => {
  it('links each record to the one before, starting from the genesis hash', async () => {
    const log = new AuditLog({ db: store().db, signingKey: TEST_AUDIT_KEY, clock: new ManualClock() });
    const first = await log.append(event(1));
    const second = await log.append(event(2));
    expect(first.seq).toBe('1');
    expect(first.prevHash).toBe(GENESIS_HASH);
    expect(second.seq).toBe('2');
    expect(second.prevHash).toBe(first.hash);
    expect(second.hash).toBe(hashRecord({ ...second }));
    const rows = await allRows();
    expect(rows.map((row) => row.hash)).toEqual([first.hash, second.hash]);
    expect(await verifyAuditLog(store().db, testAuditKeys())).toEqual({ ok: true, records: 2, checkpoints: 0, unsignedTail: 2, anchored: false });
  });

  it('keeps one valid chain under 50 concurrent appends', async () => {
    const log = new AuditLog({ db: store().db, signingKey: TEST_AUDIT_KEY, checkpointEvery: 10 });
    const records = await Promise.all(Array.from({ length: 50 }, (_, i) => log.append(event(i))));
    expect(new Set(records.map((record) => record.seq)).size).toBe(50);
    const result = await verifyAuditLog(store().db, testAuditKeys(), { pageSize: 7 });
    expect(result).toEqual({ ok: true, records: 50, checkpoints: 5, unsignedTail: 0, anchored: false });
  });

  it('keeps one valid chain when two AuditLog instances on one database append concurrently', async () => {
    const a = new AuditLog({ db: store().db, signingKey: TEST_AUDIT_KEY });
    const b = new AuditLog({ db: store().db, signingKey: TEST_AUDIT_KEY });
    await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).append(event(i))));
    expect(await verifyAuditLog(store().db, testAuditKeys())).toMatchObject({ ok: true, records: 40 });
  });

  it('stores details with secret-looking entries removed', async () => {
    const log = new AuditLog({ db: store().db, signingKey: TEST_AUDIT_KEY });
    await log.append(event(1, { action: 'key.create', details: { keyId: 'key_1', token: 'pck_abc.def.ghi', scopes: 'read' } }));
    const [row] = await allRows();
    expect(row?.details).toEqual({ keyId: 'key_1', scopes: 'read', redacted: 'token' });
    expect(JSON.stringify(row)).not.toContain('pck_abc');
    expect(await verifyAuditLog(store().db, testAuditKeys())).toMatchObject({ ok: true });
  });

  it('refuses a malformed event before anything is written', async () => {
    const log = new AuditLog({ db: store().db, signingKey: TEST_AUDIT_KEY });
    await expect(log.append(event(1, { action: 'not a verb' }))).rejects.toBeInstanceOf(AppError);
    expect(await allRows()).toHaveLength(0);
  });

  it('refuses a short signing secret at construction', () => {
    expect(() => new AuditLog({ db: store().db, signingKey: { id: 'k', secret: 'short' } })).toThrow(/at least 32/);
  });
});

describe('AuditLog.record (buffered)', () => {
  it('does not write until flushed, then writes in order', async () => {
    const log = new AuditLog({ db: store().db, signingKey: TEST_AUDIT_KEY, flushIntervalMs: 60_000 });
    for (let i = 0; i < 5; i += 1) await log.record(event(i));
    expect(log.pending).toBe(5);
    expect(await allRows()).toHaveLength(0);
    await log.flush();
    expect(log.pending).toBe(0);
    const rows = await allRows();
    expect(rows.map((row) => row.target)).toEqual(['usr_0', 'usr_1', 'usr_2', 'usr_3', 'usr_4']);
    await log.close();
  });

  it('close() writes everything still buffered; nothing is lost on a clean stop', async () => {
    const log = new AuditLog({ db: store().db, signingKey: TEST_AUDIT_KEY, flushIntervalMs: 60_000, batchSize: 7 });
    await Promise.all(Array.from({ length: 30 }, (_, i) => log.record(event(i))));
    await log.close();
    expect(await allRows()).toHaveLength(30);
    expect(await verifyAuditLog(store().db, testAuditKeys())).toMatchObject({ ok: true, records: 30 });
    await expect(log.record(event(99))).rejects.toMatchObject({ code: 'shutting_down' });
  });

  it('flushes on its own in the background', async () => {
    const log = new AuditLog({ db: store().db, signingKey: TEST_AUDIT_KEY, flushIntervalMs: 10 });
    await log.record(event(1));
    await expect.poll(async () => (await allRows()).length, { timeout: 2000 }).toBe(1);
    await log.close();
  });

  it('keeps buffered and durable appends in acceptance order', async () => {
    const log = new AuditLog({ db: store().db, signingKey: TEST_AUDIT_KEY, flushIntervalMs: 60_000 });
    await log.record(event(1));
    await log.record(event(2));
    const durable = await log.append(event(3));
    expect(durable.seq).toBe('3');
    expect((await allRows()).map((row) => row.target)).toEqual(['usr_1', 'usr_2', 'usr_3']);
    await log.close();
  });

  it('pushes back with dependency_unavailable when full and the database is failing, and keeps what it holds', async () => {
    const log = new AuditLog({ db: store().db, signingKey: TEST_AUDIT_KEY, flushIntervalMs: 60_000, bufferLimit: 3, retryDelayMs: 50 });
    // Make writes fail without touching the shared helpers: a trigger that refuses inserts.
    await sql`CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit down'; END $$`.execute(store().db);
    await sql`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse_audit()`.execute(store().db);
    for (let i = 0; i < 3; i += 1) await log.record(event(i));
    await expect(log.record(event(3))).rejects.toMatchObject({ code: 'dependency_unavailable' });
    expect(log.pending).toBe(3);
    await sql`DROP TRIGGER refuse_audit ON audit_log`.execute(store().db);
    await sql`DROP FUNCTION refuse_audit()`.execute(store().db);
    // Nobody calls flush(): the background loop retries on its own once the database is back.
    await expect.poll(async () => (await allRows()).map((row) => row.target), { timeout: 5000 }).toEqual(['usr_0', 'usr_1', 'usr_2']);
    await log.close();
  });

  it('close() rejects when buffered events cannot be written, and keeps them for a later flush', async () => {
    const log = new AuditLog({ db: store().db, signingKey: TEST_AUDIT_KEY, flushIntervalMs: 60_000 });
    await log.record(event(1));
    await sql`CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit down'; END $$`.execute(store().db);
    await sql`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse_audit()`.execute(store().db);
    await expect(log.close()).rejects.toMatchObject({ code: 'dependency_unavailable' });
    expect(log.pending).toBe(1);
    await sql`DROP TRIGGER refuse_audit ON audit_log`.execute(store().db);
    await sql`DROP FUNCTION refuse_audit()`.execute(store().db);
    await log.flush();
    expect(await allRows()).toHaveLength(1);
  });

  it('does not write an event twice when a batch is retried after it was already committed', async () => {
    const log = new AuditLog({ db: store().db, signingKey: TEST_AUDIT_KEY, flushIntervalMs: 60_000 });
    await log.record(event(1));
    await log.flush();
    // Simulate a lost acknowledgement: the same prepared event is offered again.
    const { appendEvents } = await import('./chain-writer.js');
    const [row] = await allRows();
    if (row === undefined) throw new Error('expected a row');
    const again = await appendEvents(
      store().db,
      [{ id: row.id, at: row.at, actor: row.actor, orgId: row.org_id, action: row.action, target: row.target, outcome: row.outcome, details: {} }],
      { signingKey: TEST_AUDIT_KEY, checkpointEvery: 100, now: () => new Date() },
    );
    expect(again.records).toHaveLength(0);
    expect(await allRows()).toHaveLength(1);
  });
});

describe('checkpoints', () => {
  it('signs one every N records and on demand', async () => {
    const log = new AuditLog({ db: store().db, signingKey: TEST_AUDIT_KEY, checkpointEvery: 3, flushIntervalMs: 60_000 });
    for (let i = 0; i < 7; i += 1) await log.append(event(i));
    let checkpoints = await store().db.selectFrom('audit_checkpoints').selectAll().orderBy('seq', 'asc').execute();
    expect(checkpoints.map((c) => c.seq)).toEqual(['3', '6']);
    expect(checkpoints.every((c) => c.key_id === TEST_AUDIT_KEY.id)).toBe(true);
    const onDemand = await log.checkpoint();
    expect(onDemand?.seq).toBe('7');
    expect((await log.checkpoint())?.signature).toBe(onDemand?.signature);
    checkpoints = await store().db.selectFrom('audit_checkpoints').selectAll().execute();
    expect(checkpoints).toHaveLength(3);
    expect(await verifyAuditLog(store().db, testAuditKeys())).toEqual({ ok: true, records: 7, checkpoints: 3, unsignedTail: 0, anchored: false });
  });

  it('checkpoints land on multiples of N however records were batched', async () => {
    const log = new AuditLog({ db: store().db, signingKey: TEST_AUDIT_KEY, checkpointEvery: 4, flushIntervalMs: 60_000 });
    for (let i = 0; i < 9; i += 1) await log.record(event(i));
    await log.close();
    const checkpoints = await store().db.selectFrom('audit_checkpoints').select('seq').orderBy('seq', 'asc').execute();
    // 4 and 8 from the multiples, 9 from close() sealing the tail.
    expect(checkpoints.map((c) => c.seq)).toEqual(['4', '8', '9']);
  });

  it('seals records that waited checkpointIntervalMs, and publishes every checkpoint it signs as a usable anchor', async () => {
    const lines: string[] = [];
    const logger = createLogger({ destination: { write: (line: string) => void lines.push(line) } });
    const log = new AuditLog({ db: store().db, signingKey: TEST_AUDIT_KEY, checkpointEvery: 3, checkpointIntervalMs: 300, flushIntervalMs: 60_000, logger });
    for (let i = 0; i < 4; i += 1) await log.record(event(i));
    await log.flush();
    const seqs = async () => (await store().db.selectFrom('audit_checkpoints').select('seq').orderBy('seq', 'asc').execute()).map((c) => String(c.seq));
    // The fourth record is not covered yet; within the interval it is.
    expect(await seqs()).toEqual(['3']);
    const deadline = Date.now() + 5000;
    while ((await seqs()).length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
    expect(await seqs()).toEqual(['3', '4']);

    const published = lines.filter((line) => line.includes('"auditCheckpoint"'));
    expect(published.map((line) => (JSON.parse(line) as { auditCheckpoint: { seq: string } }).auditCheckpoint.seq)).toEqual(['3', '4']);
    for (const line of published) {
      const parsed = parseAuditAnchor(line);
      if (!parsed.ok) throw new Error(parsed.message);
      expect(await verifyAuditLog(store().db, testAuditKeys(), { anchor: parsed.anchor })).toMatchObject({ ok: true, records: 4, anchored: true, unsignedTail: 0 });
    }
    expect(lines.join('')).not.toContain(String(TEST_AUDIT_KEY.secret));
    await log.close();
    // Nothing new to seal at close: the head is already signed, and it is not published twice.
    expect(lines.filter((line) => line.includes('"auditCheckpoint"'))).toHaveLength(2);
  });

  it('returns null on an empty log', async () => {
    const log = new AuditLog({ db: store().db, signingKey: TEST_AUDIT_KEY });
    expect(await log.checkpoint()).toBeNull();
  });
});
