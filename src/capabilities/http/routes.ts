/**
 * The broker's service routes: issuing and revoking (per org, for principals holding
 * `capabilities:issue`) and the redeem call for platforms that run their own egress proxy
 * (service principals holding `capabilities:redeem`).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { AppError } from '../../core/errors.js';
import { scopesAllow } from '../../identity/tenancy/permissions.js';
import { defineRoute, type RouteRegistry } from '../../http/route.js';
import { GRANT_METHODS } from '../claims.js';
import { MAX_TOKEN_CHARS } from '../codec.js';
import { issueBodySchema, revokeBodySchema, type CapabilityBroker } from './broker.js';

const orgParams = z.object({ orgId: z.string().min(1).max(64) }).strict();

const redeemBodySchema = z
  .object({
    capability: z.string().min(1).max(MAX_TOKEN_CHARS + 1024),
    containerId: z.string().min(1).max(256).optional(),
    method: z.enum(GRANT_METHODS),
    url: z.string().min(1).max(16_384),
    proof: z.string().min(1).max(8192).optional(),
  })
  .strict();

export function registerCapabilityRoutes(app: FastifyInstance, registry: RouteRegistry, broker: CapabilityBroker): void {
  defineRoute(app, registry, {
    method: 'POST',
    url: '/api/orgs/:orgId/capabilities',
    summary: 'Issue a capability for a user of this organization (scope capabilities:issue)',
    tags: ['capabilities'],
    auth: 'required',
    params: orgParams,
    body: issueBodySchema,
    successStatus: 201,
    handler: async ({ principal, params, body }) => broker.issue(principal, params.orgId, body),
  });

  defineRoute(app, registry, {
    method: 'POST',
    url: '/api/orgs/:orgId/capabilities/revoke',
    summary: 'Revoke capabilities by capability id, session or container (scope capabilities:issue)',
    tags: ['capabilities'],
    auth: 'required',
    params: orgParams,
    body: revokeBodySchema,
    handler: async ({ principal, params, body }) => broker.revoke(principal, params.orgId, body),
  });

  defineRoute(app, registry, {
    method: 'POST',
    url: '/api/capabilities/redeem',
    summary: 'Redeem a capability for one request through your own egress proxy (scope capabilities:redeem)',
    tags: ['capabilities'],
    auth: 'required',
    body: redeemBodySchema,
    bodyLimit: 128 * 1024,
    handler: async ({ principal, body }) => {
      if (principal.kind === 'capability' || principal.userId === null || !scopesAllow(principal, 'capabilities:redeem')) {
        throw new AppError('forbidden');
      }
      const result = await broker.redeem(
        body.capability,
        {
          method: body.method,
          url: body.url,
          ...(body.containerId === undefined ? {} : { containerId: body.containerId }),
          ...(body.proof === undefined ? {} : { proof: body.proof }),
        },
        { via: 'service', actor: principal },
        // A platform's proxy redeems only its own org's capabilities; another org's token is
        // answered exactly like a forgery.
        (claims) => claims.orgId === principal.orgId,
      );
      if (!result.ok) throw new AppError(result.code, { details: { reason: result.reason } });
      const value = broker.credentialValue(result.grant);
      if (value === null) throw new AppError('dependency_unavailable', { details: { reason: 'credential_unconfigured' } });
      return {
        authorization: { header: result.grant.credential.header, value },
        routeClass: result.routeClass,
        grant: { name: result.grant.name, origin: result.grant.origin },
        capabilityId: result.claims.capabilityId,
        userId: result.claims.userId,
        sessionId: result.claims.sessionId,
        forwardPath: result.forwardPath,
        forwardQuery: result.forwardQuery,
      };
    },
  });
}
