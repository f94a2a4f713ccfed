/**
 * What the hot path knows about users, memberships and revoked keys, without a database read per
 * request. Per user: pepper, type, disabled, platform admin; per (org, user): the current role.
 * Loaded on first use, held for `ttlMs`, dropped on every replica the moment an identity message
 * arrives on pub/sub. Revoked key ids are a deny-list loaded at start, extended by pub/sub, and
 * re-synced from the record store periodically and whenever the subscription comes back after a
 * gap — so a lost message cannot keep a revoked key alive for longer than one resync interval.
 *
 * Failure modes, chosen on purpose:
 * - record store down: an entry past its TTL but within `maxStaleMs` is served (key verification
 *   keeps working on a cached pepper); nothing cached → AppError('dependency_unavailable').
 *   An invalidated entry is deleted, never served stale.
 * - deny-list not loaded yet (before start()): `ready` is false and authenticate fails closed.
 * - subscription deaf (own heartbeat not heard for 3 intervals): every lookup goes to the record
 *   store until a message is heard again, then everything is re-synced.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import { AppError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { OrgRole } from '../../store/db/index.js';
import type { HotState } from '../../store/state/port.js';
import { IDENTITY_CHANNEL, decodeIdentityMessage, encodeIdentityMessage, type IdentityMessage } from './messages.js';
import type { CachedUser, IdentityRecords } from './records.js';
import { TtlMap } from './ttl-map.js';

export type IdentityPubSub = Pick<HotState, 'publish' | 'subscribe'>;

export interface IdentityCacheOptions {
  records: IdentityRecords;
  pubsub: IdentityPubSub;
  clock: Clock;
  /** How long a loaded entry is served without asking the record store again. Default 60 s. */
  ttlMs?: number;
  /** How long past its TTL an entry may still be served while the record store is down. Default 10 min. */
  maxStaleMs?: number;
  maxEntries?: number;
  /** Deny-list re-sync from the record store. Default 15 s. */
  resyncIntervalMs?: number;
  /** Own heartbeat on the channel, to detect a deaf subscription. Default 5 s; 0 disables. */
  heartbeatMs?: number;
  logger?: Logger;
}

type Loaded<V> = { value: V };

export class IdentityCache {
  private readonly records: IdentityRecords;
  private readonly pubsub: IdentityPubSub;
  private readonly clock: Clock;
  private readonly ttlMs: number;
  private readonly maxStaleMs: number;
  private readonly resyncIntervalMs: number;
  private readonly heartbeatMs: number;
  private readonly logger: Logger | undefined;
  private readonly instanceId = randomBytes(9).toString('base64url');

  private readonly users: TtlMap<CachedUser | null>;
  private readonly roles: TtlMap<OrgRole | null>;
  private readonly inflight = new Map<string, Promise<Loaded<unknown>>>();
  private readonly denied = new Map<string, number>();
  /** Bumped on every invalidation so a load that started before it does not store a stale value. */
  private generation = 0;
  private lastHeardOwnPing: number;
  private deaf = false;
  private started = false;
  private unsubscribe: (() => Promise<void>) | undefined;
  private timers: NodeJS.Timeout[] = [];

  constructor(opts: IdentityCacheOptions) {
    this.records = opts.records;
    this.pubsub = opts.pubsub;
    this.clock = opts.clock;
    this.ttlMs = opts.ttlMs ?? 60_000;
    this.maxStaleMs = opts.maxStaleMs ?? 10 * 60_000;
    this.resyncIntervalMs = opts.resyncIntervalMs ?? 15_000;
    this.heartbeatMs = opts.heartbeatMs ?? 5_000;
    this.logger = opts.logger;
    this.users = new TtlMap(opts.maxEntries ?? 100_000);
    this.roles = new TtlMap(opts.maxEntries ?? 100_000);
    this.lastHeardOwnPing = this.clock.now();
  }

  /** True once the deny-list is loaded and the subscription is active. */
  get ready(): boolean {
    return this.started;
  }

  /** Subscribes, loads the deny-list, starts resync and heartbeat. Throws when either store is down. */
  async start(): Promise<void> {
    if (this.started) return;
    this.unsubscribe = await this.pubsub.subscribe(IDENTITY_CHANNEL, (raw) => this.onMessage(raw));
    await this.loadDenyList();
    this.lastHeardOwnPing = this.clock.now();
    this.timers.push(setInterval(() => void this.resyncQuietly(false), this.resyncIntervalMs).unref());
    if (this.heartbeatMs > 0) this.timers.push(setInterval(() => void this.heartbeat(), this.heartbeatMs).unref());
    this.started = true;
  }

  async stop(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    this.started = false;
    const unsubscribe = this.unsubscribe;
    this.unsubscribe = undefined;
    if (unsubscribe !== undefined) await unsubscribe();
  }

  isRevoked(keyId: string): boolean {
    return this.denied.has(keyId);
  }

  getUser(userId: string): Promise<CachedUser | null> {
    return this.lookup(this.users, `u:${userId}`, () => this.records.loadUser(userId));
  }

  getRole(orgId: string, userId: string): Promise<OrgRole | null> {
    return this.lookup(this.roles, `m:${orgId}:${userId}`, () => this.records.loadRole(orgId, userId));
  }

  /**
   * The same answers as getUser/getRole when they are fresh in the cache, without a promise (the
   * request hot path asks for both on every call); undefined means "ask getUser/getRole".
   */
  peekUser(userId: string): CachedUser | null | undefined {
    return this.peek(this.users, `u:${userId}`);
  }

  peekRole(orgId: string, userId: string): OrgRole | null | undefined {
    return this.peek(this.roles, `m:${orgId}:${userId}`);
  }

  private peek<V>(map: TtlMap<V>, key: string): V | undefined {
    if (this.deaf) return undefined;
    const entry = map.get(key);
    return entry !== undefined && this.clock.now() < entry.freshUntil ? entry.value : undefined;
  }

  /** Applies an identity change to this replica at once (events call it before publishing). */
  apply(message: IdentityMessage): void {
    switch (message.t) {
      case 'user':
        this.forget(this.users, `u:${message.u}`);
        return;
      case 'member':
        this.forget(this.roles, `m:${message.o}:${message.u}`);
        return;
      case 'revoke':
        this.denied.set(message.k, message.e);
        return;
      case 'ping':
        if (message.i === this.instanceId) this.lastHeardOwnPing = this.clock.now();
        return;
    }
  }

  /** Drops every cached user and role and reloads the deny-list (after a deaf spell, or on demand). */
  async resync(): Promise<void> {
    this.generation++;
    this.users.clear();
    this.roles.clear();
    this.inflight.clear();
    await this.loadDenyList();
  }

  private onMessage(raw: string): void {
    const message = decodeIdentityMessage(raw);
    if (message === null) {
      this.logger?.warn({ channel: IDENTITY_CHANNEL }, 'dropped a malformed identity message');
      return;
    }
    if (this.deaf) {
      // We hear again after a gap: anything may have been missed while deaf.
      this.deaf = false;
      this.lastHeardOwnPing = this.clock.now();
      this.logger?.info('identity subscription heard again; re-syncing');
      void this.resyncQuietly(true);
    }
    this.apply(message);
  }

  private forget<V>(map: TtlMap<V>, key: string): void {
    this.generation++;
    map.delete(key);
    this.inflight.delete(key);
  }

  private async lookup<V>(map: TtlMap<V>, key: string, load: () => Promise<V>): Promise<V> {
    const now = this.clock.now();
    const entry = map.get(key);
    if (entry !== undefined && now < entry.freshUntil && !this.deaf) return entry.value;
    const pending = this.inflight.get(key) as Promise<Loaded<V>> | undefined;
    if (pending !== undefined) return (await pending).value;

    const generation = this.generation;
    const loading = (async (): Promise<Loaded<V>> => {
      try {
        const value = await load();
        if (generation === this.generation) {
          const at = this.clock.now();
          map.set(key, { value, freshUntil: at + this.ttlMs, staleUntil: at + this.ttlMs + this.maxStaleMs });
        }
        return { value };
      } catch (err) {
        const stale = map.get(key);
        if (stale !== undefined && this.clock.now() < stale.staleUntil) {
          this.logger?.warn('record store unreachable; serving a cached identity entry past its TTL');
          return { value: stale.value };
        }
        // The record-store breaker's fail-fast error says when to try again; keep that for the caller.
        const retryAfterSeconds = err instanceof AppError ? err.retryAfterSeconds : undefined;
        throw new AppError('dependency_unavailable', { message: 'Identity records are unavailable.', cause: err, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) });
      }
    })();
    this.inflight.set(key, loading);
    try {
      return (await loading).value;
    } finally {
      if (this.inflight.get(key) === loading) this.inflight.delete(key);
    }
  }

  private async loadDenyList(): Promise<void> {
    const now = this.clock.now();
    const revoked = await this.records.loadRevokedKeys(new Date(now));
    // Union, never replace: a revocation heard while the query ran must not be lost.
    for (const { keyId, expiresAt } of revoked) this.denied.set(keyId, expiresAt);
    for (const [keyId, expiresAt] of this.denied) if (expiresAt <= now) this.denied.delete(keyId);
  }

  private async resyncQuietly(full: boolean): Promise<void> {
    try {
      await (full ? this.resync() : this.loadDenyList());
    } catch (err) {
      this.logger?.warn({ err: err instanceof Error ? err.name : 'unknown' }, 'identity deny-list re-sync failed; keeping the current list');
    }
  }

  private async heartbeat(): Promise<void> {
    if (!this.deaf && this.clock.now() - this.lastHeardOwnPing > 3 * this.heartbeatMs) {
      this.deaf = true;
      this.logger?.warn('identity subscription missed its own heartbeats; bypassing the cache until it recovers');
    }
    try {
      await this.pubsub.publish(IDENTITY_CHANNEL, encodeIdentityMessage({ t: 'ping', i: this.instanceId }));
    } catch {
      // A failed publish is what the deaf check above is for.
    }
  }
}
