/**
 * Identity changes that must reach every replica: the tenancy code calls these right after its own
 * writes. Each one writes what it owns to the record store first (so a replica that misses the
 * message still finds it on its next resync or cache miss), applies the change to this replica at
 * once, then publishes it. A failed publish is logged, not thrown: the change is durable and other
 * replicas pick it up within one resync interval (deny-list) or one cache TTL (users, roles).
 */
import type { Clock } from '../../core/clock.js';
import { randomBase64Url } from '../../core/crypto.js';
import { AppError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { IDENTITY_CHANNEL, encodeIdentityMessage, type IdentityMessage } from './messages.js';
import type { IdentityCache, IdentityPubSub } from './identity-cache.js';
import type { IdentityRecords } from './records.js';

export interface IdentityEventsOptions {
  records: IdentityRecords;
  pubsub: IdentityPubSub;
  clock: Clock;
  /** This replica's cache, updated synchronously so the caller's next request already sees the change. */
  cache?: IdentityCache;
  logger?: Logger;
}

/** A fresh pepper: 24 random bytes, base64url. */
export function newPepper(): string {
  return randomBase64Url(24);
}

export class IdentityEvents {
  constructor(private readonly opts: IdentityEventsOptions) {}

  /** Deny-lists one key on every replica until `expiresAt` (its own expiry). Idempotent. */
  async revokeKey(keyId: string, expiresAt: Date): Promise<void> {
    await this.opts.records.recordKeyRevocation(keyId, expiresAt, new Date(this.opts.clock.now()));
    await this.emit({ t: 'revoke', k: keyId, e: expiresAt.getTime() });
  }

  /** Kills every key of the user by giving them a new pepper; returns it (for keys minted next). */
  async rotatePepper(userId: string): Promise<string> {
    const pepper = newPepper();
    const updated = await this.opts.records.setPepper(userId, pepper);
    if (!updated) throw new AppError('not_found');
    await this.emit({ t: 'user', u: userId });
    return pepper;
  }

  /** A membership was added, its role changed, or it was removed. */
  async membershipChanged(orgId: string, userId: string): Promise<void> {
    await this.emit({ t: 'member', o: orgId, u: userId });
  }

  /** A user's type, disabled flag, platform-admin flag or pepper changed, or the user was deleted. */
  async userChanged(userId: string): Promise<void> {
    await this.emit({ t: 'user', u: userId });
  }

  private async emit(message: IdentityMessage): Promise<void> {
    this.opts.cache?.apply(message);
    try {
      await this.opts.pubsub.publish(IDENTITY_CHANNEL, encodeIdentityMessage(message));
    } catch (err) {
      this.opts.logger?.warn(
        { event: message.t, err: err instanceof Error ? err.name : 'unknown' },
        'identity change is recorded but its broadcast failed; other replicas catch up on their next resync',
      );
    }
  }
}
