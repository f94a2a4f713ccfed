/**
 * Session records. The token (32 random bytes) lives only in the cookie; the database keeps its
 * SHA-256 as the primary key, plus the SHA-256 of the session's CSRF token. Lookups go through a
 * short-lived per-replica cache so the hot path does not read the database on every request;
 * revocations are broadcast on a hot-state channel and every replica drops the entry at once.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import { sha256Hex } from '../../core/crypto.js';
import type { Db, UserType } from '../../store/db/schema.js';
import type { HotState } from '../../store/state/port.js';
import { IDENTITY_CHANNEL } from '../cache/index.js';

export const SESSION_INVALIDATION_CHANNEL = 'portcullis:sessions:invalidate';
const TOKEN_BYTES = 32;
/** base64url of 32 bytes, no padding. */
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export interface SessionRecord {
  idHash: string;
  userId: string;
  csrfHash: string;
  mfaVerified: boolean;
  expiresAt: number;
  revoked: boolean;
  user: { email: string; displayName: string; userType: UserType; platformAdmin: boolean; disabled: boolean };
}

export interface CreatedSession {
  /** Goes into the cookie; never stored. */
  token: string;
  /** Returned to the client once; sent back in X-CSRF-Token on writes. */
  csrfToken: string;
  idHash: string;
  expiresAt: number;
}

export interface SessionStore {
  create(userId: string, mfaVerified: boolean): Promise<CreatedSession>;
  /** Null for unknown tokens (and malformed ones, without a database read). */
  find(token: string): Promise<SessionRecord | null>;
  markMfaVerified(idHash: string): Promise<void>;
  revoke(idHash: string): Promise<void>;
  /** Revokes every live session of the user except `keepIdHash`; returns how many. */
  revokeAllForUser(userId: string, keepIdHash?: string): Promise<number>;
  /** Deletes expired and revoked rows (a periodic maintenance job); returns how many. */
  deleteDead(): Promise<number>;
  /** Starts listening for invalidations from other replicas; the returned function stops it. */
  start(): Promise<() => Promise<void>>;
}

export interface SessionStoreDeps {
  db: Db;
  hot: HotState;
  clock: Clock;
  lifetimeMs: number;
  /** Lifetime of a session created before its second factor is proven. */
  pendingLifetimeMs: number;
  cacheTtlMs: number;
  cacheMaxEntries: number;
}

export function hashSessionToken(token: string): string {
  return sha256Hex(`portcullis-session:${token}`);
}

export function hashCsrfToken(token: string): string {
  return sha256Hex(`portcullis-csrf:${token}`);
}

export function isWellFormedSessionToken(token: string): boolean {
  return TOKEN_PATTERN.test(token);
}

type Invalidation = { session: string } | { user: string };

/** Messages are small; anything malformed is ignored (the cache TTL still bounds staleness). */
function parseObject(message: string): Record<string, unknown> | null {
  if (message.length > 1024) return null;
  try {
    const parsed = JSON.parse(message) as unknown;
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export function createSessionStore(deps: SessionStoreDeps): SessionStore {
  const { db, hot, clock } = deps;
  const cache = new Map<string, { record: SessionRecord; cachedUntil: number }>();

  function forget(message: Invalidation): void {
    if ('session' in message) {
      cache.delete(message.session);
      return;
    }
    for (const [key, entry] of cache) if (entry.record.userId === message.user) cache.delete(key);
  }

  async function invalidate(message: Invalidation): Promise<void> {
    forget(message);
    try {
      await hot.publish(SESSION_INVALIDATION_CHANNEL, JSON.stringify(message));
    } catch {
      // The database write already happened; other replicas drop their copy when its short TTL
      // ends. Failing the logout here would leave the user believing they are still signed in.
    }
  }

  function remember(record: SessionRecord): void {
    if (cache.size >= deps.cacheMaxEntries) {
      // Maps iterate in insertion order: dropping the first entry evicts the oldest.
      const oldest = cache.keys().next();
      if (oldest.done !== true) cache.delete(oldest.value);
    }
    cache.set(record.idHash, { record, cachedUntil: clock.now() + deps.cacheTtlMs });
  }

  async function load(idHash: string): Promise<SessionRecord | null> {
    const row = await db
      .selectFrom('sessions')
      .innerJoin('users', 'users.id', 'sessions.user_id')
      .select([
        'sessions.id_hash',
        'sessions.user_id',
        'sessions.csrf_hash',
        'sessions.mfa_verified',
        'sessions.expires_at',
        'sessions.revoked_at',
        'users.email',
        'users.display_name',
        'users.user_type',
        'users.platform_admin',
        'users.disabled',
      ])
      .where('sessions.id_hash', '=', idHash)
      .executeTakeFirst();
    if (row === undefined) return null;
    return {
      idHash: row.id_hash,
      userId: row.user_id,
      csrfHash: row.csrf_hash,
      mfaVerified: row.mfa_verified,
      expiresAt: new Date(row.expires_at).getTime(),
      revoked: row.revoked_at !== null,
      user: {
        email: row.email,
        displayName: row.display_name,
        userType: row.user_type,
        platformAdmin: row.platform_admin,
        disabled: row.disabled,
      },
    };
  }

  return {
    async create(userId, mfaVerified) {
      const token = randomBytes(TOKEN_BYTES).toString('base64url');
      const csrfToken = randomBytes(TOKEN_BYTES).toString('base64url');
      const idHash = hashSessionToken(token);
      const now = clock.now();
      const expiresAt = now + (mfaVerified ? deps.lifetimeMs : deps.pendingLifetimeMs);
      await db
        .insertInto('sessions')
        .values({
          id_hash: idHash,
          user_id: userId,
          csrf_hash: hashCsrfToken(csrfToken),
          mfa_verified: mfaVerified,
          created_at: new Date(now),
          expires_at: new Date(expiresAt),
          revoked_at: null,
        })
        .execute();
      return { token, csrfToken, idHash, expiresAt };
    },

    async find(token) {
      if (!isWellFormedSessionToken(token)) return null;
      const idHash = hashSessionToken(token);
      const cached = cache.get(idHash);
      if (cached !== undefined && cached.cachedUntil > clock.now()) return cached.record;
      cache.delete(idHash);
      const record = await load(idHash);
      // Only live sessions are cached; revoked/unknown ones are cheap to refuse and must stay refused.
      if (record !== null && !record.revoked) remember(record);
      return record;
    },

    async markMfaVerified(idHash) {
      await db.updateTable('sessions').set({ mfa_verified: true }).where('id_hash', '=', idHash).where('revoked_at', 'is', null).execute();
      await invalidate({ session: idHash });
    },

    async revoke(idHash) {
      await db
        .updateTable('sessions')
        .set({ revoked_at: new Date(clock.now()) })
        .where('id_hash', '=', idHash)
        .where('revoked_at', 'is', null)
        .execute();
      await invalidate({ session: idHash });
    },

    async revokeAllForUser(userId, keepIdHash) {
      let query = db
        .updateTable('sessions')
        .set({ revoked_at: new Date(clock.now()) })
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null);
      if (keepIdHash !== undefined) query = query.where('id_hash', '!=', keepIdHash);
      const result = await query.executeTakeFirst();
      await invalidate({ user: userId });
      return Number(result.numUpdatedRows);
    },

    async deleteDead() {
      const result = await db
        .deleteFrom('sessions')
        .where((eb) => eb.or([eb('expires_at', '<=', new Date(clock.now())), eb('revoked_at', 'is not', null)]))
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },

    async start() {
      const stopSessions = await hot.subscribe(SESSION_INVALIDATION_CHANNEL, (message) => {
        const value = parseObject(message);
        if (typeof value?.session === 'string') forget({ session: value.session });
        else if (typeof value?.user === 'string') forget({ user: value.user });
      });
      // A user disabled, promoted or demoted elsewhere: drop their cached sessions so the next
      // request re-reads the user with the session and sees the change at once.
      const stopIdentity = await hot.subscribe(IDENTITY_CHANNEL, (message) => {
        const value = parseObject(message);
        if (value?.t === 'user' && typeof value.u === 'string') forget({ user: value.u });
      });
      return async () => {
        await stopSessions();
        await stopIdentity();
      };
    },
  };
}
