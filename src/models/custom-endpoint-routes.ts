/**
 * Admin routes for an org's custom OpenAI-compatible endpoints. The base URL is checked at write
 * time (scheme, userinfo, query, resolved address) and again on every connection; the key is
 * write-only. Cross-org requests are 404 so another org's endpoints are never revealed; without
 * `providers.manage` in the org, 403. Every change reaches every replica's model resolver at once.
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
import { customModelsSchema, type CustomEndpointView, type CustomModel, type OrgCustomEndpoints } from './custom-endpoints-store.js';
import type { ModelResolver } from './model-resolver.js';

export interface CustomEndpointRoutesDeps {
  db: Db;
  endpoints: OrgCustomEndpoints;
  /** Told of every change (so every replica reloads the org's models) and asked which aliases the catalogue owns. */
  models: Pick<ModelResolver, 'changed' | 'isCatalogueAlias'>;
  audit?: AuditSink;
  /** The operator's `models.egress` rules, with the DNS the write-time check uses. */
  egress: { allowLoopback: boolean; allowPrivate: boolean; allowHttpHosts: readonly string[]; resolver?: Resolver };
}

/** Bounds what one org can make every replica hold in memory (16 × 100 models). */
export const MAX_ENDPOINTS_PER_ORG = 16;

const orgParams = z.object({ orgId: z.string().min(1).max(64) });
// At most 48 characters, so `custom:<id>` fits the usage record's provider column.
const params = orgParams.extend({ endpointId: z.string().min(1).max(48).regex(/^[a-z0-9][a-z0-9_-]*$/, 'use lower-case letters, digits, _ and -') });
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

/**
 * Why this write would make the org's models ambiguous or re-target a stored key; null when it is fine.
 * A stored key follows its endpoint only to the same origin: sending it to a new host needs it again.
 */
function conflictOf(endpointId: string, baseUrl: string, keyGiven: boolean, models: readonly CustomModel[], existing: readonly CustomEndpointView[], deps: CustomEndpointRoutesDeps): string | null {
  const others = existing.filter((endpoint) => endpoint.endpointId !== endpointId);
  if (others.length >= MAX_ENDPOINTS_PER_ORG) return `An organization has at most ${MAX_ENDPOINTS_PER_ORG} custom endpoints.`;
  for (const model of models) {
    if (deps.models.isCatalogueAlias(model.alias)) return `The alias "${model.alias}" is a model of the platform catalogue.`;
    const owner = others.find((endpoint) => endpoint.models.some((m) => m.alias === model.alias));
    if (owner !== undefined) return `The alias "${model.alias}" is already served by endpoint "${owner.endpointId}".`;
  }
  const current = existing.find((endpoint) => endpoint.endpointId === endpointId);
  if (current?.hasKey === true && !keyGiven && originOf(current.baseUrl) !== originOf(baseUrl)) {
    return 'The endpoint moves to another origin: send apiKey again (or null to clear it).';
  }
  return null;
}

/** A stored URL that no longer parses has no origin, so it never matches (the key must be sent again). */
function originOf(url: string): string | null {
  return URL.canParse(url) ? new URL(url).origin : null;
}

/** Aliases the catalogue took over after they were stored: unreachable through this endpoint. */
function withShadowed(view: CustomEndpointView, deps: CustomEndpointRoutesDeps): CustomEndpointView & { shadowedAliases: string[] } {
  return { ...view, shadowedAliases: view.models.filter((model) => deps.models.isCatalogueAlias(model.alias)).map((model) => model.alias) };
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
      const conflict = await deps.endpoints.put(p.orgId, p.endpointId, { baseUrl: check.url, models: b.models, ...(b.apiKey === undefined ? {} : { apiKey: b.apiKey }) }, actor, (existing) =>
        conflictOf(p.endpointId, check.url, b.apiKey !== undefined, b.models, existing, deps),
      );
      if (conflict !== null) throw new AppError('conflict', { message: conflict });
      await deps.models.changed(p.orgId);
      const key = b.apiKey === undefined ? 'kept' : b.apiKey === null ? 'cleared' : 'set';
      await deps.audit?.record({ actor, orgId: p.orgId, action: 'custom_endpoint.set', target: p.endpointId, outcome: 'success', details: { origin: new URL(check.url).origin, models: b.models.length, key } });
      reply.header('cache-control', 'no-store');
      return undefined;
    },
  });
  defineRoute(app, registry, {
    method: 'GET',
    url: '/api/orgs/:orgId/endpoints',
    summary: "The org's custom endpoints (whether a key is set, never the key)",
    tags: ['models'],
    auth: 'required',
    params: orgParams,
    handler: async ({ principal, params: p }) => {
      await authorize(deps.db, principal, p.orgId);
      return { data: (await deps.endpoints.list(p.orgId)).map((view) => withShadowed(view, deps)) };
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
      return withShadowed(view, deps);
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
      await deps.models.changed(p.orgId);
      await deps.audit?.record({ actor: principal.userId ?? principal.id, orgId: p.orgId, action: 'custom_endpoint.remove', target: p.endpointId, outcome: 'success' });
      return undefined;
    },
  });
}
