/**
 * The outbox relay: copies the task lifecycle events written into the queue's outbox (enqueue,
 * finish, requeue; see events.ts) into the audit log, and acknowledges an entry only after its
 * audit record is durably written.
 *
 * Delivery is at-least-once from the outbox and deduplicated at the audit log by event id: before
 * writing, the relay asks the record store which of the batch's event ids are already recorded
 * (a relay that crashed between the write and the ack re-reads those entries). One replica relays
 * at a time (a lease taken with setIfAbsent), so two relays do not race the check-then-write; the
 * lease is longer than a batch takes, and even if it lapsed mid-batch the worst case is a
 * duplicate audit record carrying the same eventId, never a lost one.
 *
 * Every event is written in one atomic step with the state change it describes, so every event
 * read here describes something that happened. A requeue entry is the store's own note; the relay
 * names its org and task type from the task record (null org if that record is gone).
 */
import { sql } from 'kysely';
import type { AuditEventInput } from '../audit/index.js';
import { newId } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { Db } from '../store/db/schema.js';
import type { HotState } from '../store/state/index.js';
import { TASK_RELAYED_AUDIT_ACTIONS, auditEventOf, parseOutboxItem, requeueEventOf, type TaskEvent } from './events.js';
import { TASK_QUEUE, type TaskRecord } from './records.js';

const LOCK_KEY = 'relay:lock';
/** Audit time comes from the relay's clock, the event's from the store: allow for skew and lag. */
const DEDUPE_LOOKBACK_MS = 15 * 60 * 1000;

/** Where relayed events go; the audit-backed one is `auditRelaySink`. */
export interface RelaySink {
  /** Which of these events are already recorded (by event id). */
  recorded(events: TaskEvent[]): Promise<Set<string>>;
  /** Writes durably before resolving. */
  append(event: AuditEventInput): Promise<void>;
}

/** The record-store sink: writes through `AuditLog.append`, looks up `details.eventId`. */
export function auditRelaySink(db: Db, audit: { append(event: AuditEventInput): Promise<unknown> }): RelaySink {
  return {
    async recorded(events) {
      if (events.length === 0) return new Set();
      const earliest = Math.min(...events.map((event) => event.at));
      const rows = await db
        .selectFrom('audit_log')
        .select(sql<string>`details->>'eventId'`.as('eventId'))
        .where('action', 'in', [...TASK_RELAYED_AUDIT_ACTIONS])
        .where('at', '>=', new Date(earliest - DEDUPE_LOOKBACK_MS))
        .where(
          'target',
          'in',
          events.map((event) => event.taskId),
        )
        .execute();
      return new Set(rows.map((row) => row.eventId));
    },
    async append(event) {
      await audit.append(event);
    },
  };
}

export interface OutboxRelayOptions {
  state: HotState;
  sink: RelaySink;
  /** Where a requeue's org and task type are looked up (the task records). */
  records: { get(taskId: string): Promise<TaskRecord | null> };
  logger?: Logger;
  batchSize?: number;
  intervalMs?: number;
  /** Lease of the one relaying replica. */
  lockTtlMs?: number;
}

export interface RelayRun {
  relayed: number;
  /** Entries whose event was already in the audit log (acknowledged without writing). */
  duplicates: number;
  /** Entries that were not task events at all (logged and acknowledged). */
  invalid: number;
  /** False when another replica held the relay lease. */
  ran: boolean;
}

export class OutboxRelay {
  readonly #state: HotState;
  readonly #sink: RelaySink;
  readonly #records: OutboxRelayOptions['records'];
  readonly #logger: Logger | undefined;
  readonly #batchSize: number;
  readonly #intervalMs: number;
  readonly #lockTtlMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> = Promise.resolve();
  #stopped = true;

  constructor(options: OutboxRelayOptions) {
    this.#state = options.state;
    this.#sink = options.sink;
    this.#records = options.records;
    this.#logger = options.logger;
    this.#batchSize = options.batchSize ?? 100;
    this.#intervalMs = options.intervalMs ?? 500;
    this.#lockTtlMs = options.lockTtlMs ?? 30_000;
  }

  /** Relays until the outbox is empty (or a write fails, which rejects; unacked entries stay). */
  async runOnce(): Promise<RelayRun> {
    const run: RelayRun = { relayed: 0, duplicates: 0, invalid: 0, ran: false };
    const token = newId('evt');
    if (!(await this.#state.setIfAbsent(TASK_QUEUE, LOCK_KEY, token, this.#lockTtlMs))) return run;
    run.ran = true;
    try {
      for (;;) {
        const entries = await this.#state.readOutbox(TASK_QUEUE, this.#batchSize);
        if (entries.length === 0) break;
        const events: { entryId: string; event: TaskEvent }[] = [];
        const invalidIds: string[] = [];
        for (const entry of entries) {
          const event = await this.#eventOf(entry.event);
          if (event === null) invalidIds.push(entry.id);
          else events.push({ entryId: entry.id, event });
        }
        if (invalidIds.length > 0) {
          this.#logger?.error({ count: invalidIds.length }, 'task outbox held entries that are not task events; dropping them');
          await this.#state.ackOutbox(TASK_QUEUE, invalidIds);
          run.invalid += invalidIds.length;
        }
        const already = await this.#sink.recorded(events.map((item) => item.event));
        for (const { entryId, event } of events) {
          if (already.has(event.eventId)) run.duplicates += 1;
          else {
            await this.#sink.append(auditEventOf(event));
            run.relayed += 1;
          }
          // Acked one by one right after its write, so a failure later in the batch loses nothing
          // and re-sends as little as possible.
          await this.#state.ackOutbox(TASK_QUEUE, [entryId]);
        }
        if (entries.length < this.#batchSize) break;
      }
    } finally {
      if ((await this.#state.get(TASK_QUEUE, LOCK_KEY).catch(() => null)) === token) {
        await this.#state.delete(TASK_QUEUE, LOCK_KEY).catch(() => undefined);
      }
    }
    return run;
  }

  /** The event an outbox entry stands for; null when it is not one of ours. */
  async #eventOf(raw: string): Promise<TaskEvent | null> {
    const item = parseOutboxItem(raw);
    if (item === null) return null;
    if (item.kind === 'event') return item.event;
    // A failed lookup rejects the run; the entry stays and is retried.
    const record = await this.#records.get(item.requeue.itemId);
    return requeueEventOf(item.requeue, record);
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#schedule();
  }

  /** Stops the loop and waits for a run in progress; then one last pass delivers what is left. */
  async stop(options: { drain?: boolean } = {}): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
    if (options.drain === true) await this.runOnce().catch((err: unknown) => this.#logger?.warn({ err }, 'final outbox relay pass failed'));
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#running = this.runOnce()
        .catch((err: unknown) => this.#logger?.warn({ err }, 'task outbox relay failed; will retry'))
        .finally(() => this.#schedule());
    }, this.#intervalMs);
    this.#timer.unref();
  }
}
