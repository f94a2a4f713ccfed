/**
 * The model gateway's org admin routes (Portcullis' own envelope): usage by org, user, key, model
 * and day, and bring-your-own provider keys (write-only: a key is never returned).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AuditSink } from '../audit/sink.js';
import { AppError } from '../core/errors.js';
import { defineRoute, type RouteRegistry } from '../http/route.js';
import type { Principal } from '../identity/principal.js';
import { principalInOrg } from '../identity/tenancy/access.js';
import { can } from '../identity/tenancy/permissions.js';
import type { Db } from '../store/db/index.js';
import type { ModelGateway } from './gateway.js';
import type { OrgProviderKeys } from './provider-keys.js';
import { USAGE_GROUPS, queryUsage, type UsageGroup } from './usage-queries.js';

export interface ModelAdminRoutesDeps {
  gateway: ModelGateway;
  db?: Db;
  orgKeys?: OrgProviderKeys;
  audit?: AuditSink;
}

const orgParams = z.object({ orgId: z.string().min(1).max(64) });
const providerParams = z.object({ orgId: z.string().min(1).max(64), providerId: z.string().min(1).max(64) });
const usageQuerySchema = z.object({
  groupBy: z
    .string()
    .max(64)
    .default('model')
    .transform((value, ctx) => {
      const groups = value === '' ? [] : value.split(',');
      for (const group of groups) {
        if (!(USAGE_GROUPS as readonly string[]).includes(group)) {
          ctx.addIssue({ code: 'custom', message: `must be a comma-separated list of ${USAGE_GROUPS.join(', ')}` });
          return z.NEVER;
        }
      }
      return groups as UsageGroup[];
    }),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
});
const keyBody = z.object({ apiKey: z.string().min(1).max(4096).regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces') }).strict();

/** Cross-org requests are 404 (never reveal another org); in the org without the permission, 403. */
async function authorizeOrg(db: Db | undefined, principal: Principal, orgId: string, action: 'keys.list_any' | 'providers.manage'): Promise<void> {
  const inOrg = db === undefined ? (principal.orgId === orgId ? principal : null) : await principalInOrg(db, principal, orgId);
  if (inOrg === null) throw new AppError('not_found');
  if (!can(inOrg, action, orgId)) throw new AppError('forbidden');
}

export function registerModelAdminRoutes(app: FastifyInstance, registry: RouteRegistry, deps: ModelAdminRoutesDeps): void {
  const { db, orgKeys, gateway } = deps;
  if (db !== undefined) {
    defineRoute(app, registry, {
      method: 'GET',
      url: '/api/orgs/:orgId/usage',
      summary: 'Model usage of an org, grouped by org, user, key, model and/or day',
      tags: ['models'],
      auth: 'required',
      params: orgParams,
      query: usageQuerySchema,
      handler: async ({ principal, params, query }) => {
        // Usage is per key and per user, so it is shown to whoever may list every key of the org.
        await authorizeOrg(db, principal, params.orgId, 'keys.list_any');
        const to = query.to === undefined ? new Date() : new Date(query.to);
        const from = query.from === undefined ? new Date(to.getTime() - 30 * 24 * 60 * 60 * 1000) : new Date(query.from);
        const rows = await queryUsage(db, { orgId: params.orgId, groupBy: query.groupBy, from, to });
        return { from: from.toISOString(), to: to.toISOString(), groupBy: query.groupBy, data: rows };
      },
    });
  }
  if (orgKeys === undefined) return;
  const knownProvider = (providerId: string): void => {
    if (gateway.catalogue.provider(providerId) === undefined) throw new AppError('not_found', { message: 'No such provider.' });
  };
  defineRoute(app, registry, {
    method: 'PUT',
    url: '/api/orgs/:orgId/providers/:providerId/key',
    summary: "Set the org's own key for a provider (write-only; never returned)",
    tags: ['models'],
    auth: 'required',
    params: providerParams,
    body: keyBody,
    successStatus: 204,
    handler: async ({ principal, params, body, reply }) => {
      await authorizeOrg(db, principal, params.orgId, 'providers.manage');
      knownProvider(params.providerId);
      await orgKeys.put(params.orgId, params.providerId, body.apiKey, principal.userId ?? principal.id);
      await deps.audit?.record({ actor: principal.userId ?? principal.id, orgId: params.orgId, action: 'provider_key.set', target: params.providerId, outcome: 'success' });
      reply.header('cache-control', 'no-store');
      return undefined;
    },
  });
  defineRoute(app, registry, {
    method: 'DELETE',
    url: '/api/orgs/:orgId/providers/:providerId/key',
    summary: "Remove the org's own key for a provider",
    tags: ['models'],
    auth: 'required',
    params: providerParams,
    successStatus: 204,
    handler: async ({ principal, params }) => {
      await authorizeOrg(db, principal, params.orgId, 'providers.manage');
      if (!(await orgKeys.remove(params.orgId, params.providerId))) throw new AppError('not_found');
      await deps.audit?.record({ actor: principal.userId ?? principal.id, orgId: params.orgId, action: 'provider_key.remove', target: params.providerId, outcome: 'success' });
      return undefined;
    },
  });
  defineRoute(app, registry, {
    method: 'GET',
    url: '/api/orgs/:orgId/providers',
    summary: 'Providers and whether the org has its own key for each (keys are never shown)',
    tags: ['models'],
    auth: 'required',
    params: orgParams,
    handler: async ({ principal, params }) => {
      await authorizeOrg(db, principal, params.orgId, 'providers.manage');
      const own = new Map((await orgKeys.list(params.orgId)).map((row) => [row.providerId, row.updatedAt]));
      return { data: gateway.catalogue.providers().map((provider) => ({ id: provider.id, kind: provider.kind, ownKey: own.has(provider.id), ownKeyUpdatedAt: own.get(provider.id) ?? null })) };
    },
  });
}
