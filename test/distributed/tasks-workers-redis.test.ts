/**
 * Tasks on a real Redis, with two hot-state connections standing for two gateway replicas: a
 * worker that disappears mid-task loses it to the other worker, and every task completes exactly
 * once; the lifecycle events (enqueue, requeue, finish) are relayed once even with both replicas
 * relaying, and a task requeued on one replica reads queued on the other.
 * Fails (never skips) when Redis is unreachable. Everything lives under a prefix unique to this
 * run and is deleted at the end.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deletePrefix, REDIS_URL } from '../support/redis.js';
import { testPrincipal } from '../../src/http/testing.js';
import { RedisHotState } from '../../src/store/state/redis/redis-hot-state.js';
import { createTasks, TASK_QUEUE, type Tasks } from '../../src/tasks/index.js';
import { MemoryRelaySink } from '../../src/tasks/testing.js';

const PREFIX = `pc-test-tasks-${randomBytes(5).toString('hex')}`;
const LEASE_MS = 600;
const HEALTHY_MS = 400;

const owner = testPrincipal({ userId: 'usr_owner', orgId: 'org_a', scopes: ['tasks'] });

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

let stateA: RedisHotState;
let stateB: RedisHotState;
let replicaA: Tasks;
let replicaB: Tasks;
const sink = new MemoryRelaySink();

function submit(tasks: Tasks, i: number) {
  return tasks.service.submit({ principal: owner, orgId: 'org_a', ownerId: 'usr_owner', type: 'job', input: { i }, requestId: `req_${i}`, route: '/api/orgs/:orgId/tasks' });
}

beforeAll(async () => {
  stateA = await RedisHotState.connect({ url: REDIS_URL, prefix: PREFIX });
  stateB = await RedisHotState.connect({ url: REDIS_URL, prefix: PREFIX });
  const settings = { leaseMs: LEASE_MS, healthyMs: HEALTHY_MS, hardLimitPercent: 100 };
  replicaA = createTasks({ state: stateA, relaySink: sink, settings, capacityCacheMs: 0 });
  replicaB = createTasks({ state: stateB, relaySink: sink, settings, capacityCacheMs: 0 });
}, 30_000);

afterAll(async () => {
  await stateA?.close();
  await stateB?.close();
  await deletePrefix(PREFIX);
}, 30_000);

describe('tasks across two replicas on Redis', () => {
  it('a worker that disappears mid-task loses it; the other completes it exactly once', async () => {
    const a = await replicaA.workers.register('principal-a', 1);
    const b = await replicaB.workers.register('principal-b', 1);
    expect(await replicaB.workerCapacity()).toBe(2);
    const submitted = await submit(replicaA, 0);
    if (!submitted.ok) throw new Error(`refused: ${submitted.refusal.message}`);

    const claimedByA = await replicaA.service.claim(a);
    expect(claimedByA.task?.taskId).toBe(submitted.taskId);
    expect((await replicaB.service.claim(b)).task).toBeNull();

    // A goes silent. B keeps heart-beating; replica B's requeue job finds the lapsed lease.
    let bRecord = b;
    await waitFor(async () => {
      const current = await replicaB.workers.get(b.id, 'principal-b');
      if (current !== null) bRecord = (await replicaB.workers.heartbeat(current)).record;
      return (await replicaB.service.requeueExpired()) === 1;
    }, 10_000);
    expect(await replicaB.workerCapacity()).toBe(1);
    // Requeued on replica B: read on replica A, the task is queued again, though A's record said running.
    expect((await replicaA.records.get(submitted.taskId))?.status).toBe('running');
    expect(await replicaA.service.read(submitted.taskId)).toMatchObject({ status: 'queued', attempts: 1 });

    const claimedByB = await replicaB.service.claim(bRecord);
    expect(await replicaA.service.read(submitted.taskId)).toMatchObject({ status: 'running', attempts: 2, workerId: b.id });
    expect(claimedByB.task).toMatchObject({ taskId: submitted.taskId, attempts: 2 });
    const [late, fresh] = await Promise.all([
      replicaA.service.finish(claimedByA.worker, submitted.taskId, { status: 'done', result: 'a' }),
      replicaB.service.finish(claimedByB.worker, submitted.taskId, { status: 'done', result: 'b' }),
    ]);
    expect(late).toEqual({ ok: false, reason: 'not_held' });
    expect(fresh.ok).toBe(true);
    expect(await replicaA.records.get(submitted.taskId)).toMatchObject({ status: 'done', result: 'b', attempts: 2 });
    expect(await stateA.queueLoad(TASK_QUEUE)).toEqual({ queued: 0, inFlight: 0 });
  }, 30_000);

  it('many tasks, two workers racing, one dies holding work: each task completes exactly once', async () => {
    // Capacity 12 in all, so backpressure admits all 12 tasks.
    const a = await replicaA.workers.register('principal-a', 6);
    const b = await replicaB.workers.register('principal-b', 6);
    const ids: string[] = [];
    for (let i = 0; i < 12; i += 1) {
      const result = await submit(i % 2 === 0 ? replicaA : replicaB, i);
      if (result.ok) ids.push(result.taskId);
    }
    expect(ids).toHaveLength(12);

    const completions = new Map<string, number>();
    // A claims up to its capacity and then dies.
    let aRecord = a;
    for (let i = 0; i < 4; i += 1) aRecord = (await replicaA.service.claim(aRecord)).worker;
    const heldByDeadA = aRecord.held;
    expect(heldByDeadA).toHaveLength(4);
    // B works through everything it can get, heart-beating and requeueing as it goes.
    let bRecord = b;
    const deadline = Date.now() + 15_000;
    while ([...completions.values()].reduce((sum, n) => sum + n, 0) < ids.length && Date.now() < deadline) {
      const { worker, task } = await replicaB.service.claim(bRecord);
      bRecord = worker;
      if (task === null) {
        bRecord = (await replicaB.workers.heartbeat(bRecord)).record;
        await replicaB.service.requeueExpired();
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      const finished = await replicaB.service.finish(bRecord, task.taskId, { status: 'done' });
      const current = await replicaB.workers.get(b.id, 'principal-b');
      if (current !== null) bRecord = current;
      if (finished.ok) completions.set(task.taskId, (completions.get(task.taskId) ?? 0) + 1);
    }
    // The dead worker's late reports are all refused.
    for (const taskId of heldByDeadA) {
      expect((await replicaA.service.finish(aRecord, taskId, { status: 'done' })).ok).toBe(false);
    }
    expect([...completions.keys()].sort()).toEqual([...ids].sort());
    expect([...completions.values()].every((n) => n === 1)).toBe(true);
    expect(await stateB.queueLoad(TASK_QUEUE)).toEqual({ queued: 0, inFlight: 0 });
  }, 40_000);

  it('concurrent registrations on both replicas all count towards capacity', async () => {
    // A wide healthy window, so no earlier worker turns unhealthy between the two sums.
    const wideA = createTasks({ state: stateA, settings: { healthyMs: 120_000 }, capacityCacheMs: 0 });
    const wideB = createTasks({ state: stateB, settings: { healthyMs: 120_000 }, capacityCacheMs: 0 });
    const before = await wideA.workerCapacity();
    const registered = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? wideA : wideB).workers.register(`principal-${i}`, 3)),
    );
    expect(new Set(registered.map((worker) => worker.id)).size).toBe(10);
    expect(await wideB.workerCapacity()).toBe(before + 30);
  }, 30_000);

  it('both replicas relaying concurrently write each decision event once', async () => {
    const before = sink.written.length;
    await Promise.all([replicaA.relay?.runOnce(), replicaB.relay?.runOnce()]);
    // The 13 tasks accepted above, each once.
    await waitFor(async () => {
      await Promise.all([replicaA.relay?.runOnce(), replicaB.relay?.runOnce()]);
      return (await stateA.readOutbox(TASK_QUEUE, 100)).length === 0;
    }, 10_000);
    const written = sink.written.slice(before);
    const targets = written.filter((event) => event.action === 'task.enqueue').map((event) => String(event.target));
    expect(targets).toHaveLength(13);
    expect(new Set(targets).size).toBe(13);
    // Each task finished once, each audited once; the dead workers' refused reports left nothing.
    const finished = written.filter((event) => event.action === 'task.finish').map((event) => String(event.target));
    expect(finished.sort()).toEqual([...targets].sort());
    // The lapsed leases: the first test's one and the four the dead worker held, at least.
    const requeues = written.filter((event) => event.action === 'task.requeue');
    expect(requeues.length).toBeGreaterThanOrEqual(5);
    expect(requeues.every((event) => event.actor === 'system' && event.orgId === 'org_a')).toBe(true);
    const eventIds = written.map((event) => String(event.details?.eventId));
    expect(new Set(eventIds).size).toBe(written.length);
  }, 30_000);
});
