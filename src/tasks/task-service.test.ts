import { describe, expect, it } from 'vitest';
import { testPrincipal } from '../http/testing.js';
import { parseTaskEvent } from './events.js';
import { TASK_QUEUE } from './records.js';
import type { SubmitRequest } from './task-service.js';
import { createTaskTestSetup, type TaskTestSetup } from './testing.js';

const owner = testPrincipal({ userId: 'usr_owner', orgId: 'org_a', scopes: ['tasks'], keyId: 'key_owner' });

function submitRequest(overrides: Partial<SubmitRequest> = {}): SubmitRequest {
  return { principal: owner, orgId: 'org_a', ownerId: 'usr_owner', type: 'summarize', input: { doc: 1 }, requestId: 'req_1', route: '/api/orgs/:orgId/tasks', ...overrides };
}

/** Two workers of one slot each and one submitted task, on a clock the test advances past leases. */
async function twoWorkersAndATask() {
  const setup = createTaskTestSetup({ healthyMs: 10_000, leaseMs: 20_000 });
  const a = await setup.tasks.workers.register('p1', 1);
  const b = await setup.tasks.workers.register('p2', 1);
  const submitted = await setup.tasks.service.submit(submitRequest());
  if (!submitted.ok) throw new Error('submit refused');
  return { setup, a, b, submitted };
}

async function queueAndOutbox(setup: TaskTestSetup) {
  const load = await setup.memory.queueLoad(TASK_QUEUE);
  const outbox = await setup.memory.readOutbox(TASK_QUEUE, 1000);
  return { load, outbox };
}

describe('atomic enqueue with its decision event', () => {
  it('a fault at the enqueue step leaves neither a task nor an event, and the relay writes nothing', async () => {
    const setup = createTaskTestSetup();
    await setup.tasks.workers.register('wrk-principal', 5);
    setup.setFault('before_write');
    await expect(setup.tasks.service.submit(submitRequest())).rejects.toThrow(/injected fault/);
    const { load, outbox } = await queueAndOutbox(setup);
    expect(load).toEqual({ queued: 0, inFlight: 0 });
    expect(outbox).toEqual([]);
    const run = await setup.tasks.relay?.runOnce();
    expect(run?.relayed).toBe(0);
    expect(setup.sink.written).toEqual([]);
  });

  it('a fault after the store committed leaves both: the task and its event, never one alone', async () => {
    const setup = createTaskTestSetup();
    await setup.tasks.workers.register('wrk-principal', 5);
    setup.setFault('after_write');
    await expect(setup.tasks.service.submit(submitRequest())).rejects.toThrow(/injected fault/);
    const { load, outbox } = await queueAndOutbox(setup);
    expect(load.queued).toBe(1);
    expect(outbox).toHaveLength(1);
    const event = parseTaskEvent(outbox[0]?.event ?? '');
    // The event names the task that is really in the queue.
    setup.setFault('none');
    const worker = await setup.tasks.workers.register('wrk-principal', 1);
    const { task } = await setup.tasks.service.claim(worker);
    expect(task?.taskId).toBe(event?.taskId);
  });

  it('every relayed event belongs to a task that exists, and each is relayed once', async () => {
    const setup = createTaskTestSetup();
    await setup.tasks.workers.register('wrk-principal', 10);
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      setup.setFault(i % 2 === 0 ? 'none' : 'before_write');
      const result = await setup.tasks.service.submit(submitRequest({ requestId: `req_${i}` })).catch(() => null);
      if (result?.ok === true) ids.push(result.taskId);
    }
    expect(ids).toHaveLength(3);
    const first = await setup.tasks.relay?.runOnce();
    const second = await setup.tasks.relay?.runOnce();
    expect(first?.relayed).toBe(3);
    expect(second?.relayed).toBe(0);
    expect(setup.sink.written.map((event) => String(event.target)).sort()).toEqual([...ids].sort());
    for (const event of setup.sink.written) {
      expect(event).toMatchObject({ action: 'task.enqueue', outcome: 'success', orgId: 'org_a', actor: 'key:key_owner' });
    }
  });

  it('an ack lost after the audit write is not written twice on the next pass', async () => {
    const setup = createTaskTestSetup();
    await setup.tasks.workers.register('wrk-principal', 10);
    const result = await setup.tasks.service.submit(submitRequest());
    expect(result.ok).toBe(true);
    const realAck = setup.memory.ackOutbox.bind(setup.memory);
    setup.memory.ackOutbox = async () => {
      throw new Error('injected ack failure');
    };
    await expect(setup.tasks.relay?.runOnce()).rejects.toThrow(/ack failure/);
    expect(setup.sink.written).toHaveLength(1);
    setup.memory.ackOutbox = realAck;
    const again = await setup.tasks.relay?.runOnce();
    expect(again).toMatchObject({ relayed: 0, duplicates: 1 });
    expect(setup.sink.written).toHaveLength(1);
    expect(await setup.memory.readOutbox(TASK_QUEUE, 10)).toEqual([]);
  });

  it('an audit outage keeps events in the outbox until they can be written', async () => {
    const setup = createTaskTestSetup();
    await setup.tasks.workers.register('wrk-principal', 10);
    await setup.tasks.service.submit(submitRequest());
    setup.sink.failAppend = true;
    await expect(setup.tasks.relay?.runOnce()).rejects.toThrow(/audit failure/);
    expect(await setup.memory.readOutbox(TASK_QUEUE, 10)).toHaveLength(1);
    setup.sink.failAppend = false;
    expect((await setup.tasks.relay?.runOnce())?.relayed).toBe(1);
    expect(await setup.memory.readOutbox(TASK_QUEUE, 10)).toEqual([]);
  });

  it('refuses with queue_full when load would pass the limit, and writes nothing', async () => {
    const setup = createTaskTestSetup();
    const none = await setup.tasks.service.submit(submitRequest());
    expect(none).toMatchObject({ ok: false, refusal: { code: 'queue_full', status: 503, gate: 'enqueue' } });
    await setup.tasks.workers.register('wrk-principal', 2);
    expect((await setup.tasks.service.submit(submitRequest())).ok).toBe(true);
    expect((await setup.tasks.service.submit(submitRequest())).ok).toBe(true);
    const third = await setup.tasks.service.submit(submitRequest());
    expect(third).toMatchObject({ ok: false, refusal: { code: 'queue_full', limit: { maxLoad: 2, load: 2 } } });
    const { load, outbox } = await queueAndOutbox(setup);
    expect(load.queued).toBe(2);
    expect(outbox).toHaveLength(2);
  });
});

describe('workers, leases and requeue', () => {
  it('capacity sums only workers that heart-beat within the healthy window', async () => {
    const setup = createTaskTestSetup({ healthyMs: 10_000 });
    const a = await setup.tasks.workers.register('p1', 3);
    const b = await setup.tasks.workers.register('p2', 5);
    expect(await setup.tasks.workerCapacity()).toBe(8);
    setup.clock.advance(6_000);
    await setup.tasks.workers.heartbeat(b);
    setup.clock.advance(6_000);
    expect(await setup.tasks.workerCapacity()).toBe(5);
    // A worker that comes back counts again.
    const current = await setup.tasks.workers.get(a.id, 'p1');
    expect(current).not.toBeNull();
    if (current !== null) await setup.tasks.workers.heartbeat(current);
    expect(await setup.tasks.workerCapacity()).toBe(8);
  });

  it('a worker killed while holding a task: the task is requeued, completed once, and the stale completion is refused', async () => {
    const { setup, a, b, submitted } = await twoWorkersAndATask();
    const { workers, service, records } = setup.tasks;

    const claimedByA = await service.claim(a);
    expect(claimedByA.task?.taskId).toBe(submitted.taskId);
    expect((await records.get(submitted.taskId))?.status).toBe('running');
    expect((await service.claim(b)).task).toBeNull();

    // A dies: no more heartbeats. B keeps beating; time passes the lease.
    for (let i = 0; i < 3; i += 1) {
      setup.clock.advance(8_000);
      const current = await workers.get(b.id, 'p2');
      if (current !== null) await workers.heartbeat(current);
    }
    expect(await setup.tasks.workerCapacity()).toBe(1);
    expect(await service.requeueExpired()).toBe(1);

    const bNow = await workers.get(b.id, 'p2');
    if (bNow === null) throw new Error('worker b lost');
    const claimedByB = await service.claim(bNow);
    expect(claimedByB.task).toMatchObject({ taskId: submitted.taskId, attempts: 2 });

    // A wakes up and reports: refused, because it no longer holds the task.
    const stale = await service.finish(claimedByA.worker, submitted.taskId, { status: 'done', result: 'from a' });
    expect(stale).toEqual({ ok: false, reason: 'not_held' });
    const finished = await service.finish(claimedByB.worker, submitted.taskId, { status: 'done', result: 'from b' });
    expect(finished.ok).toBe(true);
    const again = await service.finish(claimedByB.worker, submitted.taskId, { status: 'done', result: 'twice' });
    expect(again.ok).toBe(false);

    const record = await records.get(submitted.taskId);
    expect(record).toMatchObject({ status: 'done', result: 'from b', attempts: 2, workerId: b.id });
    expect(await setup.memory.queueLoad(TASK_QUEUE)).toEqual({ queued: 0, inFlight: 0 });
  });

  it('heartbeats keep a slow task leased; a lapsed but not yet requeued task may still finish once', async () => {
    const setup = createTaskTestSetup({ healthyMs: 10_000, leaseMs: 20_000 });
    const { workers, service } = setup.tasks;
    const a = await workers.register('p1', 2);
    await service.submit(submitRequest());
    const { worker, task } = await service.claim(a);
    if (task === null) throw new Error('nothing claimed');
    setup.clock.advance(15_000);
    const beat = await workers.heartbeat(worker);
    expect(beat.held).toEqual([task.taskId]);
    setup.clock.advance(15_000);
    expect(await service.requeueExpired()).toBe(0);
    setup.clock.advance(30_000);
    // Lapsed, not requeued yet: finishing late beats running it twice.
    expect((await service.finish(beat.record, task.taskId, { status: 'failed', error: 'boom' })).ok).toBe(true);
    expect(await service.requeueExpired()).toBe(0);
    expect((await setup.tasks.records.get(task.taskId))?.status).toBe('failed');
  });

  it('a worker never holds more than its declared capacity', async () => {
    const setup = createTaskTestSetup();
    const { workers, service } = setup.tasks;
    let worker = await workers.register('p1', 1);
    await workers.register('p2', 5);
    await service.submit(submitRequest());
    await service.submit(submitRequest());
    const first = await service.claim(worker);
    worker = first.worker;
    expect(first.task).not.toBeNull();
    expect((await service.claim(worker)).task).toBeNull();
  });

  it('a heartbeat reports tasks lost to a requeue', async () => {
    const setup = createTaskTestSetup({ healthyMs: 10_000, leaseMs: 20_000 });
    const { workers, service } = setup.tasks;
    const a = await workers.register('p1', 1);
    await service.submit(submitRequest());
    const { worker, task } = await service.claim(a);
    setup.clock.advance(25_000);
    expect(await service.requeueExpired()).toBe(1);
    const beat = await workers.heartbeat(worker);
    expect(beat.lost).toEqual([task?.taskId]);
    expect(beat.held).toEqual([]);
  });
});

describe('finishes and requeues are audited through the outbox', () => {
  async function relayAll(setup: TaskTestSetup) {
    const run = await setup.tasks.relay?.runOnce();
    return { run, written: setup.sink.written };
  }

  it('done and failed each write one task.finish record, without the result or the error text', async () => {
    const setup = createTaskTestSetup();
    const { workers, service } = setup.tasks;
    let worker = await workers.register('wrk-principal', 2);
    const first = await service.submit(submitRequest({ input: { secret: 'input-never-audited' } }));
    const second = await service.submit(submitRequest());
    if (!first.ok || !second.ok) throw new Error('submit refused');
    worker = (await service.claim(worker)).worker;
    worker = (await service.claim(worker)).worker;
    setup.clock.advance(1_000);
    const done = await service.finish(worker, first.taskId, { status: 'done', result: { answer: 'result-never-audited' } }, { actor: 'key:key_worker', requestId: 'req_done' });
    expect(done.ok).toBe(true);
    const failed = await service.finish(worker, second.taskId, { status: 'failed', error: 'error-text-never-audited' });
    expect(failed.ok).toBe(true);

    const { run, written } = await relayAll(setup);
    expect(run).toMatchObject({ relayed: 4, duplicates: 0, invalid: 0 });
    const finishes = written.filter((event) => event.action === 'task.finish');
    expect(finishes).toEqual([
      {
        actor: 'key:key_worker',
        orgId: 'org_a',
        action: 'task.finish',
        target: first.taskId,
        outcome: 'success',
        details: { eventId: expect.stringMatching(/^evt_/) as unknown, status: 'done', workerId: worker.id, taskType: 'summarize', attempts: 1, requestId: 'req_done', finishedAt: new Date(setup.clock.now()).toISOString() },
      },
      {
        // Without a context, the worker's principal.
        actor: 'wrk-principal',
        orgId: 'org_a',
        action: 'task.finish',
        target: second.taskId,
        outcome: 'failure',
        details: { eventId: expect.stringMatching(/^evt_/) as unknown, status: 'failed', workerId: worker.id, taskType: 'summarize', attempts: 1, finishedAt: new Date(setup.clock.now()).toISOString() },
      },
    ]);
    expect(JSON.stringify(written)).not.toMatch(/never-audited/);
    expect((await relayAll(setup)).run?.relayed).toBe(0);
  });

  it('a refused report writes nothing; a lapsed lease writes one task.requeue record; the trail is enqueue, requeue, finish', async () => {
    const { setup, a, b, submitted } = await twoWorkersAndATask();
    const { workers, service } = setup.tasks;
    const claimedByA = await service.claim(a);
    setup.clock.advance(25_000);
    expect(await service.requeueExpired()).toBe(1);
    // Nothing more lapsed: no second record for the same lapse.
    expect(await service.requeueExpired()).toBe(0);
    const bNow = (await workers.heartbeat(b)).record;
    const claimedByB = await service.claim(bNow);
    expect(claimedByB.task?.attempts).toBe(2);
    expect(await service.finish(claimedByA.worker, submitted.taskId, { status: 'done' })).toEqual({ ok: false, reason: 'not_held' });
    expect((await service.finish(claimedByB.worker, submitted.taskId, { status: 'done' })).ok).toBe(true);
    expect((await service.finish(claimedByB.worker, submitted.taskId, { status: 'done' })).ok).toBe(false);

    const { written } = await relayAll(setup);
    expect(written.map((event) => [event.action, event.target, event.outcome])).toEqual([
      ['task.enqueue', submitted.taskId, 'success'],
      ['task.requeue', submitted.taskId, 'success'],
      ['task.finish', submitted.taskId, 'success'],
    ]);
    expect(written[1]).toEqual({
      actor: 'system',
      orgId: 'org_a',
      action: 'task.requeue',
      target: submitted.taskId,
      outcome: 'success',
      details: {
        eventId: `rq_${submitted.taskId}_1`,
        reason: 'lease_lapsed',
        workerId: a.id,
        attempts: 1,
        taskType: 'summarize',
        requeuedAt: new Date(setup.clock.now()).toISOString(),
      },
    });
    expect(written[2]?.details).toMatchObject({ workerId: b.id, attempts: 2 });
  });

  it('a requeue record lost between write and ack is not written twice', async () => {
    const setup = createTaskTestSetup({ leaseMs: 20_000 });
    const { workers, service } = setup.tasks;
    const a = await workers.register('p1', 1);
    await service.submit(submitRequest());
    await service.claim(a);
    await setup.tasks.relay?.runOnce();
    setup.clock.advance(25_000);
    await service.requeueExpired();
    const realAck = setup.memory.ackOutbox.bind(setup.memory);
    setup.memory.ackOutbox = async () => {
      throw new Error('injected ack failure');
    };
    await expect(setup.tasks.relay?.runOnce()).rejects.toThrow(/ack failure/);
    setup.memory.ackOutbox = realAck;
    expect(await setup.tasks.relay?.runOnce()).toMatchObject({ relayed: 0, duplicates: 1 });
    expect(setup.sink.written.map((event) => event.action)).toEqual(['task.enqueue', 'task.requeue']);
    expect(await setup.memory.readOutbox(TASK_QUEUE, 10)).toEqual([]);
  });

  it('a requeue whose task record is gone is still audited, without an org', async () => {
    const setup = createTaskTestSetup({ leaseMs: 20_000 });
    const { workers, service, records } = setup.tasks;
    const a = await workers.register('p1', 1);
    const submitted = await service.submit(submitRequest());
    if (!submitted.ok) throw new Error('submit refused');
    await service.claim(a);
    await records.delete(submitted.taskId);
    setup.clock.advance(25_000);
    await service.requeueExpired();
    await setup.tasks.relay?.runOnce();
    expect(setup.sink.written.find((event) => event.action === 'task.requeue')).toMatchObject({ orgId: null, target: submitted.taskId, details: { workerId: a.id, attempts: 1 } });
  });
});

describe('status of a requeued task', () => {
  it('reads queued from the moment its lease lapsed and it was requeued, running again once claimed', async () => {
    const { setup, a, b, submitted } = await twoWorkersAndATask();
    const { workers, service } = setup.tasks;
    expect((await service.read(submitted.taskId))?.status).toBe('queued');
    const claimedByA = await service.claim(a);
    expect(await service.read(submitted.taskId)).toMatchObject({ status: 'running', workerId: a.id, attempts: 1 });
    setup.clock.advance(25_000);
    // Lapsed but not requeued: A may still finish it, so it is still running.
    expect((await service.read(submitted.taskId))?.status).toBe('running');
    expect(await service.requeueExpired()).toBe(1);
    const requeued = await service.read(submitted.taskId);
    expect(requeued).toMatchObject({ status: 'queued', attempts: 1 });
    expect(requeued?.workerId).toBeUndefined();
    expect(requeued?.startedAt).toBeUndefined();

    const claimedByB = await service.claim((await workers.heartbeat(b)).record);
    expect(await service.read(submitted.taskId)).toMatchObject({ status: 'running', workerId: b.id, attempts: 2 });
    expect(await service.finish(claimedByA.worker, submitted.taskId, { status: 'failed' })).toEqual({ ok: false, reason: 'not_held' });
    expect((await service.read(submitted.taskId))?.status).toBe('running');
    expect((await service.finish(claimedByB.worker, submitted.taskId, { status: 'done', result: 1 })).ok).toBe(true);
    expect(await service.read(submitted.taskId)).toMatchObject({ status: 'done', result: 1, workerId: b.id, attempts: 2 });
    expect(await service.read('tsk_unknown')).toBeNull();
  });
});
