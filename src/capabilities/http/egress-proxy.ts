/**
 * The egress proxy: `ANY /egress/{grant}/{path}` with a capability as the bearer. The capability
 * decides (redeemCapability via the broker), the client's credentials are stripped, the grant's
 * real credential is injected, and the request is forwarded to the one address that passed the
 * outbound guard. Redirects are never followed: the upstream's 3xx goes back to the client as is.
 * The answer is streamed back with backpressure; the upstream request is aborted when the client
 * goes away.
 *
 * The route takes its own credential: the shared auth hook would read `pcap1.` tokens as API keys,
 * so it is declared `auth: 'none'` and reads Authorization itself. The container id comes only from
 * the trusted hop header, and only when the socket peer is a configured hop.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Transform, type Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Agent, errors as undiciErrors, request as undiciRequest, type Dispatcher } from 'undici';
import { AppError } from '../../core/errors.js';
import { EgressRefusedError, LiteralVerdicts, guardedLookup, parseIpLiteral, systemResolver, type ResolveOptions, type Resolver } from '../../egress/index.js';
import type { CapabilityClaims } from '../claims.js';
import type { CapabilityBroker } from './broker.js';
import { CONTAINER_HEADER, presentedProof, trustedContainerId } from './presenter.js';

const EGRESS_PATH = /^\/egress\/([^/?#]*)(\/[^?#]*)?(\?[^#]*)?$/s;
/** Headers that belong to one hop, or carry the caller's own credentials: never forwarded. */
const STRIPPED_REQUEST_HEADERS = new Set([
  'host',
  'connection',
  'keep-alive',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'authorization',
  'cookie',
  'dpop',
  CONTAINER_HEADER,
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'forwarded',
]);
const STRIPPED_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

export interface EgressProxyOptions {
  broker: CapabilityBroker;
  /** Tests inject a resolver; production resolves through the system. */
  resolver?: Resolver;
  /** Largest request body forwarded. */
  maxBodyBytes?: number;
}

export interface EgressProxy {
  register(app: FastifyInstance): Promise<void>;
  close(): Promise<void>;
}

function bearer(headers: IncomingHttpHeaders): string | null {
  const value = headers.authorization;
  // Bounded, but above the codec's own limit so an oversized token is refused as `too_large`.
  if (typeof value !== 'string' || value.length > 80_000) return null;
  const match = /^Bearer +(\S+) *$/i.exec(value);
  return match?.[1] ?? null;
}

function refuse(code: ConstructorParameters<typeof AppError>[0], reason: string): AppError {
  return new AppError(code, { details: { reason } });
}

/** Counts the body as it streams and fails the stream past the limit. */
function limitBody(limit: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (seen > limit) callback(new AppError('payload_too_large'));
      else callback(null, chunk);
    },
  });
}

export function createEgressProxy(options: EgressProxyOptions): EgressProxy {
  const { broker } = options;
  const egress = broker.config.egress;
  const resolveOptions: ResolveOptions = {
    resolver: options.resolver ?? systemResolver,
    allow: { loopback: egress.allowLoopback, private: egress.allowPrivate },
    timeoutMs: Math.min(egress.timeoutMs, 10_000),
  };
  // Every connection resolves through the guard and connects to the one address it checked.
  const agent = new Agent({
    connect: { lookup: guardedLookup(resolveOptions), timeout: Math.min(egress.timeoutMs, 30_000) },
    headersTimeout: egress.timeoutMs,
    bodyTimeout: egress.timeoutMs,
  });
  const maxBodyBytes = options.maxBodyBytes ?? 32 * 1024 * 1024;
  // A connection to a name is checked by the agent's lookup when it opens (and a pooled one goes
  // to the address checked then); an IP literal is never looked up, so it is checked here.
  const literals = new LiteralVerdicts(resolveOptions);

  async function handle(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const raw = request.raw.url ?? '';
    const match = EGRESS_PATH.exec(raw);
    const token = bearer(request.headers);
    if (token === null) throw refuse('unauthenticated', 'capability_missing');
    if (match === null) throw refuse('route_refused', 'malformed_url');
    const grantName = match[1] ?? '';
    const path = match[2] ?? '/';
    const query = match[3] ?? '';
    const method = request.method;
    const containerId = trustedContainerId(request, broker.config.trustedHops);
    const proof = presentedProof(request.headers);
    // The proof names the URL the client called: this gateway's egress URL, without the query.
    const proofUrl = `${request.protocol}://${request.host}${raw.split('?')[0] ?? ''}`;

    // The upstream URL is the named grant's origin + the raw path: the origin is only known once
    // the token opens, so the redemption builds it from the opened claims (an unknown grant name
    // gets an origin no grant has, and the route policy refuses it by name).
    const upstreamUrl = (claims: CapabilityClaims): string => `${claims.grants.find((grant) => grant.name === grantName)?.origin ?? 'https://unknown.invalid'}${path}${query}`;
    const result = await broker.redeem(
      token,
      {
        method,
        url: upstreamUrl,
        grantName,
        ...(containerId === undefined ? {} : { containerId }),
        ...(proof === undefined ? {} : { proof, proofUrl }),
      },
      { via: 'egress' },
    );
    if (!result.ok) throw refuse(result.code, result.reason);

    const credential = broker.credentialValue(result.grant);
    if (credential === null) throw refuse('dependency_unavailable', 'credential_unconfigured');
    const host = new URL(result.grant.origin).hostname;
    const refused = parseIpLiteral(host) === null ? null : await literals.verdict(host);
    if (refused !== null) {
      await broker.auditEgressRefusal(result.claims, result.grant.name, refused.reason);
      throw refuse('egress_refused', refused.reason);
    }

    const headers: Record<string, string | string[]> = {};
    const injected = result.grant.credential.header.toLowerCase();
    for (const [name, value] of Object.entries(request.headers)) {
      if (value === undefined || STRIPPED_REQUEST_HEADERS.has(name) || name === injected) continue;
      headers[name] = value;
    }
    headers[injected] = credential;

    const controller = new AbortController();
    // 'close' on the response fires when the client disconnects or the answer is complete.
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) controller.abort();
    });
    const hasBody = request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] !== undefined;
    const body: Readable | undefined = hasBody && method !== 'GET' && method !== 'HEAD' ? request.raw.pipe(limitBody(maxBodyBytes)) : undefined;

    let upstream: Dispatcher.ResponseData;
    try {
      upstream = await undiciRequest(`${result.grant.origin}${result.forwardPath}${result.forwardQuery}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        dispatcher: agent,
        signal: controller.signal,
      });
    } catch (error) {
      const guard = egressRefusal(error);
      if (guard === null) throw upstreamError(error);
      await broker.auditEgressRefusal(result.claims, result.grant.name, guard.reason);
      throw refuse('egress_refused', guard.reason);
    }

    const responseHeaders: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(upstream.headers)) {
      if (value === undefined || STRIPPED_RESPONSE_HEADERS.has(name)) continue;
      responseHeaders[name] = value;
    }
    upstream.body.on('error', () => undefined);
    return reply.code(upstream.statusCode).headers(responseHeaders).send(upstream.body);
  }

  return {
    async register(app) {
      await app.register(async (scope) => {
        // The body is streamed to the upstream untouched, whatever its type.
        scope.removeAllContentTypeParsers();
        scope.addContentTypeParser('*', (_request, _payload, done) => done(null));
        // The handler reads the raw URL itself; the catch-all also catches what the router's
        // decoding would not match (e.g. `/egress/g/%2e%2e/x`), so it is refused with a reason.
        for (const url of ['/egress/:grant/*', '/egress/*']) {
          scope.route({
            method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
            url,
            config: { portcullis: { auth: 'none', streaming: true } },
            handler: handle,
          });
        }
      });
    },
    async close() {
      await agent.close();
    },
  };
}

/** The guard's refusal of a connection, which may arrive wrapped by the connector. */
function egressRefusal(error: unknown): EgressRefusedError | null {
  let cause: unknown = error;
  for (let depth = 0; depth < 4 && cause instanceof Error; depth += 1) {
    if (cause instanceof EgressRefusedError) return cause;
    cause = cause.cause;
  }
  return null;
}

function upstreamError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  if (error instanceof undiciErrors.HeadersTimeoutError || error instanceof undiciErrors.ConnectTimeoutError || error instanceof undiciErrors.BodyTimeoutError) {
    return refuse('upstream_timeout', 'upstream_timeout');
  }
  return refuse('upstream_error', 'upstream_unreachable');
}
