/**
 * Audit read API. An org's log is readable by the members whose role allows it (decided by the
 * tenancy permission table, injected as `canReadAudit`); the whole platform's log by platform
 * admins only. Someone outside the org gets 404, so the answer never reveals that the org exists.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { AppError } from '../core/errors.js';
import type { Principal } from '../identity/principal.js';
import { defineRoute, type RouteRegistry } from '../http/route.js';
import type { Db } from '../store/db/schema.js';
import { MAX_AUDIT_PAGE, queryAudit, type AuditQuery } from './query.js';

export interface AuditRouteDeps {
  db: Db;
  /** Whether the principal's role in orgId includes reading the audit log. */
  canReadAudit: (principal: Principal, orgId: string) => boolean | Promise<boolean>;
  /**
   * Whether the principal belongs to orgId (decides 403 vs 404 on refusal). Defaults to the org the
   * principal is bound to, which is right for keys; sessions span orgs and need the membership table.
   */
  isMember?: (principal: Principal, orgId: string) => boolean | Promise<boolean>;
}

const boundedText = z.string().min(1).max(256);

const filterQuery = z.object({
  actor: boundedText.optional(),
  action: z
    .string()
    .max(100)
    .regex(/^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?$/, 'an action such as key.revoke, or a prefix such as key.*')
    .optional(),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(MAX_AUDIT_PAGE).optional(),
  cursor: z.string().min(1).max(64).optional(),
});

const platformQuery = filterQuery.extend({ orgId: boundedText.optional() });

const orgParams = z.object({ orgId: boundedText });

function toAuditQuery(query: z.infer<typeof filterQuery>): AuditQuery {
  return {
    ...(query.actor === undefined ? {} : { actor: query.actor }),
    ...(query.action === undefined ? {} : { action: query.action }),
    ...(query.from === undefined ? {} : { from: new Date(query.from) }),
    ...(query.to === undefined ? {} : { to: new Date(query.to) }),
    ...(query.limit === undefined ? {} : { limit: query.limit }),
    ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
  };
}

export function registerAuditRoutes(app: FastifyInstance, registry: RouteRegistry, deps: AuditRouteDeps): void {
  defineRoute(app, registry, {
    method: 'GET',
    url: '/api/orgs/:orgId/audit',
    summary: "Read an organization's audit log, newest first",
    tags: ['audit'],
    auth: 'required',
    params: orgParams,
    query: filterQuery,
    handler: async ({ principal, params, query }) => {
      const allowed = await deps.canReadAudit(principal, params.orgId);
      if (!allowed) {
        // A member whose role lacks the permission learns only that; anyone else learns nothing.
        const isMember =
          deps.isMember === undefined ? principal.orgId === params.orgId && principal.role !== null : await deps.isMember(principal, params.orgId);
        throw new AppError(isMember ? 'forbidden' : 'not_found');
      }
      return queryAudit(deps.db, { ...toAuditQuery(query), orgId: params.orgId });
    },
  });

  defineRoute(app, registry, {
    method: 'GET',
    url: '/api/audit',
    summary: 'Read the whole platform audit log (platform admins)',
    tags: ['audit'],
    auth: 'required',
    query: platformQuery,
    handler: async ({ principal, query }) => {
      if (!principal.platformAdmin) throw new AppError('forbidden');
      return queryAudit(deps.db, { ...toAuditQuery(query), ...(query.orgId === undefined ? {} : { orgId: query.orgId }) });
    },
  });
}
