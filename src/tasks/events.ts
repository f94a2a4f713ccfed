/**
 * The decision event written into the queue's outbox together with each accepted task, and how
 * it becomes an audit record. The event id is the dedupe key the relay uses, carried into the
 * audit record's details as `eventId`.
 */
import { z } from 'zod';
import type { AuditEventInput } from '../audit/index.js';

export const TASK_EVENT_TYPE = 'task.enqueue';
/** The audit action of an accepted task (also used, with outcome `denied`, for enqueue refusals). */
export const TASK_AUDIT_ACTION = 'task.enqueue';

export const taskEventSchema = z.object({
  v: z.literal(1),
  eventId: z.string().min(1).max(64),
  type: z.literal(TASK_EVENT_TYPE),
  taskId: z.string().min(1).max(64),
  orgId: z.string().min(1).max(64),
  actor: z.string().min(1).max(256),
  principalId: z.string().min(1).max(256),
  route: z.string().max(256),
  requestId: z.string().max(128),
  taskType: z.string().max(128),
  /** Store time (ms) of the enqueue. */
  at: z.number().int(),
});
export type TaskEvent = z.infer<typeof taskEventSchema>;

export function parseTaskEvent(raw: string): TaskEvent | null {
  try {
    const parsed = taskEventSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

export function auditEventOf(event: TaskEvent): AuditEventInput {
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
}
