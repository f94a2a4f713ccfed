/**
 * The admin API: orgs, members and roles, keys, runtime credentials, users and /api/me. Handlers
 * only parse and delegate; every authorization decision is inside the services (one place, the
 * same for the CLI, the HTTP API and anything else that calls them).
 */
import type { FastifyInstance } from 'fastify';
import { defineRoute, type RouteRegistry } from '../../http/route.js';
import { KeyService } from './keys.js';
import { MembershipService } from './memberships.js';
import { OrgService } from './orgs.js';
import type { TenancyDeps } from './ports.js';
import { RuntimeKeyService } from './runtimes.js';
import * as s from './schemas.js';
import { UserService } from './users.js';

export interface TenancyRouteDeps extends TenancyDeps {
  /** Server-side bound on minting a runtime key (default 5 s). */
  runtimeMintTimeoutMs?: number;
}

export function registerTenancyRoutes(app: FastifyInstance, registry: RouteRegistry, deps: TenancyRouteDeps): void {
  const orgs = new OrgService(deps);
  const users = new UserService(deps);
  const members = new MembershipService(deps);
  const keys = new KeyService(deps);
  const runtimes = new RuntimeKeyService(deps, keys, deps.runtimeMintTimeoutMs);
  const tags = ['admin'];

  defineRoute(app, registry, {
    method: 'POST', url: '/api/orgs', summary: 'Create an organization (platform admin)', tags, auth: 'required',
    body: s.createOrgBody, successStatus: 201,
    handler: ({ principal, body }) => orgs.create(principal, body),
  });
  defineRoute(app, registry, {
    method: 'GET', url: '/api/orgs', summary: 'List the organizations the caller belongs to', tags, auth: 'required',
    handler: async ({ principal }) => ({ orgs: await orgs.listFor(principal) }),
  });
  defineRoute(app, registry, {
    method: 'GET', url: '/api/orgs/:orgId', summary: 'Read an organization', tags, auth: 'required',
    params: s.orgParams,
    handler: ({ principal, params }) => orgs.get(principal, params.orgId),
  });
  defineRoute(app, registry, {
    method: 'DELETE', url: '/api/orgs/:orgId', summary: 'Delete an organization (owner)', tags, auth: 'required',
    params: s.orgParams, successStatus: 204,
    handler: ({ principal, params }) => orgs.delete(principal, params.orgId),
  });

  defineRoute(app, registry, {
    method: 'GET', url: '/api/orgs/:orgId/members', summary: 'List members and roles', tags, auth: 'required',
    params: s.orgParams,
    handler: async ({ principal, params }) => ({ members: await members.list(principal, params.orgId) }),
  });
  defineRoute(app, registry, {
    method: 'POST', url: '/api/orgs/:orgId/members', summary: 'Add a member', tags, auth: 'required',
    params: s.orgParams, body: s.addMemberBody, successStatus: 201,
    handler: ({ principal, params, body }) => members.add(principal, params.orgId, body),
  });
  defineRoute(app, registry, {
    method: 'PATCH', url: '/api/orgs/:orgId/members/:userId', summary: "Change a member's role", tags, auth: 'required',
    params: s.memberParams, body: s.changeRoleBody,
    handler: ({ principal, params, body }) => members.changeRole(principal, params.orgId, params.userId, body.role),
  });
  defineRoute(app, registry, {
    method: 'DELETE', url: '/api/orgs/:orgId/members/:userId', summary: 'Remove a member (their keys in the org are revoked)', tags, auth: 'required',
    params: s.memberParams, successStatus: 204,
    handler: ({ principal, params }) => members.remove(principal, params.orgId, params.userId),
  });

  defineRoute(app, registry, {
    method: 'POST', url: '/api/orgs/:orgId/keys', summary: 'Create an API key (the token is shown once)', tags, auth: 'required',
    params: s.orgParams, body: s.createKeyBody, successStatus: 201,
    handler: async ({ principal, params, body, reply }) => {
      reply.header('cache-control', s.NO_STORE);
      return keys.create(principal, params.orgId, body);
    },
  });
  defineRoute(app, registry, {
    method: 'GET', url: '/api/orgs/:orgId/keys', summary: 'List API key metadata', tags, auth: 'required',
    params: s.orgParams, query: s.listKeysQuery,
    handler: async ({ principal, params, query }) => ({
      keys: await keys.list(principal, params.orgId, {
        ...(query.userId === undefined ? {} : { userId: query.userId }),
        includeRevoked: query.includeRevoked === 'true',
      }),
    }),
  });
  defineRoute(app, registry, {
    method: 'DELETE', url: '/api/orgs/:orgId/keys/:keyId', summary: 'Revoke an API key', tags, auth: 'required',
    params: s.keyParams,
    handler: async ({ principal, params }) => ({ key: await keys.revoke(principal, params.orgId, params.keyId) }),
  });
  defineRoute(app, registry, {
    method: 'POST', url: '/api/orgs/:orgId/runtimes/:instanceId/credential', summary: 'Mint a fresh key for an agent runtime instance', tags, auth: 'required',
    params: s.runtimeParams, body: s.mintRuntimeBody, successStatus: 201,
    handler: async ({ principal, params, body, reply }) => {
      reply.header('cache-control', s.NO_STORE);
      return runtimes.mint(principal, params.orgId, params.instanceId, body);
    },
  });

  defineRoute(app, registry, {
    method: 'POST', url: '/api/users', summary: 'Create a user (platform admin)', tags, auth: 'required',
    body: s.createUserBody, successStatus: 201,
    handler: ({ principal, body }) => users.create(principal, body),
  });
  defineRoute(app, registry, {
    method: 'GET', url: '/api/users/:userId', summary: 'Read a user (self or platform admin)', tags, auth: 'required',
    params: s.userParams,
    handler: ({ principal, params }) => users.get(principal, params.userId),
  });
  defineRoute(app, registry, {
    method: 'PATCH', url: '/api/users/:userId', summary: "Change a user's type or disabled flag (platform admin)", tags, auth: 'required',
    params: s.userParams, body: s.updateUserBody,
    handler: ({ principal, params, body }) => users.update(principal, params.userId, body),
  });
  defineRoute(app, registry, {
    method: 'POST', url: '/api/users/:userId/rotate-pepper', summary: "Revoke all of a user's keys by rotating their pepper", tags, auth: 'required',
    params: s.userParams,
    handler: ({ principal, params }) => users.rotatePepper(principal, params.userId),
  });
  defineRoute(app, registry, {
    method: 'GET', url: '/api/me', summary: 'Who the caller is', tags, auth: 'required',
    handler: ({ principal }) => users.me(principal),
  });
}
