/**
 * Admin API for live admission configuration.
 *
 * - `GET/PUT /api/orgs/:orgId/admission`: an org's overrides. Reading and changing both need
 *   settings management in that org (`can(principal, 'settings.manage', orgId)`); a member lacking
 *   it gets 403, anyone outside the org 404 so the answer never reveals that the org exists.
 * - `GET/PUT /api/admission`: the platform-wide overrides (default rate limits, backpressure,
 *   circuit settings, route patterns), for platform admins (a platform admin's session, or a key of
 *   theirs with the `admin` scope); anyone else gets 403 and the denial is audited.
 *
 * A change is stored, audited with its actor and broadcast by LiveAdmissionConfig.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { AppError } from '../core/errors.js';
import { defineRoute, type RouteRegistry } from '../http/route.js';
import type { AuditSink } from '../audit/sink.js';
import type { Principal } from '../identity/principal.js';
import { can, scopesAllow } from '../identity/tenancy/permissions.js';
import { orgOverridesSchema } from './config.js';
import type { LiveAdmissionConfig } from './live-config.js';
import { platformOverridesSchema } from './platform-config.js';

const orgParams = z.object({ orgId: z.string().min(1).max(64) });

function actorOf(principal: Principal): string {
  return principal.keyId !== undefined ? `key:${principal.keyId}` : (principal.userId ?? principal.id);
}

export interface AdmissionRouteDeps {
  live: LiveAdmissionConfig;
  /**
   * The principal with its CURRENT role in orgId, or null when not a member (sessions span orgs,
   * so the role that counts is read from memberships). Defaults to the org the principal is bound to.
   */
  inOrg?: (principal: Principal, orgId: string) => Promise<Principal | null>;
  audit?: AuditSink;
}

/** The same rule as the platform actions of tenancy: a platform admin acting with admin rights. */
function isPlatformAdmin(principal: Principal): boolean {
  return principal.userId !== null && principal.platformAdmin && scopesAllow(principal, 'admin');
}

export function registerAdmissionRoutes(app: FastifyInstance, registry: RouteRegistry, deps: AdmissionRouteDeps): void {
  const authorize = async (principal: Principal, orgId: string): Promise<void> => {
    const inOrg = deps.inOrg === undefined ? (principal.orgId === orgId && principal.role !== null ? principal : null) : await deps.inOrg(principal, orgId);
    if (inOrg !== null && can(inOrg, 'settings.manage', orgId)) return;
    // A member whose role lacks the permission learns only that; anyone else learns nothing.
    throw new AppError(inOrg === null ? 'not_found' : 'forbidden');
  };

  const view = (orgId: string) => {
    const { version, overrides } = deps.live.overridesFor(orgId);
    const base = deps.live.config().rateLimits;
    return {
      orgId,
      version,
      overrides,
      effective: {
        anonymous: overrides.rateLimits.anonymous ?? base.anonymous,
        registered: overrides.rateLimits.registered ?? base.registered,
        paid: overrides.rateLimits.paid ?? base.paid,
        privileged: overrides.rateLimits.privileged ?? base.privileged,
      },
    };
  };

  defineRoute(app, registry, {
    method: 'GET',
    url: '/api/orgs/:orgId/admission',
    summary: "Read an organization's admission overrides (rate limits per user type and per key)",
    tags: ['admission'],
    auth: 'required',
    params: orgParams,
    handler: async ({ principal, params }) => {
      await authorize(principal, params.orgId);
      return view(params.orgId);
    },
  });

  defineRoute(app, registry, {
    method: 'PUT',
    url: '/api/orgs/:orgId/admission',
    summary: "Replace an organization's admission overrides; applied on every replica within 1 s",
    tags: ['admission'],
    auth: 'required',
    params: orgParams,
    body: orgOverridesSchema,
    bodyLimit: 256 * 1024,
    handler: async ({ principal, params, body }) => {
      await authorize(principal, params.orgId);
      await deps.live.update(params.orgId, body, actorOf(principal));
      return view(params.orgId);
    },
  });

  const requirePlatformAdmin = async (principal: Principal, action: 'read' | 'update'): Promise<void> => {
    if (isPlatformAdmin(principal)) return;
    await deps.audit
      ?.record({ actor: actorOf(principal), orgId: null, action: `settings.${action}`, target: 'admission.platform', outcome: 'denied', details: {} })
      .catch(() => undefined);
    throw new AppError('forbidden');
  };

  const platformView = () => {
    const { version, overrides } = deps.live.platformOverrides();
    const effective = deps.live.config();
    return {
      version,
      overrides,
      effective: {
        rateLimits: effective.rateLimits,
        backpressure: {
          concurrencyPerReplica: effective.backpressure.concurrencyPerReplica,
          capacityBuffer: effective.backpressure.capacityBuffer,
          thresholds: effective.backpressure.thresholds,
        },
        circuit: effective.circuit,
        storeCircuit: effective.storeCircuit,
        routes: effective.routes,
      },
    };
  };

  defineRoute(app, registry, {
    method: 'GET',
    url: '/api/admission',
    summary: 'Read the platform-wide admission overrides and the effective settings (platform admins)',
    tags: ['admission'],
    auth: 'required',
    handler: async ({ principal }) => {
      await requirePlatformAdmin(principal, 'read');
      return platformView();
    },
  });

  defineRoute(app, registry, {
    method: 'PUT',
    url: '/api/admission',
    summary: 'Replace the platform-wide admission overrides; validated as a whole, applied on every replica within 1 s',
    tags: ['admission'],
    auth: 'required',
    body: platformOverridesSchema,
    bodyLimit: 256 * 1024,
    handler: async ({ principal, body }) => {
      await requirePlatformAdmin(principal, 'update');
      await deps.live.updatePlatform(body, actorOf(principal));
      return platformView();
    },
  });
}
