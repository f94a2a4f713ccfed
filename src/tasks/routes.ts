/**
 * HTTP surface of tasks: the ingress (`POST /api/orgs/:orgId/tasks`), the owner's status view,
 * and the worker API under `/api/workers`.
 *
 * Visibility: a task belongs to its org and its owner. Callers outside the org get 404 whatever
 * exists; inside the org, a member without the `tasks` scope gets 403, and a task that is neither
 * theirs nor viewable as an org admin is 404, so ids of other people's tasks reveal nothing.
 *
 * Workers see task inputs of every org, so the worker API requires a platform admin's credential
 * that explicitly carries the `worker` scope (an unscoped session never qualifies), and a worker id
 * answers only to the principal that registered it (404 for anyone else).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import type { Admission, AdmissionTicket, Refusal } from '../admission/types.js';
import type { AuditSink } from '../audit/index.js';
import { AppError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { defineRoute, type RouteRegistry } from '../http/route.js';
import type { Principal } from '../identity/principal.js';
import { can, roleAtLeast, scopesAllow } from '../identity/tenancy/permissions.js';
import { TASK_AUDIT_ACTION } from './events.js';
import { MAX_TASK_ERROR_LENGTH, MAX_TASK_JSON_BYTES, jsonFits, type TaskRecord } from './records.js';
import { auditActor, type TaskService } from './task-service.js';
import { MAX_WORKER_CAPACITY, type WorkerRecord, type WorkerRegistry } from './workers.js';

export const TASK_INGRESS_ROUTE = '/api/orgs/:orgId/tasks';
/** Room for the JSON envelope around a maximal input or result. */
const BODY_LIMIT = MAX_TASK_JSON_BYTES + 4 * 1024;

export interface TaskRouteDeps {
  service: TaskService;
  workers: WorkerRegistry;
  /** The admission pipeline (kind `task`); without it only the enqueue gate applies. */
  admission?: Admission;
  /** Where enqueue refusals are recorded (accepted tasks go through the outbox relay). */
  audit?: AuditSink;
  /** How often workers should heartbeat; told to them at registration. */
  heartbeatIntervalMs: number;
  /**
   * The caller as a member of `orgId` (with its role there), or null when not a member. Sessions
   * span orgs, so main wires tenancy's `principalInOrg`; the default trusts `principal.orgId`.
   */
  resolveInOrg?: (principal: Principal, orgId: string) => Promise<Principal | null>;
  logger?: Logger;
}

const orgParams = z.object({ orgId: z.string().min(1).max(64) });
const taskParams = z.object({ orgId: z.string().min(1).max(64), taskId: z.string().regex(/^tsk_[A-Za-z0-9_-]{16}$/) });
const workerParams = z.object({ workerId: z.string().regex(/^wrk_[A-Za-z0-9_-]{16}$/) });
const workerTaskParams = workerParams.extend({ taskId: z.string().regex(/^tsk_[A-Za-z0-9_-]{16}$/) });

const submitBody = z
  .object({
    type: z.string().min(1).max(128).regex(/^[A-Za-z0-9_.:-]+$/),
    input: z.unknown().optional(),
  })
  .strict();
const registerBody = z.object({ capacity: z.number().int().min(1).max(MAX_WORKER_CAPACITY) }).strict();
const doneBody = z.object({ result: z.unknown().optional() }).strict();
const failedBody = z.object({ error: z.string().max(MAX_TASK_ERROR_LENGTH).optional() }).strict();

function refusalError(refusal: Refusal): AppError {
  return new AppError(refusal.code, {
    message: refusal.message,
    ...(refusal.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: refusal.retryAfterSeconds }),
    details: { gate: refusal.gate },
  });
}

function applyHeaders(reply: FastifyReply, headers: Record<string, string>): void {
  for (const [name, value] of Object.entries(headers)) reply.header(name, value);
}

function taskView(record: TaskRecord) {
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  return {
    id: record.id,
    orgId: record.orgId,
    type: record.type,
    status: record.status,
    attempts: record.attempts,
    createdAt: iso(record.createdAt),
    updatedAt: iso(record.updatedAt),
    ...(record.startedAt === undefined ? {} : { startedAt: iso(record.startedAt) }),
    ...(record.finishedAt === undefined ? {} : { finishedAt: iso(record.finishedAt) }),
    ...(record.result === undefined ? {} : { result: record.result }),
    ...(record.error === undefined ? {} : { error: record.error }),
  };
}

async function sameOrgOnly(principal: Principal, orgId: string): Promise<Principal | null> {
  return principal.orgId === orgId && principal.role !== null ? principal : null;
}

export function isWorkerPrincipal(principal: Principal): boolean {
  return principal.userId !== null && principal.platformAdmin && principal.scopes.includes('worker');
}

export function registerTaskRoutes(app: FastifyInstance, registry: RouteRegistry, deps: TaskRouteDeps): void {
  const { service, workers } = deps;
  const resolveInOrg = deps.resolveInOrg ?? sameOrgOnly;

  /** Outside the org: 404 (never reveal the org exists). Inside without the scope: 403. */
  async function memberWithTasksScope(principal: Principal, orgId: string): Promise<Principal> {
    const member = await resolveInOrg(principal, orgId);
    if (member === null || member.orgId !== orgId || member.role === null) throw new AppError('not_found');
    if (!scopesAllow(member, 'tasks')) throw new AppError('forbidden');
    return member;
  }

  async function settle(ticket: AdmissionTicket | undefined, accepted: boolean): Promise<void> {
    if (ticket === undefined) return;
    // Queued work costs nothing at the gateway; a refused enqueue releases whatever was reserved.
    await ticket.settle(accepted ? { kind: 'success', actualMicros: 0, actualTokens: 0 } : { kind: 'upstream_failure', reason: 'error' });
  }

  defineRoute(app, registry, {
    method: 'POST',
    url: TASK_INGRESS_ROUTE,
    summary: 'Submit an agent task; answers 202 with its id once it is queued with its decision event',
    tags: ['tasks'],
    auth: 'required',
    params: orgParams,
    body: submitBody,
    bodyLimit: BODY_LIMIT,
    successStatus: 202,
    handler: async ({ principal: caller, params, body, request, reply }) => {
      const principal = await memberWithTasksScope(caller, params.orgId);
      const ownerId = principal.userId;
      if (ownerId === null || !can(principal, 'tasks.use', params.orgId)) throw new AppError('forbidden');
      if (!jsonFits(body.input)) throw new AppError('payload_too_large', { message: `Task input is limited to ${MAX_TASK_JSON_BYTES} bytes.` });

      let ticket: AdmissionTicket | undefined;
      if (deps.admission !== undefined) {
        const admitted = await deps.admission.admit({ principal, route: TASK_INGRESS_ROUTE, requestId: request.id, kind: 'task' });
        applyHeaders(reply, admitted.headers);
        if (!admitted.ok) throw refusalError(admitted.refusal);
        ticket = admitted.ticket;
      }
      let result;
      try {
        result = await service.submit({
          principal,
          orgId: params.orgId,
          ownerId,
          type: body.type,
          input: body.input ?? null,
          requestId: request.id,
          route: TASK_INGRESS_ROUTE,
        });
      } catch (error) {
        await settle(ticket, false);
        throw error;
      }
      await settle(ticket, result.ok);
      if (!result.ok) {
        await deps.audit
          ?.record({
            actor: auditActor(principal),
            orgId: params.orgId,
            action: TASK_AUDIT_ACTION,
            target: null,
            outcome: 'denied',
            details: { gate: result.refusal.gate, code: result.refusal.code, requestId: request.id, ...(result.refusal.limit ?? {}) },
          })
          .catch((err: unknown) => deps.logger?.warn({ err }, 'could not record a task enqueue refusal'));
        throw refusalError(result.refusal);
      }
      reply.header('location', `/api/orgs/${params.orgId}/tasks/${result.taskId}`);
      return { taskId: result.taskId, status: 'queued' };
    },
  });

  defineRoute(app, registry, {
    method: 'GET',
    url: '/api/orgs/:orgId/tasks/:taskId',
    summary: "A task's status, for its owner and the org's admins",
    tags: ['tasks'],
    auth: 'required',
    params: taskParams,
    handler: async ({ principal: caller, params }) => {
      const principal = await memberWithTasksScope(caller, params.orgId);
      const record = await service.read(params.taskId);
      const visible =
        record !== null &&
        record.orgId === params.orgId &&
        (record.ownerId === principal.userId || roleAtLeast(principal.role, 'admin'));
      if (!visible) throw new AppError('not_found');
      return taskView(record);
    },
  });

  function requireWorkerPrincipal(principal: Principal): void {
    if (!isWorkerPrincipal(principal)) throw new AppError('forbidden');
  }

  async function loadWorker(principal: Principal, workerId: string): Promise<WorkerRecord> {
    requireWorkerPrincipal(principal);
    const worker = await workers.get(workerId, principal.id);
    if (worker === null) throw new AppError('not_found', { message: 'Unknown worker; register again.' });
    return worker;
  }

  defineRoute(app, registry, {
    method: 'POST',
    url: '/api/workers/register',
    summary: 'Register a task worker with its declared capacity',
    tags: ['workers'],
    auth: 'required',
    body: registerBody,
    successStatus: 201,
    handler: async ({ principal, body }) => {
      requireWorkerPrincipal(principal);
      const worker = await workers.register(principal.id, body.capacity);
      return { workerId: worker.id, capacity: worker.capacity, heartbeatIntervalMs: deps.heartbeatIntervalMs, leaseMs: workers.leaseMs };
    },
  });

  defineRoute(app, registry, {
    method: 'POST',
    url: '/api/workers/:workerId/heartbeat',
    summary: 'Heartbeat: keeps the worker healthy and renews the leases of the tasks it holds',
    tags: ['workers'],
    auth: 'required',
    params: workerParams,
    handler: async ({ principal, params }) => {
      const worker = await loadWorker(principal, params.workerId);
      const { held, lost } = await workers.heartbeat(worker);
      return { held, lost };
    },
  });

  defineRoute(app, registry, {
    method: 'POST',
    url: '/api/workers/:workerId/claim',
    summary: 'Lease the next queued task (null when none is waiting or the worker is at capacity)',
    tags: ['workers'],
    auth: 'required',
    params: workerParams,
    handler: async ({ principal, params }) => {
      const worker = await loadWorker(principal, params.workerId);
      const { task } = await service.claim(worker);
      return { task };
    },
  });

  for (const status of ['done', 'failed'] as const) {
    defineRoute(app, registry, {
      method: 'POST',
      url: `/api/workers/:workerId/tasks/:taskId/${status}`,
      summary: `Report a held task ${status}; refused with 409 when the worker no longer holds it`,
      tags: ['workers'],
      auth: 'required',
      params: workerTaskParams,
      body: status === 'done' ? doneBody : failedBody,
      bodyLimit: BODY_LIMIT,
      handler: async ({ principal, params, body, request }) => {
        const worker = await loadWorker(principal, params.workerId);
        let outcome;
        if (status === 'done') {
          const result = (body as z.infer<typeof doneBody>).result;
          if (!jsonFits(result)) throw new AppError('payload_too_large', { message: `Task results are limited to ${MAX_TASK_JSON_BYTES} bytes.` });
          outcome = { status, ...(result === undefined ? {} : { result }) } as const;
        } else {
          const error = (body as z.infer<typeof failedBody>).error;
          outcome = { status, ...(error === undefined ? {} : { error }) } as const;
        }
        const finished = await service.finish(worker, params.taskId, outcome, { actor: auditActor(principal), requestId: request.id });
        if (!finished.ok) {
          throw new AppError('conflict', { message: 'This worker no longer holds the task (its lease lapsed and it was requeued).', details: { reason: 'not_held' } });
        }
        return { taskId: params.taskId, status };
      },
    });
  }
}
