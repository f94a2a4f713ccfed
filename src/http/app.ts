/**
 * The HTTP shell: one Fastify instance with request ids, body limits, security headers, the auth
 * hook, error mapping, health/readiness/metrics and the OpenAPI document. Feature routes are added
 * by their own register functions through defineRoute; nothing here knows about features.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest, type RawServerDefault } from 'fastify';
import type { Registry } from 'prom-client';
import { AppError, type ErrorCode } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { redactUrl, type Logger } from '../core/logger.js';
import type { Principal } from '../identity/principal.js';
import type { Credential } from './credentials.js';
import { answerClientError } from './client-errors.js';
import { answerError, renderPortcullisError, sendError } from './errors.js';
import { createHttpMetrics } from './http-metrics.js';
import { buildOpenApiDocument } from './openapi.js';
import { createRequestAuthenticator } from './request-auth.js';
import { RouteRegistry, type RouteMeta } from './route.js';
import { securityHeaders } from './security-headers.js';

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * True once a graceful close has begun. Answers sent through the framework then say
     * `Connection: close` (an onSend hook below); one written to the socket directly, as a
     * hijacked event stream is, reads this to say the same.
     */
    readonly closing: boolean;
  }
}

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

/** May answer without a promise when everything it needs is cached; callers await it either way. */
export type Authenticate = (credential: Credential | null, context: AuthContext) => AuthResult | Promise<AuthResult>;

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, 'ok' | 'failing'>;
}

export interface HttpAppOptions {
  logger: Logger;
  bodyLimitBytes: number;
  /** Longest a client may take to send one whole request (default 300 000 ms); answered 408. */
  requestTimeoutMs?: number;
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

const DEFAULT_REQUEST_TIMEOUT_MS = 300_000;
const DEFAULT_META: RouteMeta = { auth: 'required', streaming: false };
/** An unmatched path is a plain 404 for everyone; nothing behind it needs a credential. */
const UNMATCHED_META: RouteMeta = { auth: 'none', streaming: false };

function routeMeta(request: FastifyRequest): RouteMeta {
  if (request.routeOptions.url === undefined) return UNMATCHED_META;
  return request.routeOptions.config.portcullis ?? DEFAULT_META;
}

export function createHttpApp(options: HttpAppOptions): HttpApp {
  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const plainHeaders = securityHeaders(false);
  const tlsHeaders = securityHeaders(true);
  const app = Fastify<RawServerDefault, IncomingMessage, ServerResponse, FastifyBaseLogger>({
    // A URL the router cannot decode never reaches a route or a hook: answer it in our own shape,
    // with our headers, and without echoing the URL (a query credential would travel with it).
    frameworkErrors: (_error, request, reply) => {
      reply.header('x-request-id', request.id);
      reply.headers(options.behindTls ? tlsHeaders : plainHeaders);
      sendError(request, reply, new AppError('bad_request', { message: 'The request URL is malformed.' }), renderPortcullisError);
    },
    clientErrorHandler: answerClientError,
    // Node takes the request timeout from the server's construction options (assigning it later
    // leaves it unenforced), and looks for requests past their time on an interval (30 s by
    // default): a quarter of the timeout keeps the 408 within 25 % of it.
    requestTimeout: requestTimeoutMs,
    http: { requestTimeout: requestTimeoutMs, connectionsCheckingInterval: Math.min(30_000, Math.max(250, Math.floor(requestTimeoutMs / 4))) },
    loggerInstance: options.logger,
    bodyLimit: options.bodyLimitBytes,
    trustProxy: options.trustedProxies.length > 0 ? options.trustedProxies : false,
    genReqId: () => newId('req'),
    // Fastify's own request lines would print raw URLs (and so ?access_token=); onResponse logs a redacted one instead.
    logController: new LogController({ disableRequestLogging: true }),
    // No pino child per request (its bindings are serialised each time, a measurable share of a
    // model call): every line about a request carries its reqId explicitly instead.
    childLoggerFactory: (logger) => logger,
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    routerOptions: { maxParamLength: 200 },
  });
  const registry = new RouteRegistry();
  app.decorateRequest('principal', null);

  const httpMetrics = createHttpMetrics(options.metrics);
  const authenticateRequest = createRequestAuthenticator(options.authenticate);

  // Callback-style hooks where nothing is awaited: an async hook costs a promise per request.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    reply.headers(options.behindTls || request.protocol === 'https' ? tlsHeaders : plainHeaders);
    const meta = routeMeta(request);
    if (meta.auth === 'none' || meta.authInHandler === true) {
      done();
      return;
    }
    const verdict = (principal: Principal | null): Error | undefined => (meta.auth === 'required' && principal === null ? new AppError('unauthenticated') : undefined);
    let outcome: Principal | null | Promise<Principal | null>;
    try {
      outcome = authenticateRequest(request, { allowAnonymous: meta.auth === 'optional', streaming: meta.streaming });
    } catch (error) {
      done(error as Error);
      return;
    }
    if (outcome instanceof Promise) outcome.then((principal) => done(verdict(principal)), done);
    else done(verdict(outcome));
  });

  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    httpMetrics.observe(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
    if (options.logger.isLevelEnabled('info')) {
      request.log.info(
        { reqId: request.id, method: request.method, url: redactUrl(request.url), status: reply.statusCode, ms: Math.round(reply.elapsedTime * 100) / 100 },
        'request',
      );
    }
    done();
  });

  // Graceful shutdown: requests in flight finish, but keep-alive connections must not hold the
  // close open. While closing, every answer says `Connection: close` and idle sockets are shut.
  let closing = false;
  let idleSweep: NodeJS.Timeout | undefined;
  app.decorate('closing', { getter: () => closing });
  app.addHook('preClose', async () => {
    closing = true;
    app.server.closeIdleConnections();
    idleSweep = setInterval(() => app.server.closeIdleConnections(), 50);
    idleSweep.unref();
  });
  app.addHook('onClose', async () => {
    if (idleSweep !== undefined) clearInterval(idleSweep);
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });

  app.setErrorHandler((error, request, reply) => answerError(request, reply, error, renderPortcullisError));
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
