/**
 * Admin routes for an org's custom OpenAI-compatible endpoints. The base URL is checked at write
 * time (scheme, userinfo, query, resolved address); the key is write-only. Cross-org requests are
 * 404 so another org's endpoints are never revealed; without `providers.manage` in the org, 403.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AuditSink } from '../audit/sink.js';
import { AppError } from '../core/errors.js';
import type { Resolver } from '../egress/index.js';
import { defineRoute, type RouteRegistry } from '../http/route.js';
import type { Principal } from '../identity/principal.js';
import { principalInOrg } from '../identity/tenancy/access.js';
import { can } from '../identity/tenancy/permissions.js';
import type { Db } from '../store/db/index.js';
import { checkCustomEndpoint } from './custom-endpoints.js';
import { customModelsSchema, type OrgCustomEndpoints } from './custom-endpoints-store.js';

export interface CustomEndpointRoutesDeps {
  db: Db;
  endpoints: OrgCustomEndpoints;
  audit?: AuditSink;
  /** The operator's `models.egress` allowances; plain http only where local simulators are used. */
  egress: { allowLoopback: boolean; allowPrivate: boolean; allowHttp?: boolean; resolver?: Resolver };
}

const params = z.object({ orgId: z.string().min(1).max(64), endpointId: z.string().min(1).max(64).regex(/^[a-z0-9][a-z0-9_-]*$/) });
const body = z
  .object({
    baseUrl: z.string().min(1).max(2048),
    apiKey: z.string().min(1).max(4096).regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces').nullable().optional(),
    models: customModelsSchema,
  })
  .strict();

async function authorize(db: Db, principal: Principal, orgId: string): Promise<void> {
  const inOrg = await principalInOrg(db, principal, orgId);
  if (inOrg === null) throw new AppError('not_found');
  if (!can(inOrg, 'providers.manage', orgId)) throw new AppError('forbidden');
}

export function registerCustomEndpointRoutes(app: FastifyInstance, registry: RouteRegistry, deps: CustomEndpointRoutesDeps): void {
  const url = '/api/orgs/:orgId/endpoints/:endpointId';
  defineRoute(app, registry, {
    method: 'PUT',
    url,
    summary: 'Create or replace a custom OpenAI-compatible endpoint of the org (key write-only)',
    tags: ['models'],
    auth: 'required',
    params,
    body,
    successStatus: 204,
    handler: async ({ principal, params: p, body: b, reply }) => {
      await authorize(deps.db, principal, p.orgId);
      const check = await checkCustomEndpoint(b.baseUrl, deps.egress);
      if (!check.ok) throw new AppError('validation_failed', { message: `The endpoint URL is not allowed (${check.reason}).` });
      const actor = principal.userId ?? principal.id;
      await deps.endpoints.put(p.orgId, p.endpointId, { baseUrl: check.url, models: b.models, ...(b.apiKey === undefined ? {} : { apiKey: b.apiKey }) }, actor);
      await deps.audit?.record({ actor, orgId: p.orgId, action: 'custom_endpoint.set', target: p.endpointId, outcome: 'success' });
      reply.header('cache-control', 'no-store');
      return undefined;
    },
  });
  defineRoute(app, registry, {
    method: 'GET',
    url,
    summary: 'A custom endpoint of the org (whether a key is set, never the key)',
    tags: ['models'],
    auth: 'required',
    params,
    handler: async ({ principal, params: p }) => {
      await authorize(deps.db, principal, p.orgId);
      const view = await deps.endpoints.get(p.orgId, p.endpointId);
      if (view === null) throw new AppError('not_found');
      return view;
    },
  });
  defineRoute(app, registry, {
    method: 'DELETE',
    url,
    summary: 'Remove a custom endpoint of the org',
    tags: ['models'],
    auth: 'required',
    params,
    successStatus: 204,
    handler: async ({ principal, params: p }) => {
      await authorize(deps.db, principal, p.orgId);
      if (!(await deps.endpoints.remove(p.orgId, p.endpointId))) throw new AppError('not_found');
      await deps.audit?.record({ actor: principal.userId ?? principal.id, orgId: p.orgId, action: 'custom_endpoint.remove', target: p.endpointId, outcome: 'success' });
      return undefined;
    },
  });
}
