/**
 * The task lifecycle events written into the queue's outbox in the same atomic step as the state
 * change they describe, and how each becomes an audit record:
 *
 * - `task.enqueue`: written with the accepted task (enqueue);
 * - `task.finish`: written with the completion of a held task (done or failed);
 * - `task.requeue`: a lapsed lease moved back to the queue. The store writes these itself (only it
 *   knows which leases lapsed) as a `RequeueOutboxEvent`; the relay turns one into a `task.requeue`
 *   event, naming the org and type from the task record.
 *
 * The event id is the dedupe key the relay uses, carried into the audit record's details as
 * `eventId`. A requeue's id is derived from the item and its claim count, which a requeue moves
 * back at most once, so a re-read store entry dedupes like any other.
 *
 * Details stay free of task inputs, results and worker error texts (caller-supplied data that may
 * hold anything): what was done, by whom, to which task, and when.
 */
import { z } from 'zod';
import type { AuditEventInput } from '../audit/index.js';
import { REQUEUE_OUTBOX_TYPE, type RequeueOutboxEvent } from '../store/state/index.js';

export const TASK_EVENT_TYPE = 'task.enqueue';
export const TASK_FINISH_EVENT_TYPE = 'task.finish';
export const TASK_REQUEUE_EVENT_TYPE = 'task.requeue';
/** The audit action of an accepted task (also used, with outcome `denied`, for enqueue refusals). */
export const TASK_AUDIT_ACTION = 'task.enqueue';
/** The audit action of a worker's report: outcome `success` for done, `failure` for failed. */
export const TASK_FINISH_AUDIT_ACTION = 'task.finish';
/** The audit action of a lapsed lease whose task went back to the queue (actor `system`). */
export const TASK_REQUEUE_AUDIT_ACTION = 'task.requeue';
/** Every action the relay writes (what its dedupe lookup searches). */
export const TASK_RELAYED_AUDIT_ACTIONS = [TASK_AUDIT_ACTION, TASK_FINISH_AUDIT_ACTION, TASK_REQUEUE_AUDIT_ACTION] as const;

/** The actor of what the platform does on its own. */
const SYSTEM_ACTOR = 'system';

/** What every lifecycle event carries; `at` is the store time (ms) of the change it records. */
const lifecycleFields = {
  v: z.literal(1),
  eventId: z.string().min(1).max(64),
  taskId: z.string().min(1).max(64),
  at: z.number().int(),
};

export const enqueueEventSchema = z.object({
  ...lifecycleFields,
  type: z.literal(TASK_EVENT_TYPE),
  orgId: z.string().min(1).max(64),
  actor: z.string().min(1).max(256),
  principalId: z.string().min(1).max(256),
  route: z.string().max(256),
  requestId: z.string().max(128),
  taskType: z.string().max(128),
});
export type EnqueueEvent = z.infer<typeof enqueueEventSchema>;

export const finishEventSchema = z.object({
  ...lifecycleFields,
  type: z.literal(TASK_FINISH_EVENT_TYPE),
  /** Null only when the task record was already gone (its org is then unknown). */
  orgId: z.string().min(1).max(64).nullable(),
  /** The worker's credential, named as in the rest of the audit log. */
  actor: z.string().min(1).max(256),
  workerId: z.string().min(1).max(64),
  status: z.enum(['done', 'failed']),
  taskType: z.string().max(128).optional(),
  attempts: z.number().int().min(0).optional(),
  requestId: z.string().max(128).optional(),
});
export type FinishEvent = z.infer<typeof finishEventSchema>;

export const requeueEventSchema = z.object({
  ...lifecycleFields,
  type: z.literal(TASK_REQUEUE_EVENT_TYPE),
  orgId: z.string().min(1).max(64).nullable(),
  /** The worker whose lease lapsed. */
  workerId: z.string().min(1).max(64),
  /** Claims so far; the lapsed one was the last. */
  attempts: z.number().int().min(0),
  taskType: z.string().max(128).optional(),
});
export type RequeueEvent = z.infer<typeof requeueEventSchema>;

/** The events the task service writes into the outbox as they are. */
export type ServiceEvent = EnqueueEvent | FinishEvent;
/** The events the relay writes: the service's, and requeues it completes from the store's notes. */
export type TaskEvent = ServiceEvent | RequeueEvent;

const serviceEventSchema = z.discriminatedUnion('type', [enqueueEventSchema, finishEventSchema]);

const storeRequeueSchema = z.object({
  type: z.literal(REQUEUE_OUTBOX_TYPE),
  itemId: z.string().min(1).max(64),
  workerId: z.string().min(1).max(64),
  attempts: z.number().int().min(0),
  at: z.number().int(),
});

/** What one outbox entry holds: an event as written, or the store's note of a requeue to complete. */
export type OutboxItem = { kind: 'event'; event: ServiceEvent } | { kind: 'requeue'; requeue: RequeueOutboxEvent };

export function parseOutboxItem(raw: string): OutboxItem | null {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return null;
  }
  const event = serviceEventSchema.safeParse(json);
  if (event.success) return { kind: 'event', event: event.data };
  const requeue = storeRequeueSchema.safeParse(json);
  return requeue.success ? { kind: 'requeue', requeue: requeue.data } : null;
}

/** An enqueue or finish event as written by the task service; null for anything else. */
export function parseTaskEvent(raw: string): ServiceEvent | null {
  const item = parseOutboxItem(raw);
  return item?.kind === 'event' ? item.event : null;
}

/** The requeue event for the store's note, with the org and type the task record names (if any). */
export function requeueEventOf(requeue: RequeueOutboxEvent, task: { orgId: string; type: string } | null): RequeueEvent | null {
  const parsed = requeueEventSchema.safeParse({
    v: 1,
    eventId: `rq_${requeue.itemId}_${requeue.attempts}`,
    type: TASK_REQUEUE_EVENT_TYPE,
    taskId: requeue.itemId,
    orgId: task?.orgId ?? null,
    workerId: requeue.workerId,
    attempts: requeue.attempts,
    ...(task === null ? {} : { taskType: task.type }),
    at: requeue.at,
  });
  return parsed.success ? parsed.data : null;
}

export function auditEventOf(event: TaskEvent): AuditEventInput {
  switch (event.type) {
    case TASK_EVENT_TYPE:
      return {
        actor: event.actor,
        orgId: event.orgId,
        action: TASK_AUDIT_ACTION,
        target: event.taskId,
        outcome: 'success',
        details: {
          eventId: event.eventId,
          gate: 'enqueue',
          route: event.route,
          requestId: event.requestId,
          taskType: event.taskType,
          enqueuedAt: new Date(event.at).toISOString(),
        },
      };
    case TASK_FINISH_EVENT_TYPE:
      return {
        actor: event.actor,
        orgId: event.orgId,
        action: TASK_FINISH_AUDIT_ACTION,
        target: event.taskId,
        outcome: event.status === 'done' ? 'success' : 'failure',
        details: {
          eventId: event.eventId,
          status: event.status,
          workerId: event.workerId,
          ...(event.taskType === undefined ? {} : { taskType: event.taskType }),
          ...(event.attempts === undefined ? {} : { attempts: event.attempts }),
          ...(event.requestId === undefined ? {} : { requestId: event.requestId }),
          finishedAt: new Date(event.at).toISOString(),
        },
      };
    case TASK_REQUEUE_EVENT_TYPE:
      return {
        actor: SYSTEM_ACTOR,
        orgId: event.orgId,
        action: TASK_REQUEUE_AUDIT_ACTION,
        target: event.taskId,
        outcome: 'success',
        details: {
          eventId: event.eventId,
          reason: 'lease_lapsed',
          workerId: event.workerId,
          attempts: event.attempts,
          ...(event.taskType === undefined ? {} : { taskType: event.taskType }),
          requeuedAt: new Date(event.at).toISOString(),
        },
      };
  }
}
