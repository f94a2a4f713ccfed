/** What the admin API returns for each record: metadata only, never a pepper, hash or token. */
import type { OrgRole, UserType } from '../../store/db/schema.js';

export interface OrgView {
  id: string;
  name: string;
  slug: string;
  createdAt: string;
}

export interface UserView {
  id: string;
  email: string;
  displayName: string;
  userType: UserType;
  platformAdmin: boolean;
  disabled: boolean;
  createdAt: string;
}

export interface MemberView {
  orgId: string;
  userId: string;
  email: string;
  displayName: string;
  role: OrgRole;
  createdAt: string;
}

export interface KeyView {
  id: string;
  orgId: string;
  userId: string;
  name: string;
  scopes: string[];
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
  createdBy: string;
}

export function iso(value: Date | string): string {
  return (value instanceof Date ? value : new Date(value)).toISOString();
}

export function orgView(row: { id: string; name: string; slug: string; created_at: Date }): OrgView {
  return { id: row.id, name: row.name, slug: row.slug, createdAt: iso(row.created_at) };
}

export function userView(row: {
  id: string;
  email: string;
  display_name: string;
  user_type: UserType;
  platform_admin: boolean;
  disabled: boolean;
  created_at: Date;
}): UserView {
  return {
    id: row.id,
    email: row.email,
    displayName: row.display_name,
    userType: row.user_type,
    platformAdmin: row.platform_admin,
    disabled: row.disabled,
    createdAt: iso(row.created_at),
  };
}

export function keyView(row: {
  id: string;
  org_id: string;
  user_id: string;
  name: string;
  scopes: string[];
  created_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
  created_by: string;
}): KeyView {
  return {
    id: row.id,
    orgId: row.org_id,
    userId: row.user_id,
    name: row.name,
    scopes: [...row.scopes],
    createdAt: iso(row.created_at),
    expiresAt: iso(row.expires_at),
    revokedAt: row.revoked_at === null ? null : iso(row.revoked_at),
    createdBy: row.created_by,
  };
}
