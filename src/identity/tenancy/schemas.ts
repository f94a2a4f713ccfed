/** zod schemas of the admin API: bounded strings, id formats, strict objects (unknown fields refused). */
import { z } from 'zod';
import { ROLES, SCOPES } from './permissions.js';

const idOf = (prefix: string) => z.string().regex(new RegExp(`^${prefix}_[A-Za-z0-9_-]{16}$`), `must be a ${prefix}_ id`);

export const orgId = idOf('org');
export const userId = idOf('usr');
export const keyId = idOf('key');
/** Chosen by the platform; `/` is excluded because it separates org and instance in the row id. */
export const instanceId = z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'letters, digits, dot, underscore or dash, at most 128');

export const role = z.enum(ROLES);
export const userType = z.enum(['registered', 'paid', 'privileged']);
export const scope = z.enum(SCOPES);
export const scopes = z.array(scope).min(1).max(SCOPES.length);
/** Lifetimes in seconds; the signer applies the configured maximum on top of this hard bound. */
export const ttlSeconds = z.number().int().min(60).max(366 * 24 * 3600);

export const orgParams = z.object({ orgId }).strict();
export const memberParams = z.object({ orgId, userId }).strict();
export const keyParams = z.object({ orgId, keyId }).strict();
export const runtimeParams = z.object({ orgId, instanceId }).strict();
export const userParams = z.object({ userId }).strict();

export const createOrgBody = z
  .object({
    name: z.string().trim().min(1).max(200),
    /** Derived from the name when absent. */
    slug: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and dashes, at most 63').optional(),
    ownerUserId: userId.optional(),
  })
  .strict();

const email = z.string().trim().min(3).max(320).pipe(z.email());

export const addMemberBody = z
  .object({ userId: userId.optional(), email: email.optional(), role })
  .strict()
  .refine((b) => (b.userId === undefined) !== (b.email === undefined), 'give exactly one of userId or email');

export const changeRoleBody = z.object({ role }).strict();

export const ttlDays = z.number().int().min(1).max(366);

/** Scopes default to the data plane (`models`, `tasks`); give either ttlSeconds or ttlDays. */
export const createKeyBody = z
  .object({
    name: z.string().trim().min(1).max(200),
    scopes: scopes.optional(),
    ttlSeconds: ttlSeconds.optional(),
    ttlDays: ttlDays.optional(),
    userId: userId.optional(),
  })
  .strict()
  .refine((b) => b.ttlSeconds === undefined || b.ttlDays === undefined, 'give ttlSeconds or ttlDays, not both');

export const listKeysQuery = z
  .object({
    userId: userId.optional(),
    includeRevoked: z.enum(['true', 'false']).optional(),
  })
  .strict();

export const mintRuntimeBody = z.object({ scopes: scopes.optional(), ttlSeconds: ttlSeconds.optional() }).strict();

export const createUserBody = z
  .object({
    email,
    displayName: z.string().trim().max(200).optional(),
    userType: userType.optional(),
    platformAdmin: z.boolean().optional(),
    /** Initial password for local login; the local-auth policy decides whether it is acceptable. */
    password: z.string().min(1).max(256).optional(),
  })
  .strict();

export const updateUserBody = z
  .object({ userType: userType.optional(), disabled: z.boolean().optional() })
  .strict()
  .refine((b) => b.userType !== undefined || b.disabled !== undefined, 'give userType or disabled');

/** Token-bearing answers must not be cached by anything in between. */
export const NO_STORE = 'no-store';
