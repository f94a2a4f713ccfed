/**
 * The one way out to providers. Every connection goes through an undici Agent whose `lookup` is the
 * egress guard, so a name is resolved once, checked, and connected to as checked; IP-literal hosts
 * (which never reach `lookup`) are checked here before sending. No redirects are followed, every
 * call has the provider's timeout, and errors carry a classification — never a URL with a
 * credential, never a header.
 *
 * Calls use undici's dispatch interface rather than `request()`: the answer's body is handed over
 * chunk by chunk (egress/exchange.ts) instead of through a stream object per call, which on the
 * request hot path is a measurable share of the gateway's CPU.
 */
import { Agent } from 'undici';
import {
  LiteralVerdicts,
  UpstreamError,
  UpstreamExchange,
  classifyUpstreamError,
  guardedLookup,
  parseIpLiteral,
  schemeAllowed,
  systemResolver,
  type EgressAllow,
  type ResolveOptions,
  type Resolver,
  type UpstreamAbort,
  type UpstreamResponse,
} from '../egress/index.js';

export { UpstreamError, classifyUpstreamError, UpstreamAbort, type UpstreamFailure, type UpstreamResponse, type BodySink } from '../egress/index.js';

export interface UpstreamCall {
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string | Buffer;
  /** The longest silence between chunks of the answer's body. */
  timeoutMs: number;
  /** The longest wait for the answer's headers; `timeoutMs` when absent. */
  headersTimeoutMs?: number;
  /** Abandons the call (the client went away): the connection is dropped, `send` rejects. */
  abort?: UpstreamAbort;
  /** Whose destination this is: an operator-configured provider (the default) or an org's custom endpoint. */
  egress?: 'provider' | 'org';
}

export interface UpstreamOptions {
  allow: EgressAllow;
  /**
   * Org custom endpoints: checked by their own rules on their own agent, so no configured
   * provider's host is trusted for them and no connection pooled for a provider is reused.
   * Absent: nothing internal, https only.
   */
  org?: { allow: EgressAllow; plainHttpHosts: readonly string[] };
  resolver?: Resolver;
  connections?: number;
}

interface Target {
  url: URL;
  origin: string;
  path: string;
  /** Set for IP-literal hosts, which the connect-time lookup never sees. */
  literalHost: string | null;
}

/** Parsed targets by URL string; provider URLs repeat, so parsing once per URL is enough. */
const TARGET_CACHE_MAX = 1_000;

export class Upstream {
  readonly #agent: Agent;
  readonly #resolver: Resolver;
  readonly #targets = new Map<string, Target>();
  readonly #literalVerdicts: LiteralVerdicts;
  readonly #org: { agent: Agent; plainHttpHosts: readonly string[]; literalVerdicts: LiteralVerdicts };

  constructor(options: UpstreamOptions) {
    this.#resolver = options.resolver ?? systemResolver;
    this.#agent = this.#guardedAgent(options.allow, options.connections ?? 512);
    this.#literalVerdicts = new LiteralVerdicts(this.#resolveOptions(options.allow));
    const org = options.org ?? { allow: {}, plainHttpHosts: [] };
    this.#org = { agent: this.#guardedAgent(org.allow, options.connections ?? 512), plainHttpHosts: org.plainHttpHosts, literalVerdicts: new LiteralVerdicts(this.#resolveOptions(org.allow)) };
  }

  #resolveOptions(allow: EgressAllow): ResolveOptions {
    return { resolver: this.#resolver, allow, timeoutMs: 5000 };
  }

  #guardedAgent(allow: EgressAllow, connections: number): Agent {
    return new Agent({ connect: { lookup: guardedLookup(this.#resolveOptions(allow)) }, connections, keepAliveTimeout: 30_000 });
  }

  async send(call: UpstreamCall): Promise<UpstreamResponse> {
    const target = this.#target(call.url);
    const org = call.egress === 'org';
    if (org && !schemeAllowed(target.url, this.#org.plainHttpHosts)) throw new UpstreamError('egress_refused', 'egress refused: plain http is not allowed for this host');
    if (target.literalHost !== null) {
      const pending = (org ? this.#org.literalVerdicts : this.#literalVerdicts).verdict(target.literalHost);
      const verdict = pending instanceof Promise ? await pending : pending;
      if (verdict !== null) throw new UpstreamError('egress_refused', verdict.message);
    }
    if (call.abort?.aborted === true) throw new UpstreamError('network', 'the request was abandoned');
    const exchange = new UpstreamExchange(call.abort);
    try {
      (org ? this.#org.agent : this.#agent).dispatch(
        {
          origin: target.origin,
          path: target.path,
          method: call.method,
          headers: call.headers,
          body: call.body ?? null,
          // headersTimeout bounds the wait for an answer, bodyTimeout the silence between chunks; a
          // whole-call deadline would cut long but healthy streams.
          headersTimeout: call.headersTimeoutMs ?? call.timeoutMs,
          bodyTimeout: call.timeoutMs,
        },
        exchange,
      );
    } catch (error) {
      throw classifyUpstreamError(error);
    }
    return exchange.response;
  }

  #target(url: string): Target {
    let target = this.#targets.get(url);
    if (target === undefined) {
      const parsed = new URL(url);
      target = { url: parsed, origin: parsed.origin, path: `${parsed.pathname}${parsed.search}`, literalHost: parseIpLiteral(parsed.hostname) === null ? null : parsed.hostname };
      if (this.#targets.size >= TARGET_CACHE_MAX) this.#targets.clear();
      this.#targets.set(url, target);
    }
    return target;
  }

  async close(): Promise<void> {
    await Promise.all([this.#agent.close(), this.#org.agent.close()]);
  }
}
