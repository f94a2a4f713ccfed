/**
 * Users: created by platform admins with a fresh random pepper; read by themselves or a platform
 * admin (anyone else gets 404, so user ids cannot be probed); type and disabled flag changed by
 * platform admins. Rotating the pepper kills every key of the user at once: keys embed the pepper
 * they were signed with, and every replica drops its cached pepper on the event.
 */
import { AppError } from '../../core/errors.js';
import { randomBase64Url } from '../../core/crypto.js';
import { newId } from '../../core/ids.js';
import { isUniqueViolation } from '../../store/db/errors.js';
import type { Db, OrgRole, UserType } from '../../store/db/schema.js';
import type { Principal } from '../principal.js';
import { actorDetails, actorOf, OrgGate, spansOrgs } from './access.js';
import { can, scopesAllow } from './permissions.js';
import type { TenancyDeps } from './ports.js';
import { userView, type UserView } from './views.js';

/** 24 random bytes → 32 base64url characters, inside the key format's pepper bounds. */
export function newPepper(): string {
  return randomBase64Url(24);
}

export interface CreateUserInput {
  email: string;
  displayName?: string;
  userType?: UserType;
  platformAdmin?: boolean;
  /** Initial local-login password; only through UserService.create, never stored in the clear. */
  password?: string;
}

export interface UpdateUserInput {
  userType?: UserType;
  disabled?: boolean;
}

export interface MeView {
  principal: { kind: Principal['kind']; orgId: string | null; role: OrgRole | null; scopes: string[]; keyId: string | null };
  user: UserView | null;
  memberships: Array<{ orgId: string; role: OrgRole }>;
}

/** Inserts a user row; shared by the service and bootstrap. Emails are stored lowercased. */
export async function insertUser(db: Db, input: CreateUserInput): Promise<UserView> {
  const row = await db
    .insertInto('users')
    .values({
      id: newId('usr'),
      email: input.email.trim().toLowerCase(),
      display_name: input.displayName ?? '',
      user_type: input.userType ?? 'registered',
      platform_admin: input.platformAdmin ?? false,
      password_hash: null,
      pepper: newPepper(),
      disabled: false,
    })
    .returning(['id', 'email', 'display_name', 'user_type', 'platform_admin', 'disabled', 'created_at'])
    .executeTakeFirstOrThrow()
    .catch((err: unknown) => {
      if (isUniqueViolation(err)) throw new AppError('conflict', { message: 'A user with this email already exists.' });
      throw err;
    });
  return userView(row);
}

export class UserService {
  private readonly gate: OrgGate;

  constructor(private readonly deps: TenancyDeps) {
    this.gate = new OrgGate(deps.db, deps.audit);
  }

  async create(actor: Principal, input: CreateUserInput): Promise<UserView> {
    await this.gate.requirePlatform(actor, 'platform.users.create');
    const setPassword = this.deps.setPassword;
    if (input.password !== undefined && setPassword === undefined) {
      throw new AppError('validation_failed', { message: 'Local passwords are not enabled on this gateway.', details: { field: 'password' } });
    }
    const user = await insertUser(this.deps.db, input);
    if (input.password !== undefined && setPassword !== undefined) {
      const set = await setPassword(user.id, input.password);
      if (!set.ok) {
        // The policy can depend on the email, so it is checked after the insert; undo on refusal.
        await this.deps.db.deleteFrom('users').where('id', '=', user.id).execute();
        throw new AppError('validation_failed', { message: `The password is not acceptable: ${set.reason}`, details: { field: 'password' } });
      }
    }
    await this.record(actor, 'user.create', user.id, { userType: user.userType, platformAdmin: user.platformAdmin, localLogin: input.password !== undefined });
    return user;
  }

  async get(actor: Principal, userId: string): Promise<UserView> {
    this.assertVisible(actor, userId);
    return this.load(userId);
  }

  async update(actor: Principal, userId: string, input: UpdateUserInput): Promise<UserView> {
    this.assertVisible(actor, userId);
    await this.gate.requirePlatform(actor, 'platform.users.update', userId);
    if (input.disabled === true && userId === actor.userId) {
      throw new AppError('conflict', { message: 'You cannot disable your own account.' });
    }
    const patch: { user_type?: UserType; disabled?: boolean } = {};
    if (input.userType !== undefined) patch.user_type = input.userType;
    if (input.disabled !== undefined) patch.disabled = input.disabled;
    if (Object.keys(patch).length > 0) {
      const result = await this.deps.db.updateTable('users').set(patch).where('id', '=', userId).executeTakeFirst();
      if (result.numUpdatedRows === 0n) throw new AppError('not_found');
      await this.deps.events.userChanged(userId);
    }
    const user = await this.load(userId);
    await this.record(actor, 'user.update', userId, {
      ...(input.userType === undefined ? {} : { userType: input.userType }),
      ...(input.disabled === undefined ? {} : { disabled: input.disabled }),
    });
    return user;
  }

  /** Kills every key of the user: new pepper, DB rows marked revoked, caches told. */
  async rotatePepper(actor: Principal, userId: string): Promise<{ keysRevoked: number }> {
    this.assertVisible(actor, userId);
    if (actor.userId !== userId) await this.gate.requirePlatform(actor, 'platform.users.rotate_pepper', userId);
    // Revoking all of one's own keys is a key-management act: the credential must carry keys:write.
    else if (!scopesAllow(actor, 'keys:write')) await this.gate.deny(actor, null, 'user.rotate_pepper', userId);
    await this.load(userId);
    // The new pepper is written by the event itself (durable first, then broadcast), which is what
    // kills the keys; it goes first so a failure after it can only leave listings stale, never a
    // key alive. Marking the rows afterwards keeps listings honest.
    await this.deps.events.rotatePepper(userId);
    const updated = await this.deps.db
      .updateTable('api_keys')
      .set({ revoked_at: new Date(this.deps.clock.now()) })
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    const keysRevoked = Number(updated.numUpdatedRows);
    await this.record(actor, 'user.rotate_pepper', userId, { keysRevoked });
    return { keysRevoked };
  }

  async me(actor: Principal): Promise<MeView> {
    const principal = {
      kind: actor.kind,
      orgId: actor.orgId,
      role: actor.role,
      scopes: [...actor.scopes],
      keyId: actor.keyId ?? null,
    };
    if (actor.userId === null) return { principal, user: null, memberships: [] };
    const user = await this.load(actor.userId);
    const rows = await this.deps.db
      .selectFrom('memberships')
      .select(['org_id', 'role'])
      .where('user_id', '=', actor.userId)
      .orderBy('org_id')
      .limit(1000)
      .execute();
    // A key sees only its own org; a session (see spansOrgs) sees all of its person's memberships.
    const memberships = rows
      .filter((r) => spansOrgs(actor) || r.org_id === actor.orgId)
      .map((r) => ({ orgId: r.org_id, role: r.role }));
    return { principal, user, memberships };
  }

  /** Self, or a platform admin; everyone else is told the user does not exist. */
  private assertVisible(actor: Principal, userId: string): void {
    if (actor.userId === userId) return;
    if (!can(actor, 'platform.users.read', null)) throw new AppError('not_found');
  }

  private async load(userId: string): Promise<UserView> {
    const row = await this.deps.db
      .selectFrom('users')
      .select(['id', 'email', 'display_name', 'user_type', 'platform_admin', 'disabled', 'created_at'])
      .where('id', '=', userId)
      .executeTakeFirst();
    if (row === undefined) throw new AppError('not_found');
    return userView(row);
  }

  private async record(actor: Principal, action: string, target: string, details: Record<string, string | number | boolean>): Promise<void> {
    await this.deps.audit.record({
      actor: actorOf(actor),
      orgId: null,
      action,
      target,
      outcome: 'success',
      details: { ...actorDetails(actor), ...details },
    });
  }
}
