/**
 * A per-replica cache of what the request path reads from the record store (an org's custom
 * models, an org's provider key), kept coherent across replicas by hot-state pub/sub: whoever
 * changes a record calls `invalidate(key)`, which drops the entry here and publishes the key —
 * only the key, never the value — so every other replica drops it too, within the pub/sub latency.
 * Pub/sub is at most once, so the TTL bounds what a missed message can cost.
 *
 * Failure mode (as the identity cache): while the record store cannot be read, an entry past its
 * TTL is still served for `staleMs`, but never one that was invalidated; with nothing usable the
 * read fails with 503 `dependency_unavailable`, never a 500.
 *
 * A load that was in flight when its key was invalidated is not stored, so an answer read before
 * a change can never outlive the change's message.
 */
import type { Clock } from '../core/clock.js';
import { AppError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { withTimeout } from '../core/timeout.js';
import type { HotState } from '../store/state/index.js';

export interface InvalidatedCacheOptions<V> {
  /** Pub/sub channel of this cache; one per kind of record. */
  channel: string;
  pubsub: Pick<HotState, 'publish' | 'subscribe'>;
  clock: Clock;
  load(key: string): Promise<V>;
  /** Default `RECORD_CACHE_TTL_MS`. */
  ttlMs?: number;
  /** A read slower than this counts as failed (a hung connection is an outage too). Default 5 s. */
  loadTimeoutMs?: number;
  /** How long past its TTL an entry may still be served while `load` fails. Default 10 min, as identity does. */
  staleMs?: number;
  maxEntries: number;
  /** What is cached, for log lines and the 503 message, e.g. "custom endpoints". */
  what: string;
  logger?: Logger;
}

interface Entry<V> {
  value: V;
  freshUntil: number;
  usableUntil: number;
}

/** How long a replica trusts what it read without hearing of a change: the bound on a lost message. */
export const RECORD_CACHE_TTL_MS = 30_000;
const STALE_MS = 10 * 60_000;
/** Longest key accepted from a message; keys are ids, so anything longer is not ours. */
const MAX_KEY_LENGTH = 512;

export class InvalidatedCache<V> {
  readonly #entries = new Map<string, Entry<V>>();
  /** Loads in flight; invalidating a key removes its load, whose result then reaches its waiters but is not stored. */
  readonly #loads = new Map<string, Promise<V>>();
  #unsubscribe: (() => Promise<void>) | undefined;

  constructor(private readonly options: InvalidatedCacheOptions<V>) {}

  /** Subscribes to invalidations; resolves once a message published from now on will be heard. */
  async start(): Promise<void> {
    this.#unsubscribe ??= await this.options.pubsub.subscribe(this.options.channel, (key) => {
      if (key.length > 0 && key.length <= MAX_KEY_LENGTH) this.#drop(key);
    });
  }

  async stop(): Promise<void> {
    const unsubscribe = this.#unsubscribe;
    this.#unsubscribe = undefined;
    await unsubscribe?.();
  }

  /** A fresh entry, without a promise; undefined when `get` has to load it. */
  peek(key: string): V | undefined {
    const entry = this.#entries.get(key);
    return entry !== undefined && entry.freshUntil > this.options.clock.now() ? entry.value : undefined;
  }

  /** A fresh entry answers without an extra async step: this is on every model call's path. */
  get(key: string): Promise<V> {
    const entry = this.#entries.get(key);
    if (entry !== undefined && entry.freshUntil > this.options.clock.now()) return Promise.resolve(entry.value);
    return this.#reload(key);
  }

  async #reload(key: string): Promise<V> {
    try {
      return await this.#load(key);
    } catch (error) {
      const stale = this.#entries.get(key);
      if (stale !== undefined && stale.usableUntil > this.options.clock.now()) {
        this.options.logger?.warn({ err: error, what: this.options.what }, 'record store unreadable; serving a cached entry past its TTL');
        return stale.value;
      }
      this.options.logger?.error({ err: error, what: this.options.what }, 'record store unreadable and nothing cached');
      throw new AppError('dependency_unavailable', { message: `The ${this.options.what} cannot be read right now; nothing was sent upstream.`, retryAfterSeconds: 1 });
    }
  }

  /**
   * After a change to the record behind `key`: drops it here at once and tells every replica.
   * A failed publish is logged, not thrown: the change is durable and the TTL still bounds it.
   */
  async invalidate(key: string): Promise<void> {
    this.#drop(key);
    try {
      await this.options.pubsub.publish(this.options.channel, key);
    } catch (error) {
      this.options.logger?.warn({ err: error, what: this.options.what }, 'cache invalidation not published; other replicas see the change within the cache TTL');
    }
  }

  #drop(key: string): void {
    this.#entries.delete(key);
    this.#loads.delete(key);
  }

  /** One load per key at a time: concurrent misses share it instead of each reading the store. */
  #load(key: string): Promise<V> {
    const running = this.#loads.get(key);
    if (running !== undefined) return running;
    const current = (): boolean => this.#loads.get(key) === promise;
    const read = withTimeout(this.options.load(key), this.options.loadTimeoutMs ?? 5000, () => new Error(`reading the ${this.options.what} timed out`));
    const promise: Promise<V> = read.then(
      (value) => {
        if (current()) {
          this.#loads.delete(key);
          this.#store(key, value);
        }
        return value;
      },
      (error: unknown) => {
        if (current()) this.#loads.delete(key);
        throw error;
      },
    );
    this.#loads.set(key, promise);
    return promise;
  }

  #store(key: string, value: V): void {
    const now = this.options.clock.now();
    this.#entries.delete(key);
    // Oldest first out: Map keeps insertion order and a refreshed entry is re-inserted at the end.
    while (this.#entries.size >= this.options.maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value);
    }
    const freshUntil = now + (this.options.ttlMs ?? RECORD_CACHE_TTL_MS);
    this.#entries.set(key, { value, freshUntil, usableUntil: freshUntil + (this.options.staleMs ?? STALE_MS) });
  }
}
