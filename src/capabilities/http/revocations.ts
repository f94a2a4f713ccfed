/**
 * Revocation of capabilities by capability id, session or container, shared by every replica.
 *
 * The record store is the durable list; each replica keeps the live entries in a local set so a
 * redemption never waits on a database. A revocation is written to the record store first and then
 * published over hot-state pub/sub, so every replica that hears the message can also find the row.
 *
 * Pub/sub is at most once, so a replica must know whether it is still hearing: it publishes its
 * own heartbeat every `heartbeatMs` and counts itself "fresh" only while the last heartbeat it heard
 * back was sent less than `deafAfterMs` ago. Redis delivers one connection's messages in order, so
 * hearing a heartbeat sent at t means every revocation published before t has been heard. When the
 * replica is not fresh — not yet loaded, hot state down, subscription deaf — `isRevoked` answers
 * 'unavailable' and redemption fails closed (503). After deafness the list is reloaded from the
 * record store before the replica counts as fresh again, because messages may have been missed.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { Db } from '../../store/db/schema.js';
import type { HotState } from '../../store/state/port.js';
import type { CapabilityClaims } from '../claims.js';

export const REVOCATION_CHANNEL = 'capabilities:revocations';
export const REVOCATION_KINDS = ['capability', 'session', 'container'] as const;
export type RevocationKind = (typeof REVOCATION_KINDS)[number];

export interface RevocationTarget {
  kind: RevocationKind;
  orgId: string;
  /** A capability id, a session id or a container id, as named in the claims. */
  id: string;
}

export interface CapabilityRevocationsOptions {
  db: Db;
  state: HotState;
  clock: Clock;
  logger?: Logger;
  /** How long a revocation entry must be kept: the longest capability lifetime plus skew. */
  retainMs: number;
  heartbeatMs?: number;
  deafAfterMs?: number;
  /** Full reload from the record store even while fresh, to heal anything pub/sub dropped. */
  resyncMs?: number;
}

type Message = { t: 'rev'; kind: RevocationKind; subject: string; expiresAt: number } | { t: 'hb'; from: string; sentAt: number };

/**
 * Sessions and containers are named by the platform, not by us, so the same id may occur in two
 * orgs: the subject carries the org, so one org can never revoke another's. `/` is not in the
 * id alphabet, so the join is unambiguous.
 */
export function revocationSubject(target: RevocationTarget): string {
  return target.kind === 'capability' ? target.id : `${target.orgId}/${target.id}`;
}

export class CapabilityRevocations {
  private readonly entries = new Map<string, number>();
  private readonly replicaId = randomBytes(9).toString('base64url');
  private readonly heartbeatMs: number;
  private readonly deafAfterMs: number;
  private readonly resyncMs: number;
  private lastHeardSentAt = Number.NEGATIVE_INFINITY;
  private loaded = false;
  /** Set when the replica went deaf; cleared by a reload that began after hearing resumed. */
  private needsReload = true;
  private heardSinceDeaf = false;
  private lastReloadAt = Number.NEGATIVE_INFINITY;
  private reloading: Promise<void> | undefined;
  private unsubscribe: (() => Promise<void>) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: CapabilityRevocationsOptions) {
    this.heartbeatMs = options.heartbeatMs ?? 250;
    this.deafAfterMs = options.deafAfterMs ?? 1000;
    this.resyncMs = options.resyncMs ?? 30_000;
  }

  static key(kind: RevocationKind, subject: string): string {
    return `${kind}\u0000${subject}`;
  }

  /** Subscribes, then loads; resolves once fresh, or after one attempt when the stores are down. */
  async start(): Promise<void> {
    this.unsubscribe = await this.options.state.subscribe(REVOCATION_CHANNEL, (message) => this.onMessage(message));
    await this.beat();
    await this.reload();
    this.timer = setInterval(() => void this.tick(), this.heartbeatMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.reloading;
    await this.unsubscribe?.().catch(() => undefined);
  }

  /** Whether this replica can currently vouch for its revocation list. */
  fresh(): boolean {
    if (!this.loaded || this.needsReload) return false;
    return performance.now() - this.lastHeardSentAt < this.deafAfterMs;
  }

  async isRevoked(claims: CapabilityClaims): Promise<boolean | 'unavailable'> {
    if (!this.fresh()) {
      // A deaf replica may have missed revocations; a not-yet-fresh one does not know them yet.
      return 'unavailable';
    }
    const now = this.options.clock.now();
    const keys = [
      CapabilityRevocations.key('capability', claims.capabilityId),
      CapabilityRevocations.key('session', revocationSubject({ kind: 'session', orgId: claims.orgId, id: claims.sessionId })),
    ];
    if (claims.binding.type === 'container') {
      keys.push(CapabilityRevocations.key('container', revocationSubject({ kind: 'container', orgId: claims.orgId, id: claims.binding.containerId })));
    }
    return keys.some((key) => {
      const expiresAt = this.entries.get(key);
      return expiresAt !== undefined && expiresAt > now;
    });
  }

  /**
   * Durable first, then local, then broadcast. A failed broadcast throws (the caller answers 503
   * and the platform retries; revoking again is harmless), because another replica that is still
   * "fresh" would otherwise keep honouring the capability until its next full reload.
   */
  async revoke(target: RevocationTarget): Promise<{ expiresAt: number }> {
    const now = this.options.clock.now();
    const expiresAt = now + this.options.retainMs;
    const subject = revocationSubject(target);
    await this.options.db
      .insertInto('revocations')
      .values({ kind: target.kind, subject, revoked_at: new Date(now), expires_at: new Date(expiresAt) })
      .onConflict((oc) => oc.columns(['kind', 'subject']).doUpdateSet({ expires_at: new Date(expiresAt) }))
      .execute();
    this.remember(target.kind, subject, expiresAt);
    const message: Message = { t: 'rev', kind: target.kind, subject, expiresAt };
    await this.options.state.publish(REVOCATION_CHANNEL, JSON.stringify(message));
    return { expiresAt };
  }

  private remember(kind: RevocationKind, subject: string, expiresAt: number): void {
    const key = CapabilityRevocations.key(kind, subject);
    const previous = this.entries.get(key);
    if (previous === undefined || previous < expiresAt) this.entries.set(key, expiresAt);
  }

  private onMessage(raw: string): void {
    let message: unknown;
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    if (typeof message !== 'object' || message === null) return;
    const m = message as Partial<Record<string, unknown>>;
    if (m.t === 'hb') {
      if (m.from === this.replicaId && typeof m.sentAt === 'number') {
        if (m.sentAt > this.lastHeardSentAt) this.lastHeardSentAt = m.sentAt;
        if (this.needsReload) this.heardSinceDeaf = true;
      }
      return;
    }
    if (m.t === 'rev' && typeof m.subject === 'string' && typeof m.expiresAt === 'number' && (REVOCATION_KINDS as readonly unknown[]).includes(m.kind)) {
      this.remember(m.kind as RevocationKind, m.subject, m.expiresAt);
    }
  }

  private async beat(): Promise<void> {
    const message: Message = { t: 'hb', from: this.replicaId, sentAt: performance.now() };
    try {
      await this.options.state.publish(REVOCATION_CHANNEL, JSON.stringify(message));
    } catch {
      // Not hearing our own heartbeat is how the failure shows; nothing else to do here.
    }
  }

  private async tick(): Promise<void> {
    const wasFresh = this.fresh();
    await this.beat();
    if (this.loaded && !this.needsReload && performance.now() - this.lastHeardSentAt >= this.deafAfterMs) {
      this.needsReload = true;
      this.heardSinceDeaf = false;
      if (wasFresh) this.options.logger?.warn('capability revocations: subscription deaf; redemptions fail closed until resynced');
    }
    const due = this.options.clock.now() - this.lastReloadAt >= this.resyncMs;
    if ((this.needsReload && this.heardSinceDeaf) || due || !this.loaded) await this.reload();
    this.prune();
  }

  private reload(): Promise<void> {
    this.reloading ??= this.doReload().finally(() => {
      this.reloading = undefined;
    });
    return this.reloading;
  }

  private async doReload(): Promise<void> {
    // Only a reload that starts after hearing resumed can clear deafness (see the file comment).
    const clearsDeafness = this.heardSinceDeaf || !this.loaded;
    const now = this.options.clock.now();
    try {
      const rows = await this.options.db
        .selectFrom('revocations')
        .select(['kind', 'subject', 'expires_at'])
        .where('kind', 'in', [...REVOCATION_KINDS])
        .where('expires_at', '>', new Date(now))
        .execute();
      for (const row of rows) this.remember(row.kind as RevocationKind, row.subject, row.expires_at.getTime());
      this.loaded = true;
      this.lastReloadAt = now;
      if (clearsDeafness) {
        this.needsReload = false;
        this.heardSinceDeaf = false;
      }
    } catch (error) {
      this.options.logger?.warn({ err: error instanceof Error ? error.message : 'unknown' }, 'capability revocations: reload failed');
    }
  }

  private prune(): void {
    const now = this.options.clock.now();
    for (const [key, expiresAt] of this.entries) if (expiresAt <= now) this.entries.delete(key);
  }
}
