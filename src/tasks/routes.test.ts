import { afterEach, describe, expect, it } from 'vitest';
import type { Admission, AdmissionRequest, AdmissionResult, SettleOutcome } from '../admission/types.js';
import { MemoryAuditSink } from '../audit/index.js';
import { createTestHttpApp, testPrincipal } from '../http/testing.js';
import type { Principal } from '../identity/principal.js';
import { TASK_QUEUE } from './records.js';
import { registerTaskRoutes } from './routes.js';
import { createTaskTestSetup, type TaskTestSetup } from './testing.js';

const principals: Record<string, Principal> = {
  owner: testPrincipal({ userId: 'usr_owner', orgId: 'org_a', scopes: ['tasks'], keyId: 'key_owner' }),
  peer: testPrincipal({ userId: 'usr_peer', orgId: 'org_a', scopes: ['tasks'] }),
  admin: testPrincipal({ userId: 'usr_admin', orgId: 'org_a', role: 'admin', scopes: ['tasks'] }),
  viewer: testPrincipal({ userId: 'usr_viewer', orgId: 'org_a', role: 'viewer', scopes: ['tasks'] }),
  noscope: testPrincipal({ userId: 'usr_noscope', orgId: 'org_a', scopes: ['models'] }),
  stranger: testPrincipal({ userId: 'usr_stranger', orgId: 'org_b', role: 'owner', scopes: ['tasks'] }),
  worker: testPrincipal({ userId: 'usr_ops', orgId: 'org_ops', role: 'owner', platformAdmin: true, scopes: ['worker'], keyId: 'key_worker' }),
  worker2: testPrincipal({ userId: 'usr_ops2', orgId: 'org_ops', role: 'owner', platformAdmin: true, scopes: ['worker'], keyId: 'key_worker2' }),
  fakeworker: testPrincipal({ userId: 'usr_fake', orgId: 'org_a', scopes: ['worker', 'tasks'] }),
};

interface Harness {
  setup: TaskTestSetup;
  audit: MemoryAuditSink;
  settled: SettleOutcome[];
  call(token: string | undefined, method: 'GET' | 'POST', url: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown>; headers: Record<string, unknown> }>;
  close(): Promise<void>;
}

let current: Harness | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

async function harness(
  options: { admission?: (request: AdmissionRequest) => ReturnType<Admission['admit']>; resolveInOrg?: (principal: Principal, orgId: string) => Promise<Principal | null> } = {},
): Promise<Harness> {
  const setup = createTaskTestSetup();
  const audit = new MemoryAuditSink();
  const settled: SettleOutcome[] = [];
  const admission: Admission | undefined =
    options.admission === undefined ? undefined : { admit: options.admission };
  const { app, registry } = createTestHttpApp({ principals });
  registerTaskRoutes(app, registry, {
    service: setup.tasks.service,
    workers: setup.tasks.workers,
    audit,
    heartbeatIntervalMs: 3000,
    ...(admission === undefined ? {} : { admission }),
    ...(options.resolveInOrg === undefined ? {} : { resolveInOrg: options.resolveInOrg }),
  });
  await app.ready();
  const h: Harness = {
    setup,
    audit,
    settled,
    async call(token, method, url, body) {
      const response = await app.inject({
        method,
        url,
        headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
        ...(body === undefined ? {} : { payload: body as Record<string, unknown> }),
      });
      const text = response.body;
      return { status: response.statusCode, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>), headers: response.headers };
    },
    close: () => app.close(),
  };
  current = h;
  return h;
}

async function registerWorker(h: Harness, token = 'worker', capacity = 2): Promise<string> {
  const response = await h.call(token, 'POST', '/api/workers/register', { capacity });
  expect(response.status).toBe(201);
  return String(response.body.workerId);
}

async function submit(h: Harness, token = 'owner', org = 'org_a'): Promise<{ status: number; body: Record<string, unknown>; headers: Record<string, unknown> }> {
  return h.call(token, 'POST', `/api/orgs/${org}/tasks`, { type: 'summarize', input: { text: 'hello' } });
}

describe('task ingress and status', () => {
  it('accepts a task with 202 and shows its status to the owner and org admins only', async () => {
    const h = await harness();
    await registerWorker(h);
    const created = await submit(h);
    expect(created.status).toBe(202);
    const taskId = String(created.body.taskId);
    expect(created.body.status).toBe('queued');
    const url = `/api/orgs/org_a/tasks/${taskId}`;
    const mine = await h.call('owner', 'GET', url);
    expect(mine.status).toBe(200);
    expect(mine.body).toMatchObject({ id: taskId, status: 'queued', type: 'summarize', attempts: 0 });
    expect((await h.call('admin', 'GET', url)).status).toBe(200);
    expect((await h.call('peer', 'GET', url)).status).toBe(404);
    expect((await h.call('viewer', 'GET', url)).status).toBe(404);
    expect((await h.call('noscope', 'GET', url)).status).toBe(403);
    // Another org: 404, whether it names its own org or the task's.
    expect((await h.call('stranger', 'GET', url)).status).toBe(404);
    expect((await h.call('stranger', 'GET', `/api/orgs/org_b/tasks/${taskId}`)).status).toBe(404);
    expect((await h.call(undefined, 'GET', url)).status).toBe(401);
  });

  it('refuses submitters without the tasks permission and other orgs', async () => {
    const h = await harness();
    await registerWorker(h);
    expect((await submit(h, 'noscope')).status).toBe(403);
    expect((await submit(h, 'viewer')).status).toBe(403);
    expect((await submit(h, 'stranger')).status).toBe(404);
    expect((await h.call(undefined, 'POST', '/api/orgs/org_a/tasks', { type: 'x' })).status).toBe(401);
    expect(await h.setup.memory.queueLoad(TASK_QUEUE)).toEqual({ queued: 0, inFlight: 0 });
  });

  it('bounds the input and validates the body', async () => {
    const h = await harness();
    await registerWorker(h);
    const big = await h.call('owner', 'POST', '/api/orgs/org_a/tasks', { type: 'x', input: 'y'.repeat(70 * 1024) });
    expect(big.status).toBe(413);
    const bad = await h.call('owner', 'POST', '/api/orgs/org_a/tasks', { type: 'x y', input: 1 });
    expect(bad.status).toBe(400);
  });

  it('answers 503 queue_full with Retry-After when no capacity is left, and records the refusal', async () => {
    const h = await harness();
    const refused = await submit(h);
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ error: { code: 'queue_full', gate: 'enqueue' } });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(h.audit.events).toEqual([expect.objectContaining({ action: 'task.enqueue', outcome: 'denied', orgId: 'org_a' })]);
    expect(await h.setup.memory.readOutbox(TASK_QUEUE, 10)).toEqual([]);
  });

  it('runs admission first: a refusal stops the request before the queue; an admitted one is settled once', async () => {
    let refuse = true;
    const settled: SettleOutcome[] = [];
    const h = await harness({
      admission: async (request): Promise<AdmissionResult> => {
        expect(request.kind).toBe('task');
        if (refuse) {
          return {
            ok: false,
            refusal: { gate: 'rate_limit', code: 'rate_limited', status: 429, message: 'burst limit reached', retryAfterSeconds: 7 },
            headers: { 'ratelimit-policy': '"burst";q=10;w=60' },
          };
        }
        const ticket = {
          requestId: request.requestId,
          settled: false,
          async settle(outcome: SettleOutcome) {
            settled.push(outcome);
          },
        };
        return { ok: true, ticket, headers: {} };
      },
    });
    await registerWorker(h);
    const limited = await submit(h);
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe('7');
    expect(limited.headers['ratelimit-policy']).toBe('"burst";q=10;w=60');
    expect(await h.setup.memory.queueLoad(TASK_QUEUE)).toEqual({ queued: 0, inFlight: 0 });
    refuse = false;
    expect((await submit(h)).status).toBe(202);
    expect(settled).toEqual([{ kind: 'success', actualMicros: 0, actualTokens: 0 }]);
  });
});

describe('callers spanning orgs', () => {
  it("uses the caller's role in the route's org, not the org the credential was issued in", async () => {
    // An unscoped OIDC caller whose token names org_b, also a member of org_a.
    const session = testPrincipal({ kind: 'oidc', userId: 'usr_multi', orgId: 'org_b', role: 'owner', scopes: [] });
    principals.multi = session;
    const h = await harness({
      resolveInOrg: async (principal, orgId) =>
        principal.userId === 'usr_multi' && orgId === 'org_a' ? { ...principal, orgId, role: 'member' } : principal.orgId === orgId ? principal : null,
    });
    await registerWorker(h);
    const created = await submit(h, 'multi', 'org_a');
    expect(created.status).toBe(202);
    expect((await h.call('multi', 'GET', `/api/orgs/org_a/tasks/${String(created.body.taskId)}`)).status).toBe(200);
    // Not a member of org_c: 404.
    expect((await submit(h, 'multi', 'org_c')).status).toBe(404);
    delete principals.multi;
  });
});

describe('worker API', () => {
  it('register, claim, report done; the owner sees the result', async () => {
    const h = await harness();
    const workerId = await registerWorker(h);
    const taskId = String((await submit(h)).body.taskId);
    const claimed = await h.call('worker', 'POST', `/api/workers/${workerId}/claim`);
    expect(claimed.status).toBe(200);
    expect(claimed.body.task).toMatchObject({ taskId, orgId: 'org_a', type: 'summarize', input: { text: 'hello' }, attempts: 1 });
    expect((await h.call('owner', 'GET', `/api/orgs/org_a/tasks/${taskId}`)).body.status).toBe('running');
    const beat = await h.call('worker', 'POST', `/api/workers/${workerId}/heartbeat`);
    expect(beat.body).toEqual({ held: [taskId], lost: [] });
    const done = await h.call('worker', 'POST', `/api/workers/${workerId}/tasks/${taskId}/done`, { result: { summary: 'hi' } });
    expect(done.status).toBe(200);
    const view = await h.call('owner', 'GET', `/api/orgs/org_a/tasks/${taskId}`);
    expect(view.body).toMatchObject({ status: 'done', result: { summary: 'hi' } });
    // Completed exactly once.
    const twice = await h.call('worker', 'POST', `/api/workers/${workerId}/tasks/${taskId}/done`, {});
    expect(twice.status).toBe(409);
    expect((await h.call('worker', 'POST', `/api/workers/${workerId}/claim`)).body).toEqual({ task: null });
  });

  it('a stale worker is refused after its task was requeued and claimed by another', async () => {
    const h = await harness();
    const a = await registerWorker(h, 'worker', 1);
    const b = await registerWorker(h, 'worker2', 1);
    const taskId = String((await submit(h)).body.taskId);
    expect((await h.call('worker', 'POST', `/api/workers/${a}/claim`)).body.task).toMatchObject({ taskId });
    h.setup.clock.advance(25_000);
    expect(await h.setup.tasks.service.requeueExpired()).toBe(1);
    expect((await h.call('worker2', 'POST', `/api/workers/${b}/claim`)).body.task).toMatchObject({ taskId, attempts: 2 });
    const stale = await h.call('worker', 'POST', `/api/workers/${a}/tasks/${taskId}/failed`, { error: 'late' });
    expect(stale.status).toBe(409);
    expect((await h.call('worker2', 'POST', `/api/workers/${b}/tasks/${taskId}/done`, {})).status).toBe(200);
    expect((await h.call('owner', 'GET', `/api/orgs/org_a/tasks/${taskId}`)).body).toMatchObject({ status: 'done', attempts: 2 });
  });

  it('a requeued task reads queued over HTTP until claimed again; finishes are audited with the reporting key', async () => {
    const h = await harness();
    const a = await registerWorker(h, 'worker', 1);
    const b = await registerWorker(h, 'worker2', 1);
    const taskId = String((await submit(h)).body.taskId);
    const url = `/api/orgs/org_a/tasks/${taskId}`;
    expect((await h.call('worker', 'POST', `/api/workers/${a}/claim`)).body.task).toMatchObject({ taskId });
    expect((await h.call('owner', 'GET', url)).body).toMatchObject({ status: 'running', attempts: 1 });
    h.setup.clock.advance(25_000);
    expect(await h.setup.tasks.service.requeueExpired()).toBe(1);
    const requeued = await h.call('owner', 'GET', url);
    expect(requeued.body).toMatchObject({ status: 'queued', attempts: 1 });
    expect(requeued.body.startedAt).toBeUndefined();
    expect((await h.call('admin', 'GET', url)).body.status).toBe('queued');
    expect((await h.call('worker', 'POST', `/api/workers/${a}/heartbeat`)).body).toEqual({ held: [], lost: [taskId] });
    expect((await h.call('worker2', 'POST', `/api/workers/${b}/claim`)).body.task).toMatchObject({ taskId, attempts: 2 });
    expect((await h.call('owner', 'GET', url)).body).toMatchObject({ status: 'running', attempts: 2 });
    expect((await h.call('worker', 'POST', `/api/workers/${a}/tasks/${taskId}/done`, { result: 'late' })).status).toBe(409);
    expect((await h.call('worker2', 'POST', `/api/workers/${b}/tasks/${taskId}/failed`, { error: 'boom: upstream said no' })).status).toBe(200);
    expect((await h.call('owner', 'GET', url)).body).toMatchObject({ status: 'failed', error: 'boom: upstream said no', attempts: 2 });

    await h.setup.tasks.relay?.runOnce();
    const trail = h.setup.sink.written;
    expect(trail.map((event) => event.action)).toEqual(['task.enqueue', 'task.requeue', 'task.finish']);
    expect(trail[2]).toMatchObject({ actor: 'key:key_worker2', orgId: 'org_a', target: taskId, outcome: 'failure', details: { status: 'failed', attempts: 2 } });
    expect(typeof trail[2]?.details?.requestId).toBe('string');
    expect(JSON.stringify(trail)).not.toMatch(/boom|late|hello/);
  });

  it('only platform-admin credentials naming the worker scope may act as workers, each on its own worker id', async () => {
    const h = await harness();
    expect((await h.call('fakeworker', 'POST', '/api/workers/register', { capacity: 1 })).status).toBe(403);
    expect((await h.call('owner', 'POST', '/api/workers/register', { capacity: 1 })).status).toBe(403);
    expect((await h.call('worker', 'POST', '/api/workers/register', { capacity: 0 })).status).toBe(400);
    const workerId = await registerWorker(h);
    expect((await h.call('worker2', 'POST', `/api/workers/${workerId}/heartbeat`)).status).toBe(404);
    expect((await h.call('worker2', 'POST', `/api/workers/${workerId}/claim`)).status).toBe(404);
    expect((await h.call('worker', 'POST', '/api/workers/wrk_AAAAAAAAAAAAAAAA/heartbeat')).status).toBe(404);
  });
});
