/**
 * Credential of one HTTP request → principal, the same way for every route: the auth hook runs it
 * before the handler, and routes that must look at the body first (the model routes apply their
 * free-model limits before any credential is checked) run it themselves. A refusal is thrown as
 * the AppError the error mapper turns into the route's envelope.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyRequest } from 'fastify';
import { AppError } from '../core/errors.js';
import type { Principal } from '../identity/principal.js';
import type { AuthContext, AuthResult, Authenticate } from './app.js';
import { MAX_CREDENTIAL_LENGTH, extractCredential, type Credential } from './credentials.js';

export interface RequestAuthOptions {
  allowAnonymous: boolean;
  /** Streaming routes may take the credential from `?access_token=`. */
  streaming: boolean;
  /** Accept `x-api-key` (what the Anthropic SDK sends) when there is no `Authorization` header. */
  apiKeyHeader?: boolean;
}

/** Answers without a promise when the authenticator did (a cached key); a refusal is thrown either way. */
export type RequestAuthenticator = (request: FastifyRequest, options: RequestAuthOptions) => Principal | null | Promise<Principal | null>;

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function credentialOf(request: FastifyRequest, options: RequestAuthOptions): Credential | null {
  const apiKey = request.headers['x-api-key'];
  if (options.apiKeyHeader === true && apiKey !== undefined && request.headers.authorization === undefined) {
    if (typeof apiKey !== 'string' || apiKey.length === 0 || apiKey.length > MAX_CREDENTIAL_LENGTH) {
      throw new AppError('invalid_token', { message: 'The credential is malformed: malformed x-api-key header.' });
    }
    return { source: 'bearer', token: apiKey };
  }
  const parsed = extractCredential(request.headers, request.query, options.streaming);
  if (!parsed.ok) throw new AppError('invalid_token', { message: `The credential is malformed: ${parsed.reason}.` });
  return parsed.credential;
}

/**
 * What the authenticator may look at besides the credential. A class rather than an object literal
 * with a getter (which V8 builds on its slow path): this is made for every authenticated request.
 */
class RequestAuthContext implements AuthContext {
  readonly ip: string;
  readonly method: string;
  readonly csrfToken: string | undefined;
  readonly headers: IncomingHttpHeaders;
  readonly peerAddress?: string;

  constructor(
    private readonly request: FastifyRequest,
    readonly allowAnonymous: boolean,
  ) {
    this.ip = request.ip;
    this.method = request.method;
    const csrfHeader = request.headers['x-csrf-token'];
    this.csrfToken = typeof csrfHeader === 'string' ? csrfHeader : undefined;
    this.headers = request.headers;
    const peer = request.socket.remoteAddress;
    if (peer !== undefined) this.peerAddress = peer;
  }

  /** Only proofs of possession (capabilities) read the URL; it is built when they do. */
  get url(): string {
    const request = this.request;
    return `${request.protocol}://${request.host}${request.url.split('?')[0] ?? ''}`;
  }
}

function principalOf(request: FastifyRequest, credential: Credential | null, result: AuthResult): Principal | null {
  if (!result.ok) {
    throw new AppError(result.code, {
      ...(result.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: result.retryAfterSeconds }),
      ...(result.message === undefined ? {} : { message: result.message }),
    });
  }
  if (result.principal?.kind === 'session' && !SAFE_METHODS.has(request.method) && credential?.source !== 'cookie') {
    // Sessions only ever come from the cookie; anything else is a resolver bug, so refuse.
    throw new AppError('unauthenticated');
  }
  request.principal = result.principal;
  return result.principal;
}

export function createRequestAuthenticator(authenticate: Authenticate): RequestAuthenticator {
  return function authenticateRequest(request, options) {
    const credential = credentialOf(request, options);
    const result = authenticate(credential, new RequestAuthContext(request, options.allowAnonymous));
    return result instanceof Promise ? result.then((settled) => principalOf(request, credential, settled)) : principalOf(request, credential, result);
  };
}
