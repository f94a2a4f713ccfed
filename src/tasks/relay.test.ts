import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog, verifyAuditLog } from '../audit/index.js';
import { ManualClock } from '../core/clock.js';
import { testPrincipal } from '../http/testing.js';
import type { RecordStore } from '../store/db/index.js';
import { openTestRecordStore } from '../store/db/testing.js';
import { MemoryHotState } from '../store/state/index.js';
import { auditActor as auditActorOf, createTasks } from './index.js';
import { TASK_QUEUE } from './records.js';
import { auditRelaySink } from './relay.js';

const signingKey = { id: 'a1', secret: 'relay-test-audit-secret-0123456789abcdef' };
const owner = testPrincipal({ userId: 'usr_owner', orgId: 'org_a', scopes: ['tasks'] });

let store: RecordStore;
beforeAll(async () => {
  store = await openTestRecordStore();
}, 60_000);
afterAll(async () => {
  await store.close();
});

describe('outbox relay into the audit log (record store)', () => {
  it('writes each accepted task event once, with its event id, and survives a lost ack', async () => {
    const clock = new ManualClock(Date.now());
    const state = new MemoryHotState({ clock });
    const audit = new AuditLog({ db: store.db, signingKey, clock });
    const tasks = createTasks({ state, db: store.db, audit, settings: { hardLimitPercent: 100 }, capacityCacheMs: 0 });
    await tasks.workers.register('p1', 10);
    const taskIds: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      const result = await tasks.service.submit({ principal: owner, orgId: 'org_a', ownerId: 'usr_owner', type: 't', input: i, requestId: `req_${i}`, route: '/r' });
      if (result.ok) taskIds.push(result.taskId);
    }
    const relay = tasks.relay;
    if (relay === undefined) throw new Error('relay not built');

    // First pass writes, but the acknowledgement never reaches the store.
    const realAck = state.ackOutbox.bind(state);
    state.ackOutbox = async () => {
      throw new Error('injected ack failure');
    };
    await expect(relay.runOnce()).rejects.toThrow(/ack failure/);
    state.ackOutbox = realAck;
    const second = await relay.runOnce();
    expect(second).toMatchObject({ relayed: 2, duplicates: 1 });

    const rows = await store.db.selectFrom('audit_log').selectAll().where('action', '=', 'task.enqueue').execute();
    expect(rows.map((row) => String(row.target)).sort()).toEqual([...taskIds].sort());
    const eventIds = new Set(rows.map((row) => row.details.eventId));
    expect(eventIds.size).toBe(3);
    expect(await state.readOutbox(TASK_QUEUE, 10)).toEqual([]);
    // The sink's own lookup sees them all as recorded.
    await audit.close();
    const verified = await verifyAuditLog(store.db, new Map([[signingKey.id, signingKey.secret]]));
    expect(verified.ok).toBe(true);
    const sink = auditRelaySink(store.db, audit);
    expect((await sink.recorded([])).size).toBe(0);
  });

  it('writes the finish and requeue records of a task once each, deduplicated after a lost ack', async () => {
    const clock = new ManualClock(Date.now());
    const state = new MemoryHotState({ clock });
    const audit = new AuditLog({ db: store.db, signingKey, clock });
    const tasks = createTasks({ state, db: store.db, audit, settings: { hardLimitPercent: 100, leaseMs: 20_000 }, capacityCacheMs: 0 });
    const a = await tasks.workers.register('p1', 1);
    const b = await tasks.workers.register('p2', 1);
    const submitted = await tasks.service.submit({ principal: owner, orgId: 'org_a', ownerId: 'usr_owner', type: 't', input: 'secret-input', requestId: 'req_x', route: '/r' });
    if (!submitted.ok) throw new Error('submit refused');
    await tasks.service.claim(a);
    clock.advance(25_000);
    expect(await tasks.service.requeueExpired()).toBe(1);
    const claimed = await tasks.service.claim(b);
    expect((await tasks.service.finish(claimed.worker, submitted.taskId, { status: 'failed', error: 'secret-error' }, { actor: 'key:key_w' })).ok).toBe(true);
    const relay = tasks.relay;
    if (relay === undefined) throw new Error('relay not built');

    // The enqueue's ack goes through; the requeue's is lost after its audit write.
    const realAck = state.ackOutbox.bind(state);
    let acks = 0;
    state.ackOutbox = async (queue, ids) => {
      acks += 1;
      if (acks === 2) throw new Error('injected ack failure');
      return realAck(queue, ids);
    };
    await expect(relay.runOnce()).rejects.toThrow(/ack failure/);
    state.ackOutbox = realAck;
    // The store-derived requeue id dedupes like the others: the re-read entry is not written again.
    expect(await relay.runOnce()).toMatchObject({ relayed: 1, duplicates: 1 });
    expect(await state.readOutbox(TASK_QUEUE, 10)).toEqual([]);

    const rows = await store.db.selectFrom('audit_log').selectAll().where('target', '=', submitted.taskId).orderBy('seq').execute();
    expect(rows.map((row) => [row.action, row.actor, row.outcome, row.org_id])).toEqual([
      ['task.enqueue', auditActorOf(owner), 'success', 'org_a'],
      ['task.requeue', 'system', 'success', 'org_a'],
      ['task.finish', 'key:key_w', 'failure', 'org_a'],
    ]);
    expect(rows[1]?.details).toMatchObject({ eventId: `rq_${submitted.taskId}_1`, workerId: a.id, attempts: 1, taskType: 't' });
    expect(rows[2]?.details).toMatchObject({ status: 'failed', workerId: b.id, attempts: 2 });
    expect(JSON.stringify(rows)).not.toMatch(/secret-/);
    await audit.close();
    expect((await verifyAuditLog(store.db, new Map([[signingKey.id, signingKey.secret]]))).ok).toBe(true);
  });
});
