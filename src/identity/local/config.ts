/** Tunables of local sign-in, with the defaults the issue asks for. Validated once at boot. */
import { OWASP_ARGON2ID, type PasswordHashParams } from './password.js';

export interface LockoutConfig {
  /** Failures within `windowMs` that lock an account or an address. */
  maxFailures: number;
  windowMs: number;
  lockMs: number;
}

export interface LocalAuthConfig {
  /** Absolute session lifetime; also the cookie's Max-Age. */
  sessionLifetimeMs: number;
  /** Lifetime of a session that still waits for its second factor; short, it can do nothing else. */
  mfaPendingLifetimeMs: number;
  /** How long a replica trusts its in-memory copy of a session row (revocations arrive by pub/sub sooner). */
  sessionCacheTtlMs: number;
  /** Most sessions held in one replica's cache. */
  sessionCacheMaxEntries: number;
  /** TLS terminates in front of Portcullis: cookies get `Secure`. */
  behindTls: boolean;
  lockout: LockoutConfig;
  passwordHash: PasswordHashParams;
  /** Issuer shown in authenticator apps. */
  totpIssuer: string;
}

export const DEFAULT_LOCAL_AUTH_CONFIG: LocalAuthConfig = {
  sessionLifetimeMs: 12 * 60 * 60 * 1000,
  mfaPendingLifetimeMs: 10 * 60 * 1000,
  sessionCacheTtlMs: 10_000,
  sessionCacheMaxEntries: 10_000,
  behindTls: false,
  lockout: { maxFailures: 10, windowMs: 60_000, lockMs: 5 * 60_000 },
  passwordHash: OWASP_ARGON2ID,
  totpIssuer: 'Portcullis',
};

function positiveInteger(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`Local auth setting ${name} must be a positive integer (got ${value}).`);
}

export function resolveLocalAuthConfig(overrides: Partial<LocalAuthConfig> = {}): LocalAuthConfig {
  const config: LocalAuthConfig = {
    ...DEFAULT_LOCAL_AUTH_CONFIG,
    ...overrides,
    lockout: { ...DEFAULT_LOCAL_AUTH_CONFIG.lockout, ...overrides.lockout },
  };
  positiveInteger(config.sessionLifetimeMs, 'sessionLifetimeMs');
  positiveInteger(config.mfaPendingLifetimeMs, 'mfaPendingLifetimeMs');
  positiveInteger(config.sessionCacheTtlMs, 'sessionCacheTtlMs');
  positiveInteger(config.sessionCacheMaxEntries, 'sessionCacheMaxEntries');
  positiveInteger(config.lockout.maxFailures, 'lockout.maxFailures');
  positiveInteger(config.lockout.windowMs, 'lockout.windowMs');
  positiveInteger(config.lockout.lockMs, 'lockout.lockMs');
  if (config.totpIssuer.length === 0 || config.totpIssuer.length > 64 || config.totpIssuer.includes(':')) {
    throw new Error('Local auth setting totpIssuer must be 1-64 characters without ":".');
  }
  return config;
}
