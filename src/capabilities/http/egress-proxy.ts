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
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { Transform, type Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Agent } from 'undici';
import { AppError } from '../../core/errors.js';
import {
  LiteralVerdicts,
  UpstreamAbort,
  UpstreamExchange,
  classifyUpstreamError,
  guardedLookup,
  parseIpLiteral,
  systemResolver,
  type ResolveOptions,
  type Resolver,
  type UpstreamResponse,
} from '../../egress/index.js';
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
    // The outbound guard's refusal, here or when connecting: audited, then answered with its reason.
    const refuseEgress = async (reason: string): Promise<never> => {
      await broker.auditEgressRefusal(result.claims, result.grant.name, reason);
      throw refuse('egress_refused', reason);
    };
    const host = new URL(result.grant.origin).hostname;
    const refused = parseIpLiteral(host) === null ? null : await literals.verdict(host);
    if (refused !== null) await refuseEgress(refused.reason);

    const headers: Record<string, string | string[]> = {};
    const injected = result.grant.credential.header.toLowerCase();
    for (const [name, value] of Object.entries(request.headers)) {
      if (value === undefined || STRIPPED_REQUEST_HEADERS.has(name) || name === injected) continue;
      headers[name] = value;
    }
    headers[injected] = credential;

    const abort = new UpstreamAbort();
    // 'close' on the response fires when the client disconnects or the answer is complete.
    const answer = reply.raw;
    answer.once('close', () => {
      if (!answer.writableFinished) abort.abort();
    });
    const body = await requestBody(request, method, maxBodyBytes);
    const exchange = new UpstreamExchange(abort);
    let response: UpstreamResponse;
    try {
      agent.dispatch({ origin: result.grant.origin, path: `${result.forwardPath}${result.forwardQuery}`, method, headers, body: body.payload }, exchange);
      response = await exchange.response;
    } catch (error) {
      if (body.tooLarge()) throw new AppError('payload_too_large');
      const failure = classifyUpstreamError(error);
      if (failure.kind === 'egress_refused') await refuseEgress(failure.refusal ?? 'refused');
      throw failure.kind === 'timeout' ? refuse('upstream_timeout', 'upstream_timeout') : refuse('upstream_error', 'upstream_unreachable');
    }
    relayAnswer(response, reply);
    return reply;
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

/** What the client sends on: nothing, its whole (small, declared) body, or a stream of it. */
interface ForwardedBody {
  payload: Buffer | Readable | null;
  /** Whether the client sent more than the limit (the forward then failed for that reason). */
  tooLarge(): boolean;
}

const NO_BODY: ForwardedBody = { payload: null, tooLarge: () => false };

/**
 * A declared length over the limit is refused before anything is read or sent. A small declared
 * body is read whole and sent with the headers in one write (Node's parser never delivers more
 * than the declared length); a larger one streams as it arrives, and a chunked one streams
 * through a counter that fails it past the limit.
 */
async function requestBody(request: FastifyRequest, method: string, limit: number): Promise<ForwardedBody> {
  if (method === 'GET' || method === 'HEAD') return NO_BODY;
  const declared = request.headers['content-length'];
  if (declared !== undefined) {
    const length = Number(declared);
    if (!Number.isSafeInteger(length) || length < 0) throw new AppError('bad_request', { message: 'Invalid Content-Length.' });
    if (length > limit) throw new AppError('payload_too_large');
    if (length <= WHOLE_BODY_BYTES) return { payload: await readWhole(request.raw, length), tooLarge: () => false };
    return { payload: request.raw, tooLarge: () => false };
  }
  if (request.headers['transfer-encoding'] === undefined) return NO_BODY;
  let seen = 0;
  let over = false;
  const counted = request.raw.pipe(
    new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        seen += chunk.length;
        over ||= seen > limit;
        if (over) callback(new AppError('payload_too_large'));
        else callback(null, chunk);
      },
    }),
  );
  return { payload: counted, tooLarge: () => over };
}

/** Bodies up to this size are read whole before forwarding. */
const WHOLE_BODY_BYTES = 64 * 1024;

function readWhole(incoming: Readable, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const fail = (): void => reject(new AppError('bad_request', { message: 'The request body ended early.' }));
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.once('end', () => {
      incoming.off('close', fail);
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, length));
    });
    incoming.once('error', fail);
    incoming.once('close', fail);
  });
}

/**
 * The upstream's answer, status and headers as they came (hop-by-hop ones removed), after the
 * headers the shell already set (request id, security); written straight to the connection with
 * backpressure: a slow client pauses the upstream's socket until it has taken what was written.
 * A failure after the head is out can only cut the connection.
 */
function relayAnswer(response: UpstreamResponse, reply: FastifyReply): void {
  const headers: OutgoingHttpHeaders = {};
  const set = reply.getHeaders();
  for (const name in set) {
    const value = set[name];
    if (value !== undefined) headers[name] = value;
  }
  for (const name in response.headers) {
    const value = response.headers[name];
    if (value !== undefined && !STRIPPED_RESPONSE_HEADERS.has(name)) headers[name] = value;
  }
  // The shell's onSend hook, which a hijacked reply bypasses, says this for every other answer.
  if (reply.server.closing) headers.connection = 'close';
  reply.hijack();
  const raw = reply.raw;
  if (raw.destroyed) {
    response.discard();
    return;
  }
  raw.writeHead(response.status, headers);
  const resumeOnDrain = (): void => response.resume();
  response.pipe({
    chunk: (data) => {
      if (raw.write(data)) return true;
      raw.once('drain', resumeOnDrain);
      return false;
    },
    end: () => raw.end(),
    error: () => raw.destroy(),
  });
}
