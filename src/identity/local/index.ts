/** Local users: passwords, TOTP MFA, browser sessions, CSRF and sign-in lockout. */
export { createLocalAuth, type LocalAuth, type LocalAuthDeps } from './local-auth.js';
export { registerLocalAuthRoutes } from './routes.js';
export { DEFAULT_LOCAL_AUTH_CONFIG, resolveLocalAuthConfig, type LocalAuthConfig, type LockoutConfig } from './config.js';
export {
  createSessionResolver,
  resolveCookieSession,
  type SessionResolver,
  type SessionResolution,
  type SessionRequestContext,
} from './session-resolver.js';
export { SESSION_INVALIDATION_CHANNEL, type SessionStore, type SessionRecord, type CreatedSession } from './session-store.js';
export { createPasswordHasher, OWASP_ARGON2ID, TEST_ARGON2ID, MAX_PASSWORD_LENGTH, type PasswordHasher, type PasswordHashParams } from './password.js';
export { checkPasswordPolicy, MIN_PASSWORD_LENGTH, type PasswordPolicyResult } from './password-policy.js';
export type { MfaService, MfaProof, MfaCheck, EnrolResult } from './mfa.js';
export type { LoginLockout, LockoutCheck } from './lockout.js';
/** For end-to-end tests that must produce valid codes. */
export { totpCodeForStep, totpStepAt } from './totp.js';
