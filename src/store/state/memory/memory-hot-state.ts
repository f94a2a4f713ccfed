/**
 * The embedded hot-state adapter: one process, no service. Atomicity comes from JavaScript's
 * single thread: every operation does its reads and writes without awaiting in between. Time comes
 * from the injected clock; expiry is lazy (checked on access, plus an occasional sweep) so no timer
 * ever keeps the process alive.
 */
import { systemClock, type Clock } from '../../../core/clock.js';
import { invalidArgument } from '../errors.js';
import type {
  AdmitRequest,
  AdmitResult,
  BudgetUsage,
  ClaimedItem,
  EnqueueGuard,
  EnqueueResult,
  HotState,
  MessageHandler,
  OutboxEntry,
  PresenceMember,
  QueueItem,
  QueueItemState,
  ReserveRequest,
  ReserveResult,
  SettleManyResult,
  SettleResult,
  Settlement,
  WindowDecision,
  WindowSpec,
} from '../port.js';
import {
  checkAdmit,
  checkAmounts,
  checkChannel,
  checkHeartbeat,
  checkKey,
  checkOutboxBatch,
  checkOutboxEvent,
  checkQueueItem,
  checkReserve,
  checkScope,
  checkSettlements,
  checkTtl,
  checkValue,
  checkWindows,
  LIMITS,
} from '../validation.js';
import { admitStep, settleStep } from './memory-admit.js';
import { MemoryBudgets } from './memory-budgets.js';
import { MemoryQueues } from './memory-queue.js';
import { MemoryWindows } from './memory-windows.js';

interface Stored {
  value: string;
  expiresAt: number | undefined;
}

/** Writes between sweeps of idle keys; amortises cleanup without a timer. */
const SWEEP_EVERY = 1000;
const SEP = '\u0000';

export interface MemoryHotStateOptions {
  clock?: Clock;
}

export class MemoryHotState implements HotState {
  readonly kind = 'memory' as const;
  private readonly clock: Clock;
  private readonly values = new Map<string, Stored>();
  private readonly windows = new MemoryWindows();
  private readonly budgets = new MemoryBudgets();
  private readonly presence = new Map<string, Map<string, { value: string; expiresAt: number }>>();
  private readonly queues = new MemoryQueues();
  private readonly channels = new Map<string, Set<MessageHandler>>();
  private writes = 0;
  private closed = false;

  constructor(options: MemoryHotStateOptions = {}) {
    this.clock = options.clock ?? systemClock;
  }

  async now(): Promise<number> {
    return this.clock.now();
  }

  async hitWindows(scope: string, key: string, windows: WindowSpec[], cost = 1): Promise<WindowDecision> {
    this.open();
    checkScope(scope);
    checkKey(key);
    checkWindows(windows, cost);
    const decision = this.windows.hit(this.clock.now(), scope, key, windows, cost);
    // After deciding: a sweep may drop logs that were empty, and these ones are in use.
    this.wrote();
    return decision;
  }

  async increment(scope: string, key: string, by: number, ttlMs: number): Promise<number> {
    this.open();
    checkScope(scope);
    checkKey(key);
    if (!Number.isSafeInteger(by)) throw invalidArgument('increment must be a safe integer');
    checkTtl(ttlMs);
    const now = this.clock.now();
    const k = `c${SEP}${scope}${SEP}${key}`;
    const current = this.live(k, now);
    const next = (current === undefined ? 0 : Number(current.value)) + by;
    this.values.set(k, { value: String(next), expiresAt: current?.expiresAt ?? now + ttlMs });
    this.wrote();
    return next;
  }

  async admit(scope: string, request: AdmitRequest): Promise<AdmitResult> {
    this.open();
    checkScope(scope);
    checkAdmit(request);
    const result = admitStep(this.clock.now(), scope, request, this.windows, this.budgets);
    this.wrote();
    return result;
  }

  async settleReservations(scope: string, settlements: Settlement[]): Promise<SettleManyResult> {
    this.open();
    checkScope(scope);
    checkSettlements(settlements);
    return settleStep(this.clock.now(), scope, settlements, this.budgets);
  }

  async reserve(scope: string, request: ReserveRequest): Promise<ReserveResult> {
    this.open();
    checkScope(scope);
    checkReserve(request);
    const result = this.budgets.reserve(this.clock.now(), scope, request);
    this.wrote();
    return result;
  }

  async commit(scope: string, reservationId: string, actual: number[]): Promise<SettleResult> {
    this.open();
    checkScope(scope);
    checkKey(reservationId, 'reservationId');
    checkAmounts(actual, 'actual');
    return this.budgets.settle(this.clock.now(), scope, reservationId, actual).result;
  }

  async release(scope: string, reservationId: string): Promise<SettleResult> {
    this.open();
    checkScope(scope);
    checkKey(reservationId, 'reservationId');
    return this.budgets.settle(this.clock.now(), scope, reservationId, null).result;
  }

  async budgetUsage(scope: string, key: string): Promise<BudgetUsage> {
    this.open();
    checkScope(scope);
    checkKey(key);
    return this.budgets.usage(this.clock.now(), scope, key);
  }

  async reapReservations(scope: string): Promise<number> {
    this.open();
    checkScope(scope);
    return this.budgets.reap(this.clock.now(), scope);
  }

  async heartbeat(scope: string, member: string, value: string, ttlMs: number): Promise<PresenceMember[]> {
    this.open();
    checkScope(scope);
    checkHeartbeat(member, value, ttlMs);
    const now = this.clock.now();
    let members = this.presence.get(scope);
    if (members === undefined) {
      members = new Map();
      this.presence.set(scope, members);
    }
    for (const [name, entry] of members) if (entry.expiresAt <= now) members.delete(name);
    if (!members.has(member) && members.size >= LIMITS.presenceMembers) throw invalidArgument('presence set is full');
    members.set(member, { value, expiresAt: now + ttlMs });
    return [...members].map(([name, entry]) => ({ member: name, value: entry.value }));
  }

  async get(scope: string, key: string): Promise<string | null> {
    this.open();
    checkScope(scope);
    checkKey(key);
    return this.live(`v${SEP}${scope}${SEP}${key}`, this.clock.now())?.value ?? null;
  }

  async set(scope: string, key: string, value: string, ttlMs?: number): Promise<void> {
    this.open();
    checkScope(scope);
    checkKey(key);
    checkValue(value);
    if (ttlMs !== undefined) checkTtl(ttlMs);
    const expiresAt = ttlMs === undefined ? undefined : this.clock.now() + ttlMs;
    this.values.set(`v${SEP}${scope}${SEP}${key}`, { value, expiresAt });
    this.wrote();
  }

  async setIfAbsent(scope: string, key: string, value: string, ttlMs: number): Promise<boolean> {
    this.open();
    checkScope(scope);
    checkKey(key);
    checkValue(value);
    checkTtl(ttlMs);
    const now = this.clock.now();
    const k = `v${SEP}${scope}${SEP}${key}`;
    if (this.live(k, now) !== undefined) return false;
    this.values.set(k, { value, expiresAt: now + ttlMs });
    this.wrote();
    return true;
  }

  async takeOnce(scope: string, key: string): Promise<string | null> {
    this.open();
    checkScope(scope);
    checkKey(key);
    const k = `v${SEP}${scope}${SEP}${key}`;
    const stored = this.live(k, this.clock.now());
    if (stored === undefined) return null;
    this.values.delete(k);
    return stored.value;
  }

  async delete(scope: string, key: string): Promise<void> {
    this.open();
    checkScope(scope);
    checkKey(key);
    this.values.delete(`v${SEP}${scope}${SEP}${key}`);
  }

  async publish(channel: string, message: string): Promise<void> {
    this.open();
    checkChannel(channel);
    checkValue(message);
    const handlers = this.channels.get(channel);
    if (handlers === undefined) return;
    // Snapshot, then deliver on a later microtask like a real bus: a publisher never runs handler code inline.
    for (const handler of [...handlers]) {
      queueMicrotask(() => {
        try {
          handler(message);
        } catch {
          // One failing subscriber must not stop delivery to the others.
        }
      });
    }
  }

  async subscribe(channel: string, handler: MessageHandler): Promise<() => Promise<void>> {
    this.open();
    checkChannel(channel);
    // Wrap so the same function subscribed twice gets two independent subscriptions.
    const own: MessageHandler = (message) => handler(message);
    let handlers = this.channels.get(channel);
    if (handlers === undefined) {
      handlers = new Set();
      this.channels.set(channel, handlers);
    }
    handlers.add(own);
    return async () => {
      const current = this.channels.get(channel);
      current?.delete(own);
      if (current?.size === 0) this.channels.delete(channel);
    };
  }

  async enqueue(queue: string, item: QueueItem, guard?: EnqueueGuard, outboxEvent?: string): Promise<EnqueueResult> {
    this.open();
    checkScope(queue, 'queue');
    checkQueueItem(item, guard, outboxEvent);
    return this.queues.enqueue(queue, item, guard, outboxEvent);
  }

  async readOutbox(queue: string, max: number): Promise<OutboxEntry[]> {
    this.open();
    checkScope(queue, 'queue');
    checkOutboxBatch(max, 'max');
    return this.queues.readOutbox(queue, max);
  }

  async ackOutbox(queue: string, ids: string[]): Promise<number> {
    this.open();
    checkScope(queue, 'queue');
    if (ids.length === 0) return 0;
    checkOutboxBatch(ids.length, 'ids');
    for (const id of ids) checkKey(id, 'outbox id');
    return this.queues.ackOutbox(queue, ids);
  }

  async claim(queue: string, workerId: string, leaseMs: number): Promise<ClaimedItem | null> {
    this.open();
    checkScope(queue, 'queue');
    checkKey(workerId, 'workerId');
    checkTtl(leaseMs, 'leaseMs');
    return this.queues.claim(this.clock.now(), queue, workerId, leaseMs);
  }

  async renew(queue: string, itemId: string, workerId: string, leaseMs: number): Promise<boolean> {
    this.open();
    checkScope(queue, 'queue');
    checkKey(itemId, 'item id');
    checkKey(workerId, 'workerId');
    checkTtl(leaseMs, 'leaseMs');
    return this.queues.renew(this.clock.now(), queue, itemId, workerId, leaseMs);
  }

  async complete(queue: string, itemId: string, workerId: string, outboxEvent?: string): Promise<boolean> {
    this.open();
    checkScope(queue, 'queue');
    checkKey(itemId, 'item id');
    checkKey(workerId, 'workerId');
    if (outboxEvent !== undefined) checkOutboxEvent(outboxEvent);
    return this.queues.complete(queue, itemId, workerId, outboxEvent);
  }

  async requeueExpired(queue: string, options: { outbox?: boolean } = {}): Promise<number> {
    this.open();
    checkScope(queue, 'queue');
    return this.queues.requeueExpired(this.clock.now(), queue, options.outbox === true);
  }

  async queueItemState(queue: string, itemId: string): Promise<QueueItemState> {
    this.open();
    checkScope(queue, 'queue');
    checkKey(itemId, 'item id');
    return this.queues.itemState(queue, itemId);
  }

  async queueLoad(queue: string): Promise<{ queued: number; inFlight: number }> {
    this.open();
    checkScope(queue, 'queue');
    return this.queues.load(queue);
  }

  async ping(): Promise<void> {
    this.open();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.channels.clear();
  }

  private open(): void {
    if (this.closed) throw invalidArgument('the hot-state store is closed');
  }

  private live(k: string, now: number): Stored | undefined {
    const stored = this.values.get(k);
    if (stored?.expiresAt !== undefined && stored.expiresAt <= now) {
      this.values.delete(k);
      return undefined;
    }
    return stored;
  }

  private wrote(): void {
    this.writes += 1;
    if (this.writes % SWEEP_EVERY !== 0) return;
    const now = this.clock.now();
    for (const [k, stored] of this.values) if (stored.expiresAt !== undefined && stored.expiresAt <= now) this.values.delete(k);
    this.windows.sweep(now);
    this.budgets.sweep(now);
    for (const [scope, members] of this.presence) {
      for (const [name, entry] of members) if (entry.expiresAt <= now) members.delete(name);
      if (members.size === 0) this.presence.delete(scope);
    }
  }
}
