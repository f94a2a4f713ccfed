import { afterAll, beforeAll, describe, it, expect } from 'vitest';
import { ManualClock } from '../core/clock.js';
import { AppError } from '../core/errors.js';
import { openTestRecordStore } from '../store/db/testing.js';
import type { RecordStore } from '../store/db/record-store.js';
import { AuditLog } from './audit-log.js';
import { decodeCursor, encodeCursor, queryAudit } from './query.js';
import { TEST_AUDIT_KEY } from './testing.js';

let store: RecordStore;
const start = Date.UTC(2026, 0, 1);

// 30 events: org_a gets even i, org_b odd i; actors rotate over three users; one event a minute.
beforeAll(async () => {
  store = await openTestRecordStore();
  const clock = new ManualClock(start);
  const log = new AuditLog({ db: store.db, signingKey: TEST_AUDIT_KEY, clock, flushIntervalMs: 60_000 });
  for (let i = 0; i < 30; i += 1) {
    await log.record({
      actor: `usr_${i % 3}`,
      orgId: i % 2 === 0 ? 'org_a' : 'org_b',
      action: i % 5 === 0 ? 'key.revoke' : i % 5 === 1 ? 'key.create' : 'member.role_change',
      target: `t${i}`,
      outcome: 'success',
    });
    clock.advance(60_000);
  }
  await log.record({ actor: 'system', orgId: null, action: 'settings.update', outcome: 'success' });
  await log.close();
});
afterAll(async () => {
  await store.close();
});

describe('queryAudit', () => {
  it('returns newest first with a cursor to the next page', async () => {
    const page = await queryAudit(store.db, { limit: 10 });
    expect(page.items.map((item) => item.seq)).toEqual(['31', '30', '29', '28', '27', '26', '25', '24', '23', '22']);
    expect(page.nextCursor).not.toBeNull();
  });

  it('walks every page exactly once with keyset pagination', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 10; pages += 1) {
      const page = await queryAudit(store.db, { orgId: 'org_a', limit: 4, ...(cursor === undefined ? {} : { cursor }) });
      seen.push(...page.items.map((item) => item.target ?? ''));
      if (page.nextCursor === null) break;
      cursor = page.nextCursor;
    }
    expect(seen).toHaveLength(15);
    expect(new Set(seen).size).toBe(15);
    expect(seen[0]).toBe('t28');
    expect(seen.at(-1)).toBe('t0');
  });

  it('filters by org, actor, exact action, action prefix and time', async () => {
    const byOrg = await queryAudit(store.db, { orgId: 'org_b', limit: 500 });
    expect(byOrg.items.every((item) => item.orgId === 'org_b')).toBe(true);
    expect(byOrg.items).toHaveLength(15);

    const byActor = await queryAudit(store.db, { actor: 'usr_1', limit: 500 });
    expect(byActor.items).toHaveLength(10);

    const exact = await queryAudit(store.db, { action: 'key.revoke', limit: 500 });
    expect(exact.items.map((item) => item.target)).toEqual(['t25', 't20', 't15', 't10', 't5', 't0']);

    const prefix = await queryAudit(store.db, { action: 'key.*', limit: 500 });
    expect(prefix.items).toHaveLength(12);

    const window = await queryAudit(store.db, { from: new Date(start + 10 * 60_000), to: new Date(start + 13 * 60_000), limit: 500 });
    expect(window.items.map((item) => item.target)).toEqual(['t12', 't11', 't10']);

    const combined = await queryAudit(store.db, { orgId: 'org_a', actor: 'usr_0', action: 'key.*', limit: 500 });
    expect(combined.items.map((item) => item.target)).toEqual(['t6', 't0']);
  });

  it('treats LIKE wildcards in a prefix literally', async () => {
    const page = await queryAudit(store.db, { action: 'k%.*', limit: 500 });
    expect(page.items).toHaveLength(0);
  });

  it('returns public views with ISO times and hashes', async () => {
    const [item] = (await queryAudit(store.db, { limit: 1 })).items;
    expect(item).toMatchObject({ seq: '31', actor: 'system', orgId: null, action: 'settings.update', details: {} });
    expect(item?.at).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(item?.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('bounds the page size and refuses forged cursors', async () => {
    await expect(queryAudit(store.db, { limit: 501 })).rejects.toBeInstanceOf(AppError);
    await expect(queryAudit(store.db, { limit: 0 })).rejects.toBeInstanceOf(AppError);
    await expect(queryAudit(store.db, { cursor: 'garbage' })).rejects.toMatchObject({ code: 'validation_failed' });
    await expect(queryAudit(store.db, { cursor: `a1.${Buffer.from("1' OR 1=1").toString('base64url')}` })).rejects.toMatchObject({ code: 'validation_failed' });
    expect(() => decodeCursor(encodeCursor('99999999999999999999'))).toThrow(AppError);
    expect(decodeCursor(encodeCursor('42'))).toBe('42');
  });
});
