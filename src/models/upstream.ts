/**
 * The one way out to providers. Every connection goes through an undici Agent whose `lookup` is the
 * egress guard, so a name is resolved once, checked, and connected to as checked; IP-literal hosts
 * (which never reach `lookup`) are checked here before sending. No redirects are followed, every
 * call has the provider's timeout, and errors carry a classification — never a URL with a
 * credential, never a header.
 */
import { Agent, request, type Dispatcher } from 'undici';
import { guardedLookup, parseIpLiteral, resolveForConnect, systemResolver, EgressRefusedError, type EgressAllow, type Resolver } from '../egress/index.js';

export type UpstreamFailure = 'timeout' | 'network' | 'egress_refused';

/** A failure before any response arrived; `kind` decides fallback and the status shown. */
export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  constructor(readonly kind: UpstreamFailure, message: string) {
    super(message);
  }
}

export interface UpstreamCall {
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string | Buffer;
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
}

export interface UpstreamOptions {
  allow: EgressAllow;
  resolver?: Resolver;
  connections?: number;
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);

function findEgressRefusal(error: unknown): EgressRefusedError | null {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth += 1) {
    if (current instanceof EgressRefusedError) return current;
    current = (current as { cause?: unknown }).cause;
  }
  return null;
}

export function classifyUpstreamError(error: unknown): UpstreamError {
  if (error instanceof UpstreamError) return error;
  const refusal = findEgressRefusal(error);
  if (refusal !== null) return new UpstreamError('egress_refused', refusal.message);
  const code = (error as { code?: unknown } | null)?.code;
  const name = (error as { name?: unknown } | null)?.name;
  if ((typeof code === 'string' && TIMEOUT_CODES.has(code)) || name === 'TimeoutError') return new UpstreamError('timeout', 'the provider did not answer in time');
  return new UpstreamError('network', typeof code === 'string' ? `connection failed (${code})` : 'connection failed');
}

export class Upstream {
  readonly #agent: Agent;
  readonly #allow: EgressAllow;
  readonly #resolver: Resolver;

  constructor(options: UpstreamOptions) {
    this.#allow = options.allow;
    this.#resolver = options.resolver ?? systemResolver;
    this.#agent = new Agent({
      connect: { lookup: guardedLookup({ resolver: this.#resolver, allow: this.#allow, timeoutMs: 5000 }) },
      connections: options.connections ?? 512,
      keepAliveTimeout: 30_000,
    });
  }

  /** Checks a destination without connecting: the same rule the connection itself will apply. */
  async check(url: URL): Promise<EgressRefusedError | null> {
    const target = await resolveForConnect(url.hostname, { resolver: this.#resolver, allow: this.#allow, timeoutMs: 5000 });
    return target.ok ? null : new EgressRefusedError(target.reason, target.addressClass);
  }

  async send(call: UpstreamCall): Promise<UpstreamResponse> {
    const url = new URL(call.url);
    // net.connect skips `lookup` for IP literals, so those are checked here.
    if (parseIpLiteral(url.hostname) !== null) {
      const refusal = await this.check(url);
      if (refusal !== null) throw new UpstreamError('egress_refused', refusal.message);
    }
    try {
      const response = await request(url, {
        dispatcher: this.#agent,
        method: call.method,
        headers: call.headers,
        ...(call.body === undefined ? {} : { body: call.body }),
        // headersTimeout bounds the wait for an answer, bodyTimeout the silence between chunks; a
        // whole-call deadline would cut long but healthy streams.
        ...(call.signal === undefined ? {} : { signal: call.signal }),
        headersTimeout: call.timeoutMs,
        bodyTimeout: call.timeoutMs,
      });
      return { status: response.statusCode, headers: response.headers, body: response.body };
    } catch (error) {
      if (call.signal?.aborted === true) throw new UpstreamError('network', 'the request was abandoned');
      throw classifyUpstreamError(error);
    }
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}
