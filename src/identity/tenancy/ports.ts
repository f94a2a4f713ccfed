/**
 * The few things tenancy needs from its neighbours, as narrow ports: a key signer (identity/keys)
 * and the cache-invalidation events (identity/cache). Services depend on these shapes only, so tests
 * can record what was published and the composition root wires the real implementations.
 */
import type { AuditSink } from '../../audit/sink.js';
import type { Clock } from '../../core/clock.js';
import type { Db } from '../../store/db/schema.js';

export interface KeySigningInput {
  keyId: string;
  userId: string;
  orgId: string;
  scopes: string[];
  pepper: string;
  ttlMs?: number;
}

/** Matches ApiKeySigner.sign: validates, signs, and refuses a lifetime over the configured maximum. */
export interface KeyTokenSigner {
  sign(input: KeySigningInput): Promise<{ token: string; expiresAt: Date }>;
}

/**
 * What every replica must hear so key narrowing is immediate. Each call publishes; the verifier's
 * caches drop the affected entries (the new pepper, role or membership is read on next use).
 */
export interface IdentityEvents {
  revokeKey(keyId: string, expiresAt: Date): Promise<void>;
  /** Writes a fresh pepper for the user (durably) and tells every replica; not_found if no such user. */
  rotatePepper(userId: string): Promise<unknown>;
  membershipChanged(orgId: string, userId: string): Promise<void>;
  userChanged(userId: string): Promise<void>;
}

export interface TenancyDeps {
  db: Db;
  signer: KeyTokenSigner;
  events: IdentityEvents;
  audit: AuditSink;
  clock: Clock;
  /**
   * Local-login password setter (identity/local's LocalAuth.setPassword): applies the password policy
   * and stores an argon2id hash. Absent: creating a user with a password is refused.
   */
  setPassword?: (userId: string, password: string) => Promise<{ ok: true } | { ok: false; reason: string }>;
}

/** Records events instead of publishing them; for tests and for wiring before the bus exists. */
export class RecordingIdentityEvents implements IdentityEvents {
  readonly published: Array<{ event: keyof IdentityEvents; args: string[] }> = [];
  async revokeKey(keyId: string, expiresAt: Date): Promise<void> {
    this.published.push({ event: 'revokeKey', args: [keyId, expiresAt.toISOString()] });
  }
  /** Optional hook so tests can make rotation durable (the real events write the pepper). */
  onRotatePepper: ((userId: string) => Promise<void>) | undefined;
  async rotatePepper(userId: string): Promise<void> {
    if (this.onRotatePepper !== undefined) await this.onRotatePepper(userId);
    this.published.push({ event: 'rotatePepper', args: [userId] });
  }
  async membershipChanged(orgId: string, userId: string): Promise<void> {
    this.published.push({ event: 'membershipChanged', args: [orgId, userId] });
  }
  async userChanged(userId: string): Promise<void> {
    this.published.push({ event: 'userChanged', args: [userId] });
  }
}
