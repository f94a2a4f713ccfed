/**
 * Task records: what the owner sees when asking "what happened to my task?".
 *
 * Where they live (a decision): in the hot state, next to the queue, under the one queue scope.
 * The queue item itself carries everything a record needs (the `QueuedTask` payload), so whoever
 * touches the item can (re)write the record: ingress writes `queued` only if absent (a fast worker
 * may already have written `running`), a claim writes `running`, a completion `done` or `failed`.
 * A requeue happens in the store alone and writes no record: `TaskService.read` shows a `running`
 * record whose item is back in the queue as `queued`.
 * The durable trail of every accepted task is the audit log, which the outbox relay fills. Records
 * expire after `recordTtlMs`; they are a status view, not the system of record.
 */
import { z } from 'zod';
import type { HotState } from '../store/state/index.js';

/** One platform-wide queue: worker capacity is platform-wide, so is the load it is compared with. */
export const TASK_QUEUE = 'tasks';

export const TASK_STATUSES = ['queued', 'running', 'done', 'failed'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** Largest JSON a task input or result may take once serialized. */
export const MAX_TASK_JSON_BYTES = 64 * 1024;
export const MAX_TASK_ERROR_LENGTH = 1000;

/** The queue item payload: the task as the ingress accepted it. */
export const queuedTaskSchema = z.object({
  v: z.literal(1),
  taskId: z.string().min(1).max(64),
  orgId: z.string().min(1).max(64),
  /** The user who submitted it; owners see their own tasks. */
  ownerId: z.string().min(1).max(64),
  type: z.string().min(1).max(128),
  input: z.unknown(),
  /** Store time (ms) of acceptance. */
  createdAt: z.number().int(),
});
export type QueuedTask = z.infer<typeof queuedTaskSchema>;

export const taskRecordSchema = z.object({
  id: z.string(),
  orgId: z.string(),
  ownerId: z.string(),
  type: z.string(),
  status: z.enum(TASK_STATUSES),
  createdAt: z.number().int(),
  updatedAt: z.number().int(),
  startedAt: z.number().int().optional(),
  finishedAt: z.number().int().optional(),
  /** How many times a worker has claimed it (more than 1 after a worker was lost). */
  attempts: z.number().int().min(0),
  workerId: z.string().optional(),
  result: z.unknown().optional(),
  error: z.string().optional(),
});
export type TaskRecord = z.infer<typeof taskRecordSchema>;

function recordKey(taskId: string): string {
  return `task:${taskId}`;
}

export function initialRecord(task: QueuedTask): TaskRecord {
  return {
    id: task.taskId,
    orgId: task.orgId,
    ownerId: task.ownerId,
    type: task.type,
    status: 'queued',
    createdAt: task.createdAt,
    updatedAt: task.createdAt,
    attempts: 0,
  };
}

export class TaskRecords {
  constructor(
    private readonly state: HotState,
    private readonly ttlMs: number,
  ) {}

  async get(taskId: string): Promise<TaskRecord | null> {
    const raw = await this.state.get(TASK_QUEUE, recordKey(taskId));
    if (raw === null) return null;
    const parsed = taskRecordSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  }

  async put(record: TaskRecord): Promise<void> {
    await this.state.set(TASK_QUEUE, recordKey(record.id), JSON.stringify(record), this.ttlMs);
  }

  /** Writes only when no record exists yet; false when one did (a worker got there first). */
  async putIfAbsent(record: TaskRecord): Promise<boolean> {
    return this.state.setIfAbsent(TASK_QUEUE, recordKey(record.id), JSON.stringify(record), this.ttlMs);
  }

  async delete(taskId: string): Promise<void> {
    await this.state.delete(TASK_QUEUE, recordKey(taskId));
  }
}

/** Parses a queue item payload; null for anything that is not a task this module wrote. */
export function parseQueuedTask(payload: string): QueuedTask | null {
  try {
    const parsed = queuedTaskSchema.safeParse(JSON.parse(payload));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** Serialized size guard for caller-supplied JSON (input, result). */
export function jsonFits(value: unknown, maxBytes: number = MAX_TASK_JSON_BYTES): boolean {
  const text = JSON.stringify(value ?? null);
  return Buffer.byteLength(text, 'utf8') <= maxBytes;
}
