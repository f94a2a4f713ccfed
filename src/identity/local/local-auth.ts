/**
 * Wires local sign-in once at boot: password hashing, MFA, sessions (with their cache), lockout and
 * the session resolver the authenticator calls for cookie credentials.
 */
import type { Aead } from '../../core/aead.js';
import type { Clock } from '../../core/clock.js';
import type { AuditSink } from '../../audit/sink.js';
import type { Db } from '../../store/db/schema.js';
import type { HotState } from '../../store/state/port.js';
import { resolveLocalAuthConfig, type LocalAuthConfig } from './config.js';
import { createLoginLockout, type LoginLockout } from './lockout.js';
import { createMfaService, type MfaService } from './mfa.js';
import { createPasswordHasher, type PasswordHasher } from './password.js';
import { checkPasswordPolicy, type PasswordPolicyResult } from './password-policy.js';
import { createSessionResolver, type SessionResolver } from './session-resolver.js';
import { createSessionStore, type SessionStore } from './session-store.js';

export interface LocalAuthDeps {
  db: Db;
  hot: HotState;
  audit: AuditSink;
  clock: Clock;
  /** Seals TOTP secrets at rest. */
  aead: Aead;
  config?: Partial<LocalAuthConfig>;
}

export interface LocalAuth {
  readonly config: LocalAuthConfig;
  readonly db: Db;
  readonly audit: AuditSink;
  readonly clock: Clock;
  readonly passwords: PasswordHasher;
  readonly mfa: MfaService;
  readonly sessions: SessionStore;
  readonly lockout: LoginLockout;
  /** Plug into the authenticator as its `sessionResolver`. */
  readonly resolveSession: SessionResolver;
  /** Checks the policy, then stores the argon2id hash. Does not revoke sessions (the route does). */
  setPassword(userId: string, password: string): Promise<PasswordPolicyResult>;
  /** Subscribes to session invalidations from other replicas; call once at start, call the result at shutdown. */
  start(): Promise<() => Promise<void>>;
}

export function createLocalAuth(deps: LocalAuthDeps): LocalAuth {
  const config = resolveLocalAuthConfig(deps.config);
  const passwords = createPasswordHasher(config.passwordHash);
  const sessions = createSessionStore({
    db: deps.db,
    hot: deps.hot,
    clock: deps.clock,
    lifetimeMs: config.sessionLifetimeMs,
    pendingLifetimeMs: Math.min(config.mfaPendingLifetimeMs, config.sessionLifetimeMs),
    cacheTtlMs: config.sessionCacheTtlMs,
    cacheMaxEntries: config.sessionCacheMaxEntries,
  });
  const mfa = createMfaService({ db: deps.db, aead: deps.aead, clock: deps.clock, issuer: config.totpIssuer });
  const lockout = createLoginLockout(deps.hot, config.lockout);

  return {
    config,
    db: deps.db,
    audit: deps.audit,
    clock: deps.clock,
    passwords,
    mfa,
    sessions,
    lockout,
    resolveSession: createSessionResolver({ sessions, clock: deps.clock }),
    async setPassword(userId, password) {
      const user = await deps.db.selectFrom('users').select('email').where('id', '=', userId).executeTakeFirst();
      if (user === undefined) return { ok: false, reason: 'The user does not exist.' };
      const policy = checkPasswordPolicy(password, { email: user.email });
      if (!policy.ok) return policy;
      const hash = await passwords.hash(password);
      await deps.db.updateTable('users').set({ password_hash: hash }).where('id', '=', userId).execute();
      return { ok: true };
    },
    start: () => sessions.start(),
  };
}
