/** Local users: passwords, TOTP MFA, browser sessions, CSRF and sign-in lockout. */
export { createLocalAuth, type LocalAuth, type LocalAuthDeps } from './local-auth.js';
export { registerLocalAuthRoutes } from './routes.js';
export { DEFAULT_LOCAL_AUTH_CONFIG, resolveLocalAuthConfig, type LocalAuthConfig, type LockoutConfig } from './config.js';
export {
  createSessionResolver,
  type SessionResolver,
  type SessionResolution,
  type SessionRequestContext,
} from './session-resolver.js';
export { createPasswordHasher, OWASP_ARGON2ID, TEST_ARGON2ID, MAX_PASSWORD_LENGTH, type PasswordHasher, type PasswordHashParams } from './password.js';
export { checkPasswordPolicy, MIN_PASSWORD_LENGTH, type PasswordPolicyResult } from './password-policy.js';
export { SESSION_INVALIDATION_CHANNEL } from './session-store.js';
