/**
 * /api/auth/* — sign-in with password, second factor, session status, logout, MFA management and
 * password change. Failed sign-ins answer the same way, after the same work, whether or not the
 * email exists. Routes that must accept a session still waiting for its second factor (verify,
 * logout, status) read the cookie themselves; the rest go through the normal auth hook, which
 * refuses such sessions and checks CSRF on writes.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AppError } from '../../core/errors.js';
import { extractCredential } from '../../http/credentials.js';
import { defineRoute, type RouteRegistry } from '../../http/route.js';
import type { Principal } from '../principal.js';
import type { LocalAuth } from './local-auth.js';
import { checkPasswordPolicy } from './password-policy.js';
import { MAX_PASSWORD_LENGTH } from './password.js';
import { resolveCookieSession } from './session-resolver.js';
import type { SessionRecord } from './session-store.js';
import { clearedSessionCookie, sessionCookie } from './session-cookie.js';

const TAGS = ['auth'];
/** Generous bound for what is validated later; keeps argon2 input and JSON small. */
const PasswordField = z.string().min(1).max(MAX_PASSWORD_LENGTH * 4);
const CodeField = z.string().min(1).max(32);

const LoginBody = z.object({ email: z.string().trim().min(3).max(320), password: PasswordField }).strict();
const MfaVerifyBody = z
  .object({ code: CodeField.optional(), recoveryCode: z.string().min(1).max(64).optional() })
  .strict()
  .refine((body) => (body.code === undefined) !== (body.recoveryCode === undefined), { message: 'Give exactly one of code or recoveryCode.' });
const CodeBody = z.object({ code: CodeField }).strict();
const PasswordChangeBody = z.object({ current: PasswordField, next: PasswordField }).strict();

function isSecure(auth: LocalAuth, request: FastifyRequest): boolean {
  return auth.config.behindTls || request.protocol === 'https';
}

function noStore(reply: FastifyReply): void {
  reply.header('cache-control', 'no-store');
}

function sessionToken(request: FastifyRequest): string | null {
  // Only the cookie: these routes act on the browser session, whatever else the request carries.
  const parsed = extractCredential({ cookie: request.headers.cookie }, undefined, false);
  return parsed.ok && parsed.credential !== null ? parsed.credential.token : null;
}

async function cookieSession(auth: LocalAuth, request: FastifyRequest): Promise<SessionRecord> {
  const token = sessionToken(request);
  if (token === null) throw new AppError('unauthenticated');
  const csrf = request.headers['x-csrf-token'];
  const result = await resolveCookieSession({ sessions: auth.sessions, clock: auth.clock }, token, {
    ip: request.ip,
    method: request.method,
    csrfToken: typeof csrf === 'string' ? csrf : undefined,
  });
  if (!result.ok) throw new AppError(result.code);
  return result.session;
}

function requireSessionUser(principal: Principal): string {
  // These routes change the signed-in person's own credentials; keys and tokens may not.
  if (principal.kind !== 'session' || principal.userId === null) throw new AppError('forbidden', { message: 'This route needs a signed-in browser session.' });
  return principal.userId;
}

async function emailOf(auth: LocalAuth, userId: string): Promise<string> {
  const user = await auth.db.selectFrom('users').select('email').where('id', '=', userId).executeTakeFirst();
  if (user === undefined) throw new AppError('session_expired');
  return user.email;
}

async function refuseIfLocked(auth: LocalAuth, email: string, ip: string, actor: string, action: string): Promise<void> {
  const state = await auth.lockout.check(email, ip);
  if (!state.locked) return;
  await auth.audit.record({ actor, orgId: null, action, outcome: 'denied', details: { reason: 'locked' } });
  throw new AppError('account_locked', { retryAfterSeconds: state.retryAfterSeconds });
}

/**
 * A signed-in user proves a current TOTP code to change their MFA state: refused while locked, a
 * wrong code counts towards the lockout, and both outcomes are audited.
 */
async function withCheckedCode(auth: LocalAuth, userId: string, ip: string, action: string, check: (userId: string) => Promise<boolean>): Promise<void> {
  const email = await emailOf(auth, userId);
  await refuseIfLocked(auth, email, ip, userId, action);
  if (!(await check(userId))) {
    await auth.lockout.recordFailure(email, ip);
    await auth.audit.record({ actor: userId, orgId: null, action, target: userId, outcome: 'failure' });
    throw new AppError('invalid_mfa_code');
  }
  await auth.audit.record({ actor: userId, orgId: null, action, target: userId, outcome: 'success' });
}

export function registerLocalAuthRoutes(app: FastifyInstance, registry: RouteRegistry, auth: LocalAuth): void {
  defineRoute(app, registry, {
    method: 'POST',
    url: '/api/auth/login',
    summary: 'Sign in with email and password; sets the session cookie',
    tags: TAGS,
    auth: 'none',
    body: LoginBody,
    handler: async ({ body, request, reply }) => {
      const email = body.email.toLowerCase();
      const ip = request.ip;
      await refuseIfLocked(auth, email, ip, `anon:${ip}`, 'auth.login');
      const user = await auth.db
        .selectFrom('users')
        .select(['id', 'email', 'display_name', 'password_hash', 'disabled'])
        .where('email', '=', email)
        .executeTakeFirst();
      const passwordOk =
        user !== undefined && user.password_hash !== null && !user.disabled
          ? await auth.passwords.verify(user.password_hash, body.password)
          : await auth.passwords.verifyDummy(body.password);
      if (!passwordOk || user === undefined) {
        await auth.lockout.recordFailure(email, ip);
        await auth.audit.record({ actor: `anon:${ip}`, orgId: null, action: 'auth.login', target: user?.id ?? null, outcome: 'failure' });
        throw new AppError('invalid_credentials', { message: 'The email or password is incorrect.' });
      }
      if (user.password_hash !== null && auth.passwords.needsRehash(user.password_hash)) {
        // Keeps every stored hash at the current cost, so the dummy verify costs the same as a real one.
        await auth.db.updateTable('users').set({ password_hash: await auth.passwords.hash(body.password) }).where('id', '=', user.id).execute();
      }
      const mfaRequired = await auth.mfa.isEnabled(user.id);
      const session = await auth.sessions.create(user.id, !mfaRequired);
      reply.header('set-cookie', sessionCookie(session.token, session.expiresAt - auth.clock.now(), isSecure(auth, request)));
      noStore(reply);
      await auth.audit.record({ actor: user.id, orgId: null, action: 'auth.login', target: user.id, outcome: 'success', details: { mfaRequired } });
      return {
        mfaRequired,
        csrfToken: session.csrfToken,
        expiresAt: new Date(session.expiresAt).toISOString(),
        user: { id: user.id, email: user.email, displayName: user.display_name },
      };
    },
  });

  defineRoute(app, registry, {
    method: 'POST',
    url: '/api/auth/mfa/verify',
    summary: 'Complete sign-in with a TOTP code or a recovery code; replaces the session cookie',
    tags: TAGS,
    auth: 'none',
    body: MfaVerifyBody,
    handler: async ({ body, request, reply }) => {
      const session = await cookieSession(auth, request);
      const ip = request.ip;
      await refuseIfLocked(auth, session.user.email, ip, session.userId, 'auth.mfa.verify');
      const proof = body.code !== undefined ? { code: body.code } : { recoveryCode: body.recoveryCode ?? '' };
      const check = await auth.mfa.verify(session.userId, proof);
      if (!check.ok) {
        await auth.lockout.recordFailure(session.user.email, ip);
        await auth.audit.record({ actor: session.userId, orgId: null, action: 'auth.mfa.verify', target: session.userId, outcome: 'failure' });
        throw new AppError('invalid_mfa_code');
      }
      // A new token once the second factor is proven: a token seen before MFA never becomes a full session.
      await auth.sessions.revoke(session.idHash);
      const upgraded = await auth.sessions.create(session.userId, true);
      reply.header('set-cookie', sessionCookie(upgraded.token, upgraded.expiresAt - auth.clock.now(), isSecure(auth, request)));
      noStore(reply);
      await auth.audit.record({
        actor: session.userId,
        orgId: null,
        action: 'auth.mfa.verify',
        target: session.userId,
        outcome: 'success',
        details: { via: check.via, recoveryCodesLeft: check.recoveryCodesLeft },
      });
      return { mfaRequired: false, csrfToken: upgraded.csrfToken, expiresAt: new Date(upgraded.expiresAt).toISOString(), recoveryCodesLeft: check.recoveryCodesLeft };
    },
  });

  defineRoute(app, registry, {
    method: 'POST',
    url: '/api/auth/logout',
    summary: 'Revoke the current session and clear its cookie',
    tags: TAGS,
    auth: 'none',
    successStatus: 204,
    handler: async ({ request, reply }) => {
      const secure = isSecure(auth, request);
      let session: SessionRecord;
      try {
        session = await cookieSession(auth, request);
      } catch (error) {
        // A dead or missing session: nothing to revoke, just make sure the browser forgets it.
        if (error instanceof AppError && error.code !== 'csrf_failed') {
          reply.header('set-cookie', clearedSessionCookie(secure));
          return undefined;
        }
        throw error;
      }
      await auth.sessions.revoke(session.idHash);
      reply.header('set-cookie', clearedSessionCookie(secure));
      await auth.audit.record({ actor: session.userId, orgId: null, action: 'auth.logout', target: session.userId, outcome: 'success' });
      return undefined;
    },
  });

  defineRoute(app, registry, {
    method: 'GET',
    url: '/api/auth/session',
    summary: 'The current session: user, whether the second factor is still needed, expiry',
    tags: TAGS,
    auth: 'none',
    handler: async ({ request, reply }) => {
      const session = await cookieSession(auth, request);
      noStore(reply);
      return {
        mfaRequired: !session.mfaVerified,
        expiresAt: new Date(session.expiresAt).toISOString(),
        user: {
          id: session.userId,
          email: session.user.email,
          displayName: session.user.displayName,
          userType: session.user.userType,
          platformAdmin: session.user.platformAdmin,
        },
      };
    },
  });

  defineRoute(app, registry, {
    method: 'POST',
    url: '/api/auth/mfa/enrol',
    summary: 'Start TOTP enrolment: returns the otpauth URI and recovery codes, once',
    tags: TAGS,
    auth: 'required',
    handler: async ({ principal, reply }) => {
      const userId = requireSessionUser(principal);
      const result = await auth.mfa.enrol(userId, await emailOf(auth, userId));
      if (!result.ok) throw new AppError('conflict', { message: 'A second factor is already enabled; disable it first.' });
      noStore(reply);
      await auth.audit.record({ actor: userId, orgId: null, action: 'auth.mfa.enrol', target: userId, outcome: 'success' });
      return { otpauthUri: result.otpauthUri, recoveryCodes: result.recoveryCodes };
    },
  });

  defineRoute(app, registry, {
    method: 'POST',
    url: '/api/auth/mfa/confirm',
    summary: 'Confirm TOTP enrolment with a first valid code',
    tags: TAGS,
    auth: 'required',
    body: CodeBody,
    handler: async ({ principal, body, request }) => {
      await withCheckedCode(auth, requireSessionUser(principal), request.ip, 'auth.mfa.confirm', (userId) => auth.mfa.confirm(userId, body.code));
      return { enabled: true };
    },
  });

  defineRoute(app, registry, {
    method: 'POST',
    url: '/api/auth/mfa/disable',
    summary: 'Remove the second factor; needs a current TOTP code',
    tags: TAGS,
    auth: 'required',
    body: CodeBody,
    handler: async ({ principal, body, request }) => {
      await withCheckedCode(auth, requireSessionUser(principal), request.ip, 'auth.mfa.disable', (userId) => auth.mfa.disable(userId, body.code));
      return { enabled: false };
    },
  });

  defineRoute(app, registry, {
    method: 'POST',
    url: '/api/auth/password',
    summary: "Change the signed-in user's password; revokes their other sessions",
    tags: TAGS,
    auth: 'required',
    body: PasswordChangeBody,
    handler: async ({ principal, body, request }) => {
      const userId = requireSessionUser(principal);
      const user = await auth.db.selectFrom('users').select(['email', 'password_hash']).where('id', '=', userId).executeTakeFirst();
      if (user === undefined) throw new AppError('session_expired');
      await refuseIfLocked(auth, user.email, request.ip, userId, 'auth.password.change');
      const currentOk = user.password_hash !== null ? await auth.passwords.verify(user.password_hash, body.current) : await auth.passwords.verifyDummy(body.current);
      if (!currentOk) {
        await auth.lockout.recordFailure(user.email, request.ip);
        await auth.audit.record({ actor: userId, orgId: null, action: 'auth.password.change', target: userId, outcome: 'failure' });
        throw new AppError('invalid_credentials', { message: 'The current password is incorrect.' });
      }
      const policy = checkPasswordPolicy(body.next, { email: user.email });
      if (!policy.ok) throw new AppError('validation_failed', { message: policy.reason, details: { field: 'body.next' } });
      await auth.db.updateTable('users').set({ password_hash: await auth.passwords.hash(body.next) }).where('id', '=', userId).execute();
      const revoked = await auth.sessions.revokeAllForUser(userId, principal.sessionId);
      await auth.audit.record({ actor: userId, orgId: null, action: 'auth.password.change', target: userId, outcome: 'success', details: { sessionsRevoked: revoked } });
      return { changed: true, sessionsRevoked: revoked };
    },
  });
}
