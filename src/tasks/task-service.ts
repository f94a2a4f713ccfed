/**
 * The task lifecycle over the hot-state queue: submit (the atomic enqueue, last gate of the
 * admission order), claim, finish and requeue. Routes translate; this file decides.
 *
 * Submit puts the task and its decision event into the store in ONE call (`enqueue` with the
 * event as the outbox entry and the final capacity check as the guard): there is no point in this
 * code between "task written" and "event written" where a fault could leave one without the other.
 * Finish does the same with `complete` and its finish event, and requeueExpired asks the store to
 * write a note for each lapsed lease it moves back: every change of who holds a task is audited
 * by the outbox relay, exactly when it happened.
 *
 * Status: the record is written after the store's step (claim → running, finish → done/failed),
 * but a requeue happens in the store alone. So `read` takes the queue's word over a `running`
 * record: an item the store has back in the queue reads `queued`, from the moment of the requeue.
 */
import { newId } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { Principal } from '../identity/principal.js';
import type { Refusal } from '../admission/types.js';
import type { HotState } from '../store/state/index.js';
import type { TaskRecords} from './records.js';
import { TASK_QUEUE, initialRecord, parseQueuedTask, type QueuedTask, type TaskRecord } from './records.js';
import type { WorkerRecord, WorkerRegistry } from './workers.js';
import { TASK_EVENT_TYPE, TASK_FINISH_EVENT_TYPE, type EnqueueEvent, type FinishEvent } from './events.js';

export interface TaskServiceOptions {
  state: HotState;
  workers: WorkerRegistry;
  records: TaskRecords;
  /**
   * The most queued + in-flight tasks allowed for a given healthy worker capacity (the backpressure
   * hard limit). Checked atomically inside the enqueue.
   */
  maxLoad: (capacity: number) => number;
  logger?: Logger;
}

export interface SubmitRequest {
  principal: Principal;
  orgId: string;
  /** The owner: the submitting user. */
  ownerId: string;
  type: string;
  input: unknown;
  requestId: string;
  route: string;
}

export type SubmitResult = { ok: true; taskId: string; depth: number } | { ok: false; refusal: Refusal };

export interface ClaimedTask {
  taskId: string;
  orgId: string;
  type: string;
  input: unknown;
  attempts: number;
  leaseExpiresAt: number;
}

export type FinishOutcome = { status: 'done'; result?: unknown } | { status: 'failed'; error?: string };

/** Who reported a finish, for its audit record. */
export interface FinishContext {
  /** The worker's credential as the audit log names it (`auditActor`); default: the worker's principal id. */
  actor?: string;
  requestId?: string;
}

/** How a principal is named in the audit log (see audit/sink.ts). */
export function auditActor(principal: Principal): string {
  if (principal.kind === 'api_key' && principal.keyId !== undefined) return `key:${principal.keyId}`;
  return principal.userId ?? principal.id;
}

/** Seconds a refused submitter should wait: roughly one lease, when capacity frees up. */
const QUEUE_FULL_RETRY_SECONDS = 5;

export class TaskService {
  readonly #state: HotState;
  readonly #workers: WorkerRegistry;
  readonly #records: TaskRecords;
  readonly #maxLoad: (capacity: number) => number;
  readonly #logger: Logger | undefined;

  constructor(options: TaskServiceOptions) {
    this.#state = options.state;
    this.#workers = options.workers;
    this.#records = options.records;
    this.#maxLoad = options.maxLoad;
    this.#logger = options.logger;
  }

  async submit(request: SubmitRequest): Promise<SubmitResult> {
    const capacity = await this.#workers.workerCapacity();
    const maxLoad = Math.max(0, Math.floor(this.#maxLoad(capacity)));
    const createdAt = await this.#state.now();
    const task: QueuedTask = {
      v: 1,
      taskId: newId('tsk'),
      orgId: request.orgId,
      ownerId: request.ownerId,
      type: request.type,
      input: request.input,
      createdAt,
    };
    const event: EnqueueEvent = {
      v: 1,
      eventId: newId('evt'),
      type: TASK_EVENT_TYPE,
      taskId: task.taskId,
      orgId: request.orgId,
      actor: auditActor(request.principal),
      principalId: request.principal.id,
      route: request.route,
      requestId: request.requestId,
      taskType: request.type,
      at: createdAt,
    };
    const result = await this.#state.enqueue(TASK_QUEUE, { id: task.taskId, payload: JSON.stringify(task) }, { maxLoad }, JSON.stringify(event));
    if (!result.ok) {
      if (result.reason === 'full') {
        return {
          ok: false,
          refusal: {
            gate: 'enqueue',
            code: 'queue_full',
            status: 503,
            message: capacity === 0 ? 'No task worker is available.' : `The task queue is full (${maxLoad} tasks).`,
            retryAfterSeconds: QUEUE_FULL_RETRY_SECONDS,
            limit: { maxLoad, load: result.load, capacity },
          },
        };
      }
      // Ids are random, so this means a bug, not a client error.
      return { ok: false, refusal: { gate: 'enqueue', code: 'conflict', status: 409, message: 'The task id is already in use.' } };
    }
    // A fast worker may have claimed it already and written `running`; never go back to `queued`.
    await this.#records.putIfAbsent(initialRecord(task));
    return { ok: true, taskId: task.taskId, depth: result.depth };
  }

  /** Leases the next task to the worker, within its declared capacity; null when none is waiting. */
  async claim(worker: WorkerRecord): Promise<{ worker: WorkerRecord; task: ClaimedTask | null }> {
    const now = await this.#state.now();
    let current: WorkerRecord = { ...worker, lastSeenAt: now };
    if (current.held.length >= current.capacity) {
      await this.#workers.save(current);
      return { worker: current, task: null };
    }
    const item = await this.#state.claim(TASK_QUEUE, worker.id, this.#workers.leaseMs);
    if (item === null) {
      await this.#workers.save(current);
      return { worker: current, task: null };
    }
    const task = parseQueuedTask(item.payload);
    if (task === null) {
      // Not something this module wrote: drop it rather than hand it out forever.
      await this.#state.complete(TASK_QUEUE, item.id, worker.id);
      this.#logger?.error({ itemId: item.id }, 'dropped an unreadable task queue item');
      await this.#workers.save(current);
      return { worker: current, task: null };
    }
    current = { ...current, held: [...current.held.filter((id) => id !== item.id), item.id] };
    await this.#workers.save(current);
    const previous = await this.#records.get(task.taskId);
    const record: TaskRecord = {
      ...(previous ?? initialRecord(task)),
      status: 'running',
      updatedAt: now,
      startedAt: now,
      attempts: item.attempts,
      workerId: worker.id,
    };
    await this.#records.put(record);
    return {
      worker: current,
      task: { taskId: task.taskId, orgId: task.orgId, type: task.type, input: task.input, attempts: item.attempts, leaseExpiresAt: item.leaseExpiresAt },
    };
  }

  /**
   * Reports a held task done or failed. Refused (`not_held`) when the store says this worker no
   * longer holds it — its lease lapsed and the task went back to the queue — so each task is
   * completed exactly once. The finish event goes into the outbox in the same step as the
   * completion, so a refused report writes none and an accepted one exactly one.
   */
  async finish(
    worker: WorkerRecord,
    taskId: string,
    outcome: FinishOutcome,
    context: FinishContext = {},
  ): Promise<{ ok: true; record: TaskRecord | null } | { ok: false; reason: 'not_held' }> {
    const previous = await this.#records.get(taskId);
    // Store time, read once for the event and the record (the audit record's own time is the relay's).
    const now = await this.#state.now();
    const event: FinishEvent = {
      v: 1,
      eventId: newId('evt'),
      type: TASK_FINISH_EVENT_TYPE,
      taskId,
      orgId: previous?.orgId ?? null,
      actor: context.actor ?? worker.principalId,
      workerId: worker.id,
      status: outcome.status,
      ...(previous === null ? {} : { taskType: previous.type, attempts: previous.attempts }),
      ...(context.requestId === undefined ? {} : { requestId: context.requestId }),
      at: now,
    };
    const completed = await this.#state.complete(TASK_QUEUE, taskId, worker.id, JSON.stringify(event));
    await this.#workers.save({ ...worker, lastSeenAt: now, held: worker.held.filter((id) => id !== taskId) });
    if (!completed) return { ok: false, reason: 'not_held' };
    if (previous === null) return { ok: true, record: null };
    const record: TaskRecord = {
      ...previous,
      status: outcome.status,
      updatedAt: now,
      finishedAt: now,
      workerId: worker.id,
      ...(outcome.status === 'done' && outcome.result !== undefined ? { result: outcome.result } : {}),
      ...(outcome.status === 'failed' && outcome.error !== undefined ? { error: outcome.error } : {}),
    };
    await this.#records.put(record);
    return { ok: true, record };
  }

  /**
   * Puts tasks whose lease lapsed back at the head of the queue; returns how many. The store
   * writes a requeue note into the outbox for each, in the same step.
   */
  async requeueExpired(): Promise<number> {
    return this.#state.requeueExpired(TASK_QUEUE, { outbox: true });
  }

  /**
   * The task's record as its owner should see it: a `running` record whose item the store has put
   * back in the queue (its lease lapsed) reads `queued`, without the lapsed worker. The stored
   * record is left for the next claim to overwrite (writing here could undo a claim in between).
   */
  async read(taskId: string): Promise<TaskRecord | null> {
    const record = await this.#records.get(taskId);
    if (record?.status !== 'running') return record;
    const item = await this.#state.queueItemState(TASK_QUEUE, taskId);
    if (item.state !== 'queued') return record;
    const { workerId: _workerId, startedAt: _startedAt, ...rest } = record;
    return { ...rest, status: 'queued' };
  }
}
