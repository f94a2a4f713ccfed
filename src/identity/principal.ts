/** Who is calling. Built once per request at the edge and passed by value to everything after. */
import type { OrgRole, UserType } from '../store/db/schema.js';

export type { OrgRole, UserType };
export type PrincipalUserType = 'anonymous' | UserType;

export type PrincipalKind = 'anonymous' | 'api_key' | 'oidc' | 'session' | 'capability';

export interface Principal {
  kind: PrincipalKind;
  /** Stable identity for limits: a key id, a user id, or `anon:{ip}`. */
  id: string;
  userId: string | null;
  orgId: string | null;
  /** The caller's current role in orgId (already narrowed for keys to what the creator may do now). */
  role: OrgRole | null;
  userType: PrincipalUserType;
  platformAdmin: boolean;
  /** Key or token scopes; an empty list on a session means "whatever the role allows". */
  scopes: readonly string[];
  keyId?: string;
  sessionId?: string;
  agentId?: string;
  capabilityId?: string;
  /** Client address after trusted-proxy resolution. */
  ip: string;
}

export function anonymousPrincipal(ip: string): Principal {
  return {
    kind: 'anonymous',
    id: `anon:${ip}`,
    userId: null,
    orgId: null,
    role: null,
    userType: 'anonymous',
    platformAdmin: false,
    scopes: [],
    ip,
  };
}

/** Resolves the user type from the flags a user carries, in the order privileged → paid → registered. */
export function resolveUserType(flags: { privileged?: boolean; paid?: boolean }): UserType {
  if (flags.privileged === true) return 'privileged';
  if (flags.paid === true) return 'paid';
  return 'registered';
}
