/**
 * The model gateway's HTTP surface: OpenAI- and Anthropic-shaped `/v1` routes (authentication
 * optional, so free models work anonymously; errors in the provider's envelope) and the org admin
 * routes for usage and bring-your-own provider keys (Portcullis' own envelope).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AuditSink } from '../audit/sink.js';
import { AppError } from '../core/errors.js';
import type { Authenticate } from '../http/app.js';
import { MAX_CREDENTIAL_LENGTH } from '../http/credentials.js';
import { sendError, type ErrorRenderer } from '../http/errors.js';
import { defineRoute, type RouteMeta, type RouteRegistry } from '../http/route.js';
import { anonymousPrincipal, type Principal } from '../identity/principal.js';
import { principalInOrg } from '../identity/tenancy/access.js';
import { can } from '../identity/tenancy/permissions.js';
import type { Db } from '../store/db/index.js';
import { anthropicErrorBody, openAiErrorBody } from './envelopes.js';
import type { ModelGateway } from './gateway.js';
import type { OrgProviderKeys } from './provider-keys.js';
import { isRecord, type Operation } from './providers/types.js';
import { USAGE_GROUPS, queryUsage, type UsageGroup } from './usage-queries.js';

export interface ModelRoutesDeps {
  gateway: ModelGateway;
  /** Used to accept the Anthropic SDK's `x-api-key` header as the Portcullis credential. */
  authenticate?: Authenticate;
  db?: Db;
  orgKeys?: OrgProviderKeys;
  audit?: AuditSink;
  /** Largest transcription upload. Default 25 MiB (the providers' own limit). */
  maxAudioBytes?: number;
}

const MODEL_ROUTE_META: RouteMeta = { auth: 'optional', streaming: false };
const FORWARDED_HEADERS = ['anthropic-version', 'anthropic-beta'] as const;

interface JsonRoute {
  url: string;
  operation: Operation;
  summary: string;
  anthropic: boolean;
}

const JSON_ROUTES: JsonRoute[] = [
  { url: '/v1/chat/completions', operation: 'chat', summary: 'OpenAI chat completions (JSON or SSE)', anthropic: false },
  { url: '/v1/completions', operation: 'completions', summary: 'OpenAI completions, with FIM suffix', anthropic: false },
  { url: '/v1/responses', operation: 'responses', summary: 'OpenAI Responses API (JSON or SSE)', anthropic: false },
  { url: '/v1/embeddings', operation: 'embeddings', summary: 'OpenAI embeddings', anthropic: false },
  { url: '/v1/messages', operation: 'messages', summary: 'Anthropic messages (JSON or SSE)', anthropic: true },
];

function renderer(anthropic: boolean): ErrorRenderer {
  return anthropic ? anthropicErrorBody : openAiErrorBody;
}

async function callerOf(request: FastifyRequest, deps: ModelRoutesDeps, acceptApiKeyHeader: boolean): Promise<Principal> {
  const principal = request.principal ?? anonymousPrincipal(request.ip);
  const header = request.headers['x-api-key'];
  if (principal.kind !== 'anonymous' || !acceptApiKeyHeader || header === undefined || deps.authenticate === undefined) return principal;
  if (typeof header !== 'string' || header.length === 0 || header.length > MAX_CREDENTIAL_LENGTH) {
    throw new AppError('invalid_token', { message: 'The credential is malformed: malformed x-api-key header.' });
  }
  const result = await deps.authenticate({ source: 'bearer', token: header }, { ip: request.ip, allowAnonymous: false, method: request.method, csrfToken: undefined });
  if (!result.ok) {
    throw new AppError(result.code, {
      ...(result.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: result.retryAfterSeconds }),
      ...(result.message === undefined ? {} : { message: result.message }),
    });
  }
  if (result.principal === null) throw new AppError('unauthenticated');
  return result.principal;
}

function clientHeaders(request: FastifyRequest): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of FORWARDED_HEADERS) {
    const value = request.headers[name];
    if (typeof value === 'string' && value.length <= 256 && /^[\x20-\x7e]*$/.test(value)) headers[name] = value;
  }
  return headers;
}

function modelName(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 256) {
    throw new AppError('validation_failed', { message: 'Invalid body.model: a model name is required.', details: { field: 'body.model' } });
  }
  return value;
}

function inputBytes(request: FastifyRequest, fallback: () => number): number {
  const declared = Number(request.headers['content-length']);
  return Number.isSafeInteger(declared) && declared > 0 ? declared : fallback();
}

export function registerModelRoutes(app: FastifyInstance, registry: RouteRegistry, deps: ModelRoutesDeps): void {
  const { gateway } = deps;
  const maxAudioBytes = deps.maxAudioBytes ?? 25 * 1024 * 1024;
  const errorHandlerFor = (anthropic: boolean) => (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    sendError(request, reply, error, renderer(anthropic));
  };

  for (const route of JSON_ROUTES) {
    registry.routes.push({ method: 'POST', url: route.url, summary: route.summary, tags: ['models'], auth: 'optional', successStatus: 200 });
    app.route({
      method: 'POST',
      url: route.url,
      config: { portcullis: MODEL_ROUTE_META },
      errorHandler: errorHandlerFor(route.anthropic),
      handler: async (request, reply) => {
        const principal = await callerOf(request, deps, route.anthropic);
        const body = request.body;
        if (!isRecord(body)) throw new AppError('validation_failed', { message: 'The request body must be a JSON object.' });
        const stream = route.operation !== 'embeddings' && body.stream === true;
        await gateway.serve(
          {
            operation: route.operation,
            route: route.url,
            principal,
            requestId: request.id,
            model: modelName(body.model),
            body,
            inputBytes: inputBytes(request, () => Buffer.byteLength(JSON.stringify(body))),
            stream,
            clientWantsUsage: isRecord(body.stream_options) && body.stream_options.include_usage === true,
            clientHeaders: clientHeaders(request),
          },
          reply,
        );
        return reply;
      },
    });
  }

  // Transcriptions take a multipart upload; its parser is scoped to this one route's plugin.
  registry.routes.push({ method: 'POST', url: '/v1/audio/transcriptions', summary: 'OpenAI audio transcriptions (multipart)', tags: ['models'], auth: 'optional', successStatus: 200 });
  void app.register(async (scope) => {
    scope.addContentTypeParser('multipart/form-data', { parseAs: 'buffer', bodyLimit: maxAudioBytes }, (_request, body, done) => done(null, body));
    scope.route({
      method: 'POST',
      url: '/v1/audio/transcriptions',
      config: { portcullis: MODEL_ROUTE_META },
      bodyLimit: maxAudioBytes,
      errorHandler: errorHandlerFor(false),
      handler: async (request, reply) => {
        const principal = await callerOf(request, deps, false);
        const raw = request.body;
        const contentType = request.headers['content-type'];
        if (!Buffer.isBuffer(raw) || contentType === undefined) throw new AppError('unsupported_media_type', { message: 'multipart/form-data is required.' });
        let form: FormData;
        try {
          form = await new Response(raw, { headers: { 'content-type': contentType } }).formData();
        } catch {
          throw new AppError('bad_request', { message: 'The multipart body is malformed.' });
        }
        const file = form.get('file');
        if (file === null || typeof file === 'string') throw new AppError('validation_failed', { message: 'Invalid body.file: an audio file is required.', details: { field: 'body.file' } });
        await gateway.serve(
          {
            operation: 'transcriptions',
            route: '/v1/audio/transcriptions',
            principal,
            requestId: request.id,
            model: modelName(form.get('model')),
            body: {},
            multipart: form,
            inputBytes: raw.length,
            stream: false,
            clientWantsUsage: false,
            clientHeaders: {},
          },
          reply,
        );
        return reply;
      },
    });
  });

  registry.routes.push({ method: 'GET', url: '/v1/models', summary: 'Models this caller may use', tags: ['models'], auth: 'optional', successStatus: 200 });
  app.route({
    method: 'GET',
    url: '/v1/models',
    config: { portcullis: MODEL_ROUTE_META },
    errorHandler: errorHandlerFor(false),
    handler: async (request) => {
      const principal = await callerOf(request, deps, true);
      const models = gateway.visibleModels(principal);
      if (request.headers['anthropic-version'] !== undefined) {
        const data = models.map((model) => ({ type: 'model', id: model.alias, display_name: model.alias, created_at: '2024-01-01T00:00:00Z' }));
        return { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data[data.length - 1]?.id ?? null };
      }
      return { object: 'list', data: models.map((model) => ({ id: model.alias, object: 'model', created: 0, owned_by: model.provider.id })) };
    },
  });

  registerAdminRoutes(app, registry, deps);
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

function registerAdminRoutes(app: FastifyInstance, registry: RouteRegistry, deps: ModelRoutesDeps): void {
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
