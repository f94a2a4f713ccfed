/**
 * The model gateway's HTTP surface: OpenAI- and Anthropic-shaped `/v1` routes, errors in the
 * provider's envelope so the official SDKs surface them; the org admin routes are in
 * admin-routes.ts.
 *
 * These routes authenticate in their handler, after the body is read: free-model traffic counts
 * toward its per-address hourly limit before any credential is checked. Authentication is optional
 * (free models work anonymously, as `anon:{ip}`); a credential that is present must be valid, and
 * the Anthropic routes also take it from `x-api-key` (API keys and sandbox capabilities alike).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditSink } from '../audit/sink.js';
import { AppError } from '../core/errors.js';
import type { Authenticate } from '../http/app.js';
import { answerError, type ErrorRenderer } from '../http/errors.js';
import { createRequestAuthenticator, type RequestAuthenticator } from '../http/request-auth.js';
import type { RouteMeta, RouteRegistry } from '../http/route.js';
import { anonymousPrincipal, type Principal } from '../identity/principal.js';
import type { Db } from '../store/db/index.js';
import { registerModelAdminRoutes } from './admin-routes.js';
import { anthropicErrorBody, openAiErrorBody } from './envelopes.js';
import type { ModelGateway } from './gateway.js';
import type { OrgProviderKeys } from './provider-keys.js';
import { isRecord, type Operation } from './providers/types.js';

export interface ModelRoutesDeps {
  gateway: ModelGateway;
  /** Resolves the caller's credential; the routes call it themselves, after the free-model limit. */
  authenticate: Authenticate;
  db?: Db;
  orgKeys?: OrgProviderKeys;
  audit?: AuditSink;
  /** Largest transcription upload. Default 25 MiB (the providers' own limit). */
  maxAudioBytes?: number;
}

const MODEL_ROUTE_META: RouteMeta = { auth: 'optional', streaming: false, authInHandler: true };
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

/** The caller, or `anon:{ip}`; without a promise when the authenticator answered without one. */
function callerOf(request: FastifyRequest, authenticateRequest: RequestAuthenticator, anthropic: boolean): Principal | Promise<Principal> {
  const outcome = authenticateRequest(request, { allowAnonymous: true, streaming: false, apiKeyHeader: anthropic });
  if (outcome instanceof Promise) return outcome.then((principal) => principal ?? anonymousPrincipal(request.ip));
  return outcome ?? anonymousPrincipal(request.ip);
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
  const authenticateRequest = createRequestAuthenticator(deps.authenticate);
  const maxAudioBytes = deps.maxAudioBytes ?? 25 * 1024 * 1024;
  // The answer may wait for a refused body to arrive (answerError); it sends the reply itself then.
  const errorHandlerFor = (anthropic: boolean) => (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    void answerError(request, reply, error, renderer(anthropic));
  };

  for (const route of JSON_ROUTES) {
    registry.routes.push({ method: 'POST', url: route.url, summary: route.summary, tags: ['models'], auth: 'optional', successStatus: 200 });
    app.route({
      method: 'POST',
      url: route.url,
      config: { portcullis: MODEL_ROUTE_META },
      errorHandler: errorHandlerFor(route.anthropic),
      handler: async (request, reply) => {
        const body = request.body;
        if (!isRecord(body)) throw new AppError('validation_failed', { message: 'The request body must be a JSON object.' });
        const model = modelName(body.model);
        const limited = gateway.limitFreeTraffic(model, request.ip);
        if (limited !== undefined) await limited;
        const caller = callerOf(request, authenticateRequest, route.anthropic);
        const principal = caller instanceof Promise ? await caller : caller;
        const stream = route.operation !== 'embeddings' && body.stream === true;
        await gateway.serve(
          {
            operation: route.operation,
            route: route.url,
            principal,
            requestId: request.id,
            model,
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
        const raw = request.body;
        const contentType = request.headers['content-type'];
        if (!Buffer.isBuffer(raw) || contentType === undefined) throw new AppError('unsupported_media_type', { message: 'multipart/form-data is required.' });
        let form: FormData;
        try {
          form = await new Response(raw, { headers: { 'content-type': contentType } }).formData();
        } catch {
          throw new AppError('bad_request', { message: 'The multipart body is malformed.' });
        }
        const model = modelName(form.get('model'));
        const limited = gateway.limitFreeTraffic(model, request.ip);
        if (limited !== undefined) await limited;
        const principal = await callerOf(request, authenticateRequest, false);
        const file = form.get('file');
        if (file === null || typeof file === 'string') throw new AppError('validation_failed', { message: 'Invalid body.file: an audio file is required.', details: { field: 'body.file' } });
        await gateway.serve(
          {
            operation: 'transcriptions',
            route: '/v1/audio/transcriptions',
            principal,
            requestId: request.id,
            model,
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
      const principal = await callerOf(request, authenticateRequest, true);
      const models = await gateway.visibleModels(principal);
      if (request.headers['anthropic-version'] !== undefined) {
        const data = models.map((model) => ({ type: 'model', id: model.alias, display_name: model.alias, created_at: '2024-01-01T00:00:00Z' }));
        return { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data[data.length - 1]?.id ?? null };
      }
      return { object: 'list', data: models.map((model) => ({ id: model.alias, object: 'model', created: 0, owned_by: model.provider.id })) };
    },
  });

  registerModelAdminRoutes(app, registry, deps);
}
