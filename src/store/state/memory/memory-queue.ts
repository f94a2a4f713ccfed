/** In-process work queues with leases: the reference for the Redis queue scripts. */
import { REQUEUE_OUTBOX_TYPE, type ClaimedItem, type EnqueueGuard, type EnqueueResult, type OutboxEntry, type QueueItem, type QueueItemState, type RequeueOutboxEvent } from '../port.js';
import { LIMITS } from '../validation.js';

interface Entry {
  payload: string;
  attempts: number;
  holder?: string;
  leaseExpiresAt?: number;
}

interface Queue {
  /** Ids waiting to be claimed, head first. */
  ready: string[];
  /** Every queued or in-flight item by id. */
  items: Map<string, Entry>;
  inFlight: number;
  outbox: OutboxEntry[];
  outboxSeq: number;
}

export class MemoryQueues {
  private readonly queues = new Map<string, Queue>();

  enqueue(name: string, item: QueueItem, guard: EnqueueGuard | undefined, outboxEvent: string | undefined): EnqueueResult {
    const q = this.queue(name);
    if (q.items.has(item.id)) return { ok: false, reason: 'duplicate' };
    const load = q.ready.length + q.inFlight;
    if (guard !== undefined && load + 1 > guard.maxLoad) return { ok: false, reason: 'full', load };
    q.items.set(item.id, { payload: item.payload, attempts: 0 });
    q.ready.push(item.id);
    if (outboxEvent !== undefined) this.appendOutbox(q, outboxEvent);
    return { ok: true, depth: q.ready.length };
  }

  claim(now: number, name: string, workerId: string, leaseMs: number): ClaimedItem | null {
    const q = this.queue(name);
    const id = q.ready.shift();
    if (id === undefined) return null;
    const entry = q.items.get(id);
    if (entry === undefined) return null;
    entry.attempts += 1;
    entry.holder = workerId;
    entry.leaseExpiresAt = now + leaseMs;
    q.inFlight += 1;
    return { id, payload: entry.payload, workerId, leaseExpiresAt: entry.leaseExpiresAt, attempts: entry.attempts };
  }

  renew(now: number, name: string, itemId: string, workerId: string, leaseMs: number): boolean {
    const entry = this.queue(name).items.get(itemId);
    if (entry?.holder !== workerId || entry.leaseExpiresAt === undefined || entry.leaseExpiresAt <= now) return false;
    entry.leaseExpiresAt = now + leaseMs;
    return true;
  }

  complete(name: string, itemId: string, workerId: string, outboxEvent: string | undefined): boolean {
    const q = this.queue(name);
    const entry = q.items.get(itemId);
    if (entry?.holder !== workerId) return false;
    q.items.delete(itemId);
    q.inFlight -= 1;
    if (outboxEvent !== undefined) this.appendOutbox(q, outboxEvent);
    return true;
  }

  requeueExpired(now: number, name: string, outbox: boolean): number {
    const q = this.queue(name);
    const lapsed: [string, number][] = [];
    for (const [id, entry] of q.items) {
      if (entry.leaseExpiresAt !== undefined && entry.leaseExpiresAt <= now) lapsed.push([id, entry.leaseExpiresAt]);
    }
    // Earliest lapse first, same order and batch bound as the Redis script.
    lapsed.sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const batch = lapsed.slice(0, LIMITS.requeueBatch);
    for (const [id] of batch) {
      const entry = q.items.get(id);
      if (entry === undefined) continue;
      if (outbox && entry.holder !== undefined) {
        const event: RequeueOutboxEvent = { type: REQUEUE_OUTBOX_TYPE, itemId: id, workerId: entry.holder, attempts: entry.attempts, at: now };
        this.appendOutbox(q, JSON.stringify(event));
      }
      delete entry.holder;
      delete entry.leaseExpiresAt;
      q.inFlight -= 1;
    }
    q.ready.unshift(...batch.map(([id]) => id));
    return batch.length;
  }

  itemState(name: string, itemId: string): QueueItemState {
    const entry = this.queues.get(name)?.items.get(itemId);
    if (entry === undefined) return { state: 'absent' };
    return entry.holder === undefined ? { state: 'queued' } : { state: 'held', workerId: entry.holder };
  }

  readOutbox(name: string, max: number): OutboxEntry[] {
    return (this.queues.get(name)?.outbox ?? []).slice(0, max).map((e) => ({ ...e }));
  }

  ackOutbox(name: string, ids: string[]): number {
    const q = this.queues.get(name);
    if (q === undefined) return 0;
    const drop = new Set(ids);
    const before = q.outbox.length;
    q.outbox = q.outbox.filter((e) => !drop.has(e.id));
    return before - q.outbox.length;
  }

  load(name: string): { queued: number; inFlight: number } {
    const q = this.queues.get(name);
    return { queued: q?.ready.length ?? 0, inFlight: q?.inFlight ?? 0 };
  }

  private appendOutbox(q: Queue, event: string): void {
    q.outboxSeq += 1;
    q.outbox.push({ id: String(q.outboxSeq).padStart(16, '0'), event });
  }

  private queue(name: string): Queue {
    let q = this.queues.get(name);
    if (q === undefined) {
      q = { ready: [], items: new Map(), inFlight: 0, outbox: [], outboxSeq: 0 };
      this.queues.set(name, q);
    }
    return q;
  }
}
