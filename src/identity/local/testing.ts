/**
 * Test helpers for local sign-in: an Authenticate that resolves only session cookies (what the
 * real authenticator does for the cookie source), and a user seeder.
 */
import type { Authenticate } from '../../http/app.js';
import { newId } from '../../core/ids.js';
import { randomBase64Url } from '../../core/crypto.js';
import type { Db, UserType } from '../../store/db/schema.js';
import { anonymousPrincipal } from '../principal.js';
import type { PasswordHasher } from './password.js';
import type { SessionResolver } from './session-resolver.js';

export function cookieSessionAuthenticate(resolveSession: SessionResolver): Authenticate {
  return async (credential, context) => {
    if (credential === null) return { ok: true, principal: context.allowAnonymous ? anonymousPrincipal(context.ip) : null };
    if (credential.source !== 'cookie') return { ok: false, code: 'invalid_token' };
    return resolveSession(credential.token, { ip: context.ip, method: context.method, csrfToken: context.csrfToken });
  };
}

export interface SeededUser {
  id: string;
  email: string;
  password: string;
}

export async function seedLocalUser(
  db: Db,
  passwords: PasswordHasher,
  options: { email?: string; password?: string; userType?: UserType; platformAdmin?: boolean; disabled?: boolean } = {},
): Promise<SeededUser> {
  const id = newId('usr');
  const email = options.email ?? `${id.slice(4).toLowerCase()}@example.test`;
  const password = options.password ?? 'violet tangerine orbit 42';
  await db
    .insertInto('users')
    .values({
      id,
      email,
      display_name: 'Test User',
      user_type: options.userType ?? 'registered',
      platform_admin: options.platformAdmin ?? false,
      password_hash: await passwords.hash(password),
      pepper: randomBase64Url(16),
      disabled: options.disabled ?? false,
    })
    .execute();
  return { id, email, password };
}
