/**
 * One model call from admission to settlement: resolve the alias, check who may use it, estimate
 * the most it can cost, admit, try the provider and its fallbacks, pass the answer through
 * (streams with backpressure, relay.ts), and settle exactly once (metering.ts) — with the
 * provider's usage, at the reserved maximum when usage is unknown, or releasing everything when no
 * provider answered.
 */
import type { FastifyReply } from 'fastify';
import type { Admission } from '../admission/types.js';
import type { Clock } from '../core/clock.js';
import { AppError } from '../core/errors.js';
import { quoteKey } from '../core/issues.js';
import type { Principal } from '../identity/principal.js';
import { can } from '../identity/tenancy/permissions.js';
import type { CatalogueModel, CatalogueProvider, ModelCatalogue } from './catalogue.js';
import type { FreeLimitDecision, FreeModelLimits } from './free-limits.js';
import { estimateCall } from './estimate.js';
import { meter, type MeteredCall } from './metering.js';
import type { ModelMetrics } from './metrics.js';
import type { ModelResolver } from './model-resolver.js';
import type { OrgProviderKeys } from './provider-keys.js';
import type { Operation } from './providers/index.js';
import { relayClientError, relayJson, relayStream, type RelayEnd } from './relay.js';
import { serverToolOf } from './server-tools.js';
import { UpstreamAbort, classifyUpstreamError, type Upstream, type UpstreamResponse } from './upstream.js';
import type { UsageSink } from './usage-records.js';

export interface ModelGatewayOptions {
  catalogue: ModelCatalogue;
  /** Alias → the catalogue model or the caller's org's custom one. */
  resolver: ModelResolver;
  upstream: Upstream;
  admission: Admission;
  usage: UsageSink;
  freeLimits: FreeModelLimits;
  metrics: ModelMetrics;
  clock: Clock;
  orgKeys?: OrgProviderKeys;
  maxAttempts: number;
}

export interface ModelCall {
  operation: Operation;
  /** Route pattern, for admission. */
  route: string;
  principal: Principal;
  requestId: string;
  model: string;
  /** The client's JSON body (for a transcription: its text fields). */
  body: Record<string, unknown>;
  /** The upload of a transcription, forwarded with the model name replaced. */
  multipart?: FormData;
  /** Size of what the client sent: the bound on input tokens (a token is at least one byte). */
  inputBytes: number;
  stream: boolean;
  /** Whether the client asked for usage in its stream (otherwise the usage chunk is stripped). */
  clientWantsUsage: boolean;
  clientHeaders: Record<string, string>;
}

interface UpstreamRequestParts {
  url: string;
  method: 'POST';
  headers: Record<string, string>;
  body: string | Buffer;
}

type Attempt =
  | { kind: 'response'; response: UpstreamResponse; model: CatalogueModel; apiKey: string | null }
  /**
   * Every candidate failed. `own_key_throttled`: each of them answered 429 to the org's own key —
   * that org's quota at the provider, not the provider's health (see `serve`).
   */
  | { kind: 'failed'; failure: 'timeout' | 'error' | 'own_key_throttled' }
  | { kind: 'abandoned' };

/**
 * The provider refused the operator's own credential (revoked, expired, out of its project): it is
 * then unusable for every tenant on that key, as a 5xx makes it, so the call falls back and the
 * provider's breaker counts it. An org's own key refused (BYOK, a custom endpoint) is that org's
 * to fix and is relayed as a refusal instead.
 */
function operatorKeyRefused(status: number, provider: CatalogueProvider, apiKey: string | null): boolean {
  return (status === 401 || status === 403) && provider.egress === 'provider' && apiKey !== null && apiKey === provider.managedKey;
}

export function mayUsePaidModels(principal: Principal): boolean {
  return principal.kind !== 'anonymous' && can(principal, 'models.use', principal.orgId);
}

function refuseOverLimit(decision: FreeLimitDecision): void {
  if (!decision.ok) throw new AppError('free_model_limit_reached', { retryAfterSeconds: decision.retryAfterSeconds, details: { limit: decision.limit } });
}

export class ModelGateway {
  readonly #chains = new WeakMap<CatalogueModel, Map<string, readonly CatalogueModel[]>>();

  constructor(private readonly options: ModelGatewayOptions) {}

  get catalogue(): ModelCatalogue {
    return this.options.catalogue;
  }

  /** Models this caller may call: free ones for everyone, the rest (and the org's own) for members allowed to use models. */
  async visibleModels(principal: Principal): Promise<CatalogueModel[]> {
    const paid = mayUsePaidModels(principal);
    const own = paid ? await this.options.resolver.orgModels(principal.orgId) : [];
    return [...this.options.catalogue.models().filter((model) => model.free || paid), ...own];
  }

  /**
   * The per-address hourly limit of free-model traffic, for the routes to run BEFORE they check any
   * credential (so it holds for every caller, and a flood never reaches authentication). A model
   * that is not free (or does not exist) counts nothing here.
   */
  limitFreeTraffic(modelName: string, ip: string): Promise<void> | undefined {
    // Most calls are for paid models: nothing to count, and no promise for the caller to await.
    if (this.options.catalogue.get(modelName)?.free !== true) return undefined;
    return this.options.freeLimits.hitAddress(ip).then(refuseOverLimit);
  }

  /** Serves an authenticated (or anonymous) call; the route has run `limitFreeTraffic` first. */
  async serve(call: ModelCall, reply: FastifyReply): Promise<void> {
    const { metrics } = this.options;
    const resolved = this.options.resolver.resolve(call.principal.orgId, call.model);
    const model = resolved instanceof Promise ? await resolved : resolved;
    if (model === undefined || !model.provider.adapter.supports(call.operation)) throw new AppError('model_not_found');
    const anonymous = call.principal.kind === 'anonymous';
    if (!model.free) {
      if (anonymous) throw new AppError('paid_model_auth_required');
      if (!mayUsePaidModels(call.principal)) throw new AppError('model_not_found');
    }
    if (model.free && anonymous) refuseOverLimit(await this.options.freeLimits.hitAnonymous(call.principal.ip));
    const chain = this.#servableChain(call, model, this.#chainFor(model, call.operation, anonymous));
    const estimate = estimateCall(call, chain);

    const admitted = await this.options.admission.admit({
      principal: call.principal,
      route: call.route,
      requestId: call.requestId,
      cost: estimate,
      dependency: model.provider.dependency,
      kind: 'sync',
    });
    for (const name in admitted.headers) reply.header(name, admitted.headers[name]);
    if (!admitted.ok) {
      const { refusal } = admitted;
      throw new AppError(refusal.code, {
        message: refusal.message,
        details: { gate: refusal.gate },
        ...(refusal.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: refusal.retryAfterSeconds }),
      });
    }
    const ticket = admitted.ticket;
    const abort = new UpstreamAbort();
    const onClose = (): void => {
      if (!reply.raw.writableFinished) abort.abort();
    };
    reply.raw.once('close', onClose);
    // The client may have gone while admission was decided: its 'close' is past, so abandon now.
    if (reply.raw.destroyed) abort.abort();
    const metered = (served: CatalogueModel): MeteredCall => ({ principal: call.principal, model: served, estimate, ticket });
    try {
      const attempt = await this.#attempt(call, chain, abort);
      if (attempt.kind === 'abandoned') {
        await meter(this.options, metered(model), null, { kind: 'unmetered', reason: 'client_abort' });
        return;
      }
      if (attempt.kind === 'failed') {
        metrics.outcome(model.alias, 'upstream_failure');
        if (attempt.failure === 'own_key_throttled') {
          // An org's own key out of quota says nothing about the provider: it must not pause the
          // provider's breaker for the tenants on the managed key (as the managed key's 429s do).
          await ticket.settle({ kind: 'upstream_failure', reason: 'refused' });
          throw new AppError('rate_limited', { message: "The provider is rate limiting the organisation's own key." });
        }
        await ticket.settle({ kind: 'upstream_failure', reason: attempt.failure });
        throw new AppError(attempt.failure === 'timeout' ? 'upstream_timeout' : 'upstream_error');
      }
      const { response } = attempt;
      // 429, 5xx and a refused operator key were tried on the fallbacks above; what is left refused
      // the request itself, or the org's own credential.
      if (response.status >= 400) {
        await ticket.settle({ kind: 'upstream_failure', reason: 'refused' });
        metrics.outcome(model.alias, 'upstream_refused');
        await relayClientError(response, attempt.apiKey, reply);
        return;
      }
      const served = metered(attempt.model);
      const end: RelayEnd = (usage, outcome) => meter(this.options, served, usage, outcome);
      const adapter = attempt.model.provider.adapter;
      if (call.stream && String(response.headers['content-type'] ?? '').startsWith('text/event-stream')) {
        relayStream(response, adapter.streamUsage(call.operation, call.clientWantsUsage), reply, abort, end);
        return;
      }
      await relayJson(response, adapter, call.operation, reply, end);
    } catch (error) {
      // Whatever went wrong after admission, the reservation must not stay open.
      if (!ticket.settled) await ticket.settle({ kind: 'upstream_failure', reason: 'error' });
      throw error;
    } finally {
      // A relayed stream watches the connection itself (relay.ts) once it is under way.
      reply.raw.off('close', onClose);
    }
  }

  /**
   * The models one call may try, in order. Fallbacks an anonymous caller could not call directly
   * are not reachable through a free model either. Kept per model object: catalogue models live as
   * long as the process, an org's custom models until its cache entry is replaced.
   */
  #chainFor(model: CatalogueModel, operation: Operation, anonymous: boolean): readonly CatalogueModel[] {
    let chains = this.#chains.get(model);
    if (chains === undefined) {
      chains = new Map();
      this.#chains.set(model, chains);
    }
    const key = `${operation}${anonymous ? '+anonymous' : ''}`;
    let chain = chains.get(key);
    if (chain === undefined) {
      chain = this.options.catalogue.chain(model, this.options.maxAttempts).filter((candidate) => candidate.provider.adapter.supports(operation) && (candidate.free || !anonymous));
      chains.set(key, chain);
    }
    return chain;
  }

  /**
   * A call asking for a tool the provider runs may go only to models that allow such tools: the
   * model named is refused if it does not, and fallbacks that do not are left out.
   */
  #servableChain(call: ModelCall, model: CatalogueModel, chain: readonly CatalogueModel[]): readonly CatalogueModel[] {
    const tool = serverToolOf(call.operation, call.body);
    if (tool === null) return chain;
    if (!model.allowServerTools) {
      throw new AppError('validation_failed', {
        message: `Invalid ${tool.field}: the tool ${quoteKey(tool.name)} runs at the provider and is billed outside the token usage this gateway meters; this model does not allow it.`,
        details: { field: tool.field },
      });
    }
    return chain.filter((candidate) => candidate.allowServerTools);
  }

  /** The org's own key for the provider, else the managed one; without a promise when cached. */
  #keyFor(principal: Principal, model: CatalogueModel): string | null | Promise<string | null> {
    const { orgKeys } = this.options;
    if (principal.orgId === null || orgKeys === undefined) return model.provider.managedKey;
    const cached = orgKeys.cachedKeyFor(principal.orgId, model.provider.id);
    if (cached !== undefined) return cached ?? model.provider.managedKey;
    return orgKeys.keyFor(principal.orgId, model.provider.id).then((own) => own ?? model.provider.managedKey);
  }

  async #attempt(call: ModelCall, chain: readonly CatalogueModel[], abort: UpstreamAbort): Promise<Attempt> {
    let failure: 'timeout' | 'error' = 'error';
    let onlyOwnKeysThrottled = true;
    for (const candidate of chain) {
      if (abort.aborted) return { kind: 'abandoned' };
      const key = this.#keyFor(call.principal, candidate);
      const apiKey = key instanceof Promise ? await key : key;
      const provider = candidate.provider;
      let response: UpstreamResponse;
      try {
        const request = call.multipart === undefined ? this.#jsonRequest(call, candidate, apiKey) : await this.#multipartRequest(call, candidate, apiKey);
        response = await this.options.upstream.send({
          url: request.url,
          method: request.method,
          headers: request.headers,
          body: request.body,
          // A stream starts at once; a non-streamed answer comes when the provider has written all of it.
          headersTimeoutMs: call.stream ? provider.timeoutMs : provider.responseTimeoutMs,
          timeoutMs: provider.timeoutMs,
          egress: provider.egress,
          abort,
        });
      } catch (error) {
        if (abort.aborted) return { kind: 'abandoned' };
        const classified = classifyUpstreamError(error);
        if (classified.kind === 'egress_refused') throw new AppError('egress_refused');
        failure = classified.kind === 'timeout' ? 'timeout' : 'error';
        onlyOwnKeysThrottled = false;
        this.options.metrics.fallback(candidate.alias);
        continue;
      }
      if (response.status === 429 || response.status >= 500 || operatorKeyRefused(response.status, provider, apiKey)) {
        response.discard();
        failure = 'error';
        onlyOwnKeysThrottled &&= response.status === 429 && apiKey !== null && apiKey !== provider.managedKey;
        this.options.metrics.fallback(candidate.alias);
        continue;
      }
      return { kind: 'response', response, model: candidate, apiKey };
    }
    return { kind: 'failed', failure: onlyOwnKeysThrottled && chain.length > 0 ? 'own_key_throttled' : failure };
  }

  #jsonRequest(call: ModelCall, model: CatalogueModel, apiKey: string | null): UpstreamRequestParts {
    const built = model.provider.adapter.buildRequest({ operation: call.operation, body: call.body, upstreamModel: model.upstreamModel, apiKey, stream: call.stream, clientHeaders: call.clientHeaders });
    return { url: `${model.provider.baseUrl}${built.path}`, method: 'POST', headers: built.headers, body: JSON.stringify(built.body) };
  }

  async #multipartRequest(call: ModelCall, model: CatalogueModel, apiKey: string | null): Promise<UpstreamRequestParts> {
    const form = new FormData();
    for (const [name, value] of call.multipart?.entries() ?? []) form.append(name, name === 'model' ? model.upstreamModel : value);
    // The platform's own multipart encoder (fetch's Request) writes the body and its boundary.
    const encoded = new Request('http://form.invalid/', { method: 'POST', body: form });
    return {
      url: `${model.provider.baseUrl}/audio/transcriptions`,
      method: 'POST',
      headers: { ...model.provider.adapter.authHeaders(apiKey), 'content-type': encoded.headers.get('content-type') ?? 'multipart/form-data' },
      body: Buffer.from(await encoded.arrayBuffer()),
    };
  }
}
