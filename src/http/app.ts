/**
 * The HTTP shell: one Fastify instance with request ids, body limits, security headers, the auth
 * hook, error mapping, health/readiness/metrics and the OpenAPI document. Feature routes are added
 * by their own register functions through defineRoute; nothing here knows about features.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest, type RawServerDefault } from 'fastify';
import { Counter, Histogram, type Registry } from 'prom-client';
import { AppError, type ErrorCode } from '../core/errors.js';
import { redactUrl, type Logger } from '../core/logger.js';
import type { Principal } from '../identity/principal.js';
import { extractCredential, type Credential } from './credentials.js';
import { renderPortcullisError, sendError } from './errors.js';
import { buildOpenApiDocument } from './openapi.js';
import { RouteRegistry, type RouteMeta } from './route.js';
import { applySecurityHeaders } from './security-headers.js';

export type AuthResult =
  | { ok: true; principal: Principal | null }
  | { ok: false; code: ErrorCode; retryAfterSeconds?: number; message?: string };

export interface AuthContext {
  ip: string;
  allowAnonymous: boolean;
  method: string;
  /** The X-CSRF-Token header; the session resolver checks it on cookie-authenticated writes. */
  csrfToken: string | undefined;
  /** For credentials bound to the caller (capabilities): headers, the socket peer and the URL called. */
  headers?: IncomingHttpHeaders;
  peerAddress?: string;
  url?: string;
}

export type Authenticate = (credential: Credential | null, context: AuthContext) => Promise<AuthResult>;

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, 'ok' | 'failing'>;
}

export interface HttpAppOptions {
  logger: Logger;
  bodyLimitBytes: number;
  /** Addresses/CIDRs whose X-Forwarded-For is believed. Empty: the socket address is the client. */
  trustedProxies: string[];
  /** Set when TLS terminates in front of Portcullis: enables HSTS and Secure cookies. */
  behindTls: boolean;
  authenticate: Authenticate;
  readiness: () => Promise<ReadinessReport>;
  metrics: Registry;
  version: string;
}

export interface HttpApp {
  app: FastifyInstance;
  registry: RouteRegistry;
}

const DEFAULT_META: RouteMeta = { auth: 'required', streaming: false };
/** An unmatched path is a plain 404 for everyone; nothing behind it needs a credential. */
const UNMATCHED_META: RouteMeta = { auth: 'none', streaming: false };
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function routeMeta(request: FastifyRequest): RouteMeta {
  if (request.routeOptions.url === undefined) return UNMATCHED_META;
  return request.routeOptions.config.portcullis ?? DEFAULT_META;
}

export function createHttpApp(options: HttpAppOptions): HttpApp {
  const app = Fastify<RawServerDefault, IncomingMessage, ServerResponse, FastifyBaseLogger>({
    loggerInstance: options.logger,
    bodyLimit: options.bodyLimitBytes,
    trustProxy: options.trustedProxies.length > 0 ? options.trustedProxies : false,
    genReqId: () => `req_${randomBytes(9).toString('base64url')}`,
    // Fastify's own request lines would print raw URLs (and so ?access_token=); onResponse logs a redacted one instead.
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    routerOptions: { maxParamLength: 200 },
  });
  const registry = new RouteRegistry();
  app.decorateRequest('principal', null);

  const requests = new Counter({
    name: 'portcullis_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [options.metrics],
  });
  const duration = new Histogram({
    name: 'portcullis_http_request_duration_seconds',
    help: 'HTTP request duration',
    labelNames: ['route'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5],
    registers: [options.metrics],
  });

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    applySecurityHeaders(reply, options.behindTls || request.protocol === 'https');
    const meta = routeMeta(request);
    if (meta.auth === 'none') return;
    const parsed = extractCredential(request.headers, request.query, meta.streaming);
    if (!parsed.ok) throw new AppError('invalid_token', { message: `The credential is malformed: ${parsed.reason}.` });
    const csrfHeader = request.headers['x-csrf-token'];
    const result = await options.authenticate(parsed.credential, {
      ip: request.ip,
      allowAnonymous: meta.auth === 'optional',
      method: request.method,
      csrfToken: typeof csrfHeader === 'string' ? csrfHeader : undefined,
      headers: request.headers,
      ...(request.socket.remoteAddress === undefined ? {} : { peerAddress: request.socket.remoteAddress }),
      url: `${request.protocol}://${request.host}${request.url.split('?')[0] ?? ''}`,
    });
    if (!result.ok) {
      throw new AppError(result.code, {
        ...(result.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: result.retryAfterSeconds }),
        ...(result.message === undefined ? {} : { message: result.message }),
      });
    }
    if (meta.auth === 'required' && result.principal === null) throw new AppError('unauthenticated');
    if (result.principal?.kind === 'session' && !SAFE_METHODS.has(request.method) && parsed.credential?.source !== 'cookie') {
      // Sessions only ever come from the cookie; anything else is a resolver bug, so refuse.
      throw new AppError('unauthenticated');
    }
    request.principal = result.principal;
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    duration.observe({ route }, reply.elapsedTime / 1000);
    request.log.info(
      { reqId: request.id, method: request.method, url: redactUrl(request.url), status: reply.statusCode, ms: Math.round(reply.elapsedTime * 100) / 100 },
      'request',
    );
  });

  // Graceful shutdown: requests in flight finish, but keep-alive connections must not hold the
  // close open. While closing, every answer says `Connection: close` and idle sockets are shut.
  let closing = false;
  let idleSweep: NodeJS.Timeout | undefined;
  app.addHook('preClose', async () => {
    closing = true;
    app.server.closeIdleConnections();
    idleSweep = setInterval(() => app.server.closeIdleConnections(), 50);
    idleSweep.unref();
  });
  app.addHook('onClose', async () => {
    if (idleSweep !== undefined) clearInterval(idleSweep);
  });
  app.addHook('onSend', async (_request, reply) => {
    if (closing) reply.header('connection', 'close');
  });

  app.setErrorHandler((error, request, reply) => sendError(request, reply, error, renderPortcullisError));
  app.setNotFoundHandler((request, reply) => sendError(request, reply, new AppError('not_found'), renderPortcullisError));

  app.get('/healthz', { config: { portcullis: { auth: 'none', streaming: false } } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { config: { portcullis: { auth: 'none', streaming: false } } }, async (_request, reply) => {
    const report = await options.readiness();
    return reply.code(report.ready ? 200 : 503).send({ status: report.ready ? 'ready' : 'not_ready', checks: report.checks });
  });
  app.get('/metrics', { config: { portcullis: { auth: 'none', streaming: false } } }, async (_request, reply) => {
    const body = await options.metrics.metrics();
    return reply.type(options.metrics.contentType).send(body);
  });
  app.get('/openapi.json', { config: { portcullis: { auth: 'none', streaming: false } } }, async () =>
    buildOpenApiDocument(registry, options.version),
  );

  return { app, registry };
}
