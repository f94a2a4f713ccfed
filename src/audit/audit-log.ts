/**
 * The audit log features write to. Two ways in:
 *
 * - `record()` (the AuditSink method) validates the event, stamps its id and time, and puts it in a
 *   bounded in-memory buffer that a background loop writes in batches, so a request never waits on
 *   the database. When the buffer is full the caller waits for one flush; if the database still
 *   cannot take the events, `record()` rejects with `dependency_unavailable` — an audit event is
 *   never dropped silently.
 * - `append()` writes one event durably before it resolves, for callers that must not proceed
 *   unless the event is on disk.
 *
 * `close()` stops the loop, writes everything still buffered and signs the head; nothing is lost
 * on a clean stop, and nothing written before it can be cut off unnoticed.
 *
 * Between checkpoints the newest records are covered by no signature, so the head is also signed
 * once records have waited `checkpointIntervalMs` without one. Every checkpoint this log signs is
 * published to its logger (`auditCheckpoint`: seq, hash, time, key id, HMAC — nothing secret), so a
 * copy lives outside the database; `portcullis audit verify --anchor` checks the log against it,
 * which catches a tail deleted together with its checkpoints.
 */
import { AppError } from '../core/errors.js';
import { systemClock, type Clock } from '../core/clock.js';
import { newId } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { Db } from '../store/db/schema.js';
import { appendEvents, checkpointHead, type AppendResult, type PreparedEvent } from './chain-writer.js';
import { normalizeEvent } from './details-policy.js';
import { assertSigningKey, type AuditCheckpoint, type AuditRecord, type AuditSigningKey } from './record.js';
import type { AuditEventInput, AuditSink } from './sink.js';

export interface AuditLogOptions {
  db: Db;
  signingKey: AuditSigningKey;
  clock?: Clock;
  logger?: Logger;
  /** A signed checkpoint on every record whose seq is a multiple of this (default 100). */
  checkpointEvery?: number;
  /** Longest a written record waits for a signed checkpoint (default 60 000 ms). */
  checkpointIntervalMs?: number;
  /** Most events held in memory before record() pushes back (default 10 000). */
  bufferLimit?: number;
  /** Most events written per transaction (default 200). */
  batchSize?: number;
  /** How long a lone buffered event may wait for company before it is written (default 250 ms). */
  flushIntervalMs?: number;
  /** Wait before retrying after a failed write (default 1000 ms). */
  retryDelayMs?: number;
  /**
   * Sign the head when closing (default true): records written after the last signed checkpoint
   * could be cut off undetectably, so a clean shutdown seals the tail.
   */
  checkpointOnClose?: boolean;
}

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  const chosen = value ?? fallback;
  if (!Number.isSafeInteger(chosen) || chosen < 1) throw new Error(`audit log option ${name} must be a positive integer`);
  return chosen;
}

export class AuditLog implements AuditSink {
  readonly #db: Db;
  readonly #signingKey: AuditSigningKey;
  readonly #clock: Clock;
  readonly #logger: Logger | undefined;
  readonly #checkpointEvery: number;
  readonly #bufferLimit: number;
  readonly #batchSize: number;
  readonly #flushIntervalMs: number;
  readonly #retryDelayMs: number;
  readonly #checkpointOnClose: boolean;
  readonly #checkpointIntervalMs: number;

  /** Pending seal of records written since the last checkpoint this log saw. */
  #sealTimer: NodeJS.Timeout | undefined;
  #lastPublishedSeq: string | undefined;
  #buffer: PreparedEvent[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** The one write in progress; flushes chain onto it so batches keep their order. */
  #writing: Promise<void> = Promise.resolve();
  #closed = false;
  #lastError: unknown = undefined;

  constructor(options: AuditLogOptions) {
    assertSigningKey(options.signingKey);
    this.#db = options.db;
    this.#signingKey = options.signingKey;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger;
    this.#checkpointEvery = positiveInteger(options.checkpointEvery, 100, 'checkpointEvery');
    this.#bufferLimit = positiveInteger(options.bufferLimit, 10_000, 'bufferLimit');
    this.#batchSize = positiveInteger(options.batchSize, 200, 'batchSize');
    this.#flushIntervalMs = positiveInteger(options.flushIntervalMs, 250, 'flushIntervalMs');
    this.#retryDelayMs = positiveInteger(options.retryDelayMs, 1000, 'retryDelayMs');
    this.#checkpointOnClose = options.checkpointOnClose ?? true;
    this.#checkpointIntervalMs = positiveInteger(options.checkpointIntervalMs, 60_000, 'checkpointIntervalMs');
  }

  /** Events accepted by record() and not yet written. */
  get pending(): number {
    return this.#buffer.length;
  }

  #prepare(event: AuditEventInput): PreparedEvent {
    return { ...normalizeEvent(event), id: newId('aud'), at: new Date(this.#clock.now()) };
  }

  #appendOptions() {
    return { signingKey: this.#signingKey, checkpointEvery: this.#checkpointEvery, now: () => new Date(this.#clock.now()) };
  }

  #assertOpen(): void {
    if (this.#closed) throw new AppError('shutting_down', { message: 'The audit log is closed.' });
  }

  async record(event: AuditEventInput): Promise<void> {
    this.#assertOpen();
    const prepared = this.#prepare(event);
    if (this.#buffer.length >= this.#bufferLimit) {
      await this.flush().catch(() => undefined);
      if (this.#buffer.length >= this.#bufferLimit) {
        throw new AppError('dependency_unavailable', { message: 'The audit log cannot be written right now.', cause: this.#lastError });
      }
    }
    this.#buffer.push(prepared);
    if (this.#buffer.length >= this.#batchSize) this.#schedule(0);
    else this.#schedule(this.#flushIntervalMs);
  }

  /** Writes the event before resolving; the returned record carries its seq and hash. */
  async append(event: AuditEventInput): Promise<AuditRecord> {
    this.#assertOpen();
    const prepared = this.#prepare(event);
    // Queue behind buffered events so the chain keeps the order in which events were accepted.
    const result = this.#enqueueWrite(async () => {
      await this.#drain();
      return this.#written(await appendEvents(this.#db, [prepared], this.#appendOptions()));
    });
    const { records } = await result;
    const record = records[0];
    if (record === undefined) throw new AppError('internal', { message: 'The audit event was not written.' });
    return record;
  }

  /** Writes everything buffered now; rejects if the database refuses (events stay buffered). */
  async flush(): Promise<void> {
    this.#clearTimer();
    await this.#enqueueWrite(() => this.#drain());
  }

  /** Signs the current head now (e.g. before an export or at shutdown). */
  async checkpoint(): Promise<AuditCheckpoint | null> {
    return this.#enqueueWrite(async () => {
      await this.#drain();
      this.#clearSeal();
      const head = await checkpointHead(this.#db, this.#signingKey, () => new Date(this.#clock.now()));
      if (head !== null) this.#publish(head);
      return head;
    });
  }

  /** Stops accepting events, writes all buffered ones and seals the tail. Rejects if they could not be written. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#clearSeal();
    await this.flush();
    if (this.#checkpointOnClose) await this.checkpoint();
  }

  /** Publishes what a write signed, and arranges for an unsigned tail to be sealed in time. */
  #written(result: AppendResult): AppendResult {
    for (const checkpoint of result.checkpoints) this.#publish(checkpoint);
    const last = result.records.at(-1);
    if (last === undefined) return result;
    if (result.checkpoints.at(-1)?.seq === last.seq) this.#clearSeal();
    else this.#scheduleSeal();
    return result;
  }

  #publish(checkpoint: AuditCheckpoint): void {
    // checkpoint() on a head that is already signed returns that checkpoint again.
    if (checkpoint.seq === this.#lastPublishedSeq) return;
    this.#lastPublishedSeq = checkpoint.seq;
    const { seq, hash, at, keyId, signature } = checkpoint;
    this.#logger?.info({ auditCheckpoint: { seq, hash, at: at.toISOString(), keyId, signature } }, 'audit checkpoint signed');
  }

  #scheduleSeal(): void {
    if (this.#sealTimer !== undefined || this.#closed) return;
    this.#sealTimer = setTimeout(() => {
      this.#sealTimer = undefined;
      this.checkpoint().catch((err: unknown) => {
        this.#logger?.warn({ err }, 'audit checkpoint failed; will retry');
        this.#scheduleSeal();
      });
    }, this.#checkpointIntervalMs);
    // Like the flush timer: close() seals the tail of a process that stops cleanly.
    this.#sealTimer.unref();
  }

  #clearSeal(): void {
    if (this.#sealTimer !== undefined) clearTimeout(this.#sealTimer);
    this.#sealTimer = undefined;
  }

  #enqueueWrite<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#writing.then(work);
    this.#writing = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Writes buffered events batch by batch; on failure the unwritten ones stay at the front. */
  async #drain(): Promise<void> {
    while (this.#buffer.length > 0) {
      const batch = this.#buffer.slice(0, this.#batchSize);
      try {
        this.#written(await appendEvents(this.#db, batch, this.#appendOptions()));
        this.#lastError = undefined;
      } catch (err) {
        this.#lastError = err;
        // Whoever asked for this write gets the error; the buffered events still get retried.
        if (!this.#closed) this.#schedule(this.#retryDelayMs);
        throw new AppError('dependency_unavailable', { message: 'The audit log cannot be written right now.', cause: err });
      }
      // record() may have pushed more meanwhile; only the written prefix is removed.
      this.#buffer.splice(0, batch.length);
    }
  }

  #schedule(requestedMs: number): void {
    // While the database is failing, nothing brings the next attempt forward: no retry storm.
    const delayMs = this.#lastError === undefined ? requestedMs : Math.max(requestedMs, this.#retryDelayMs);
    if (this.#timer !== undefined) {
      if (delayMs > 0) return;
      this.#clearTimer();
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.flush().catch((err: unknown) => {
        this.#logger?.warn({ err, pending: this.#buffer.length }, 'audit flush failed; will retry');
      });
    }, delayMs);
    // A pending flush must not keep a finished process alive; close() is how to force the write.
    this.#timer.unref();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
