/**
 * The registry of the platform's agent workers, kept in the hot state so every replica sees the
 * same workers and the same capacity.
 *
 * - Each worker is one record (`worker:<id>`) holding its declared capacity, the principal it is
 *   bound to, the time of its last heartbeat (store time) and the tasks it holds. The record lives
 *   for `recordTtlMs` after the last call; "healthy" is decided from `lastSeenAt`, not from the TTL,
 *   so a worker that comes back late can still finish what it holds.
 * - The port has no key listing, so an index key lists the worker ids; it changes only on
 *   registration and pruning, under a short lock taken with setIfAbsent. Heartbeats never touch it.
 * - Leases: a heartbeat renews the lease of every task the worker holds. A worker that stops
 *   heart-beating lets its leases lapse; the requeue job then puts the work back, and the store
 *   refuses a completion from a worker that no longer holds the item.
 *
 * A worker's own calls are expected to be sequential. If one worker races itself (claim during a
 * heartbeat) a held id may be lost from its record; that task's lease then lapses and it is re-run
 * by someone else, and the late completion is refused: the safe direction.
 */
import { z } from 'zod';
import { AppError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { HotState } from '../store/state/index.js';
import { TASK_QUEUE } from './records.js';

const INDEX_KEY = 'workers:index';
const INDEX_LOCK_KEY = 'workers:index:lock';
const INDEX_LOCK_TTL_MS = 2000;
const INDEX_LOCK_ATTEMPTS = 40;
const INDEX_LOCK_WAIT_MS = 25;
/** Bounds the index (and the cost of summing capacity). */
export const MAX_WORKERS = 5000;
export const MAX_WORKER_CAPACITY = 1000;

const workerRecordSchema = z.object({
  id: z.string(),
  principalId: z.string(),
  capacity: z.number().int().min(1).max(MAX_WORKER_CAPACITY),
  registeredAt: z.number().int(),
  lastSeenAt: z.number().int(),
  held: z.array(z.string()).max(MAX_WORKER_CAPACITY),
});
export type WorkerRecord = z.infer<typeof workerRecordSchema>;

export interface WorkerRegistryOptions {
  state: HotState;
  /** A worker counts towards capacity while its last heartbeat is at most this old. */
  healthyMs: number;
  /** Lease of a claimed task; renewed by every heartbeat. */
  leaseMs: number;
  /** How long a silent worker's record is kept before it is forgotten (default 24 h). */
  recordTtlMs?: number;
  /** workerCapacity() answers from memory for this long (default 1000 ms; 0 disables). */
  capacityCacheMs?: number;
}

function workerKey(id: string): string {
  return `worker:${id}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class WorkerRegistry {
  readonly #state: HotState;
  readonly #healthyMs: number;
  readonly #leaseMs: number;
  readonly #recordTtlMs: number;
  readonly #capacityCacheMs: number;
  #capacityCache: { at: number; value: Promise<number> } | undefined;

  constructor(options: WorkerRegistryOptions) {
    this.#state = options.state;
    this.#healthyMs = options.healthyMs;
    this.#leaseMs = options.leaseMs;
    this.#recordTtlMs = options.recordTtlMs ?? 24 * 60 * 60 * 1000;
    this.#capacityCacheMs = options.capacityCacheMs ?? 1000;
  }

  get leaseMs(): number {
    return this.#leaseMs;
  }

  async register(principalId: string, capacity: number): Promise<WorkerRecord> {
    const now = await this.#state.now();
    const record: WorkerRecord = { id: newId('wrk'), principalId, capacity, registeredAt: now, lastSeenAt: now, held: [] };
    await this.#withIndex(async (ids) => {
      const live = await this.#pruneDead(ids);
      if (live.length >= MAX_WORKERS) throw new AppError('conflict', { message: 'Too many registered workers.' });
      await this.save(record);
      return [...live, record.id];
    });
    this.#capacityCache = undefined;
    return record;
  }

  /** The worker bound to this principal, or null (unknown id, forgotten, or someone else's). */
  async get(workerId: string, principalId: string): Promise<WorkerRecord | null> {
    const record = await this.#read(workerId);
    return record !== null && record.principalId === principalId ? record : null;
  }

  async save(record: WorkerRecord): Promise<void> {
    await this.#state.set(TASK_QUEUE, workerKey(record.id), JSON.stringify(record), this.#recordTtlMs);
  }

  /**
   * Marks the worker alive and renews the leases of the tasks it holds; tasks it no longer holds
   * (requeued after a lapse, or finished) are dropped from its record and reported as lost.
   */
  async heartbeat(record: WorkerRecord): Promise<{ record: WorkerRecord; held: string[]; lost: string[] }> {
    const held: string[] = [];
    const lost: string[] = [];
    for (const taskId of record.held) {
      if (await this.#state.renew(TASK_QUEUE, taskId, record.id, this.#leaseMs)) held.push(taskId);
      else lost.push(taskId);
    }
    const updated: WorkerRecord = { ...record, held, lastSeenAt: await this.#state.now() };
    await this.save(updated);
    return { record: updated, held, lost };
  }

  isHealthy(record: WorkerRecord, now: number): boolean {
    return now - record.lastSeenAt <= this.#healthyMs;
  }

  /** Sum of the declared capacity of healthy workers across all replicas. */
  workerCapacity(): Promise<number> {
    const at = Date.now();
    const cached = this.#capacityCache;
    if (cached !== undefined && this.#capacityCacheMs > 0 && at - cached.at < this.#capacityCacheMs) return cached.value;
    const value = this.#sumCapacity();
    this.#capacityCache = { at, value };
    // A failed read must not be served from the cache.
    value.catch(() => {
      if (this.#capacityCache?.value === value) this.#capacityCache = undefined;
    });
    return value;
  }

  /** Forgets workers whose record has expired; returns how many are left. */
  async prune(): Promise<number> {
    let left = 0;
    await this.#withIndex(async (ids) => {
      const live = await this.#pruneDead(ids);
      left = live.length;
      return live;
    });
    return left;
  }

  async #sumCapacity(): Promise<number> {
    const ids = await this.#readIndex();
    const now = await this.#state.now();
    const records = await Promise.all(ids.map((id) => this.#read(id)));
    let total = 0;
    for (const record of records) if (record !== null && this.isHealthy(record, now)) total += record.capacity;
    return total;
  }

  async #read(workerId: string): Promise<WorkerRecord | null> {
    const raw = await this.#state.get(TASK_QUEUE, workerKey(workerId));
    if (raw === null) return null;
    const parsed = workerRecordSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  }

  async #readIndex(): Promise<string[]> {
    const raw = await this.#state.get(TASK_QUEUE, INDEX_KEY);
    if (raw === null) return [];
    const parsed = z.array(z.string()).safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : [];
  }

  async #pruneDead(ids: string[]): Promise<string[]> {
    const present = await Promise.all(ids.map(async (id) => ((await this.#read(id)) === null ? null : id)));
    return present.filter((id): id is string => id !== null);
  }

  /** Read-modify-write of the index under a short lock; the lock's TTL frees it if a replica dies. */
  async #withIndex(change: (ids: string[]) => Promise<string[]>): Promise<void> {
    const token = newId('wrk');
    let acquired = false;
    for (let attempt = 0; attempt < INDEX_LOCK_ATTEMPTS && !acquired; attempt += 1) {
      acquired = await this.#state.setIfAbsent(TASK_QUEUE, INDEX_LOCK_KEY, token, INDEX_LOCK_TTL_MS);
      if (!acquired) await sleep(INDEX_LOCK_WAIT_MS);
    }
    if (!acquired) throw new AppError('dependency_unavailable', { message: 'The worker registry is busy; retry shortly.', retryAfterSeconds: 1 });
    try {
      const next = await change(await this.#readIndex());
      await this.#state.set(TASK_QUEUE, INDEX_KEY, JSON.stringify(next));
    } finally {
      // Only release our own lock (it may have expired and been taken by another replica).
      if ((await this.#state.get(TASK_QUEUE, INDEX_LOCK_KEY)) === token) await this.#state.delete(TASK_QUEUE, INDEX_LOCK_KEY);
    }
  }
}
