/**
 * One model call from admission to settlement: resolve the alias, check who may use it, estimate
 * the most it can cost, admit, try the provider and its fallbacks, pass the answer through
 * (streams with backpressure), and settle exactly once — with the provider's usage, at the
 * reserved maximum when usage is unknown, or releasing everything when no provider answered.
 */
import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import type { Admission, AdmissionTicket, CostEstimate, SettleOutcome } from '../admission/types.js';
import type { Clock } from '../core/clock.js';
import { AppError } from '../core/errors.js';
import type { Principal } from '../identity/principal.js';
import { can } from '../identity/tenancy/permissions.js';
import type { CatalogueModel, ModelCatalogue } from './catalogue.js';
import type { FreeModelLimits } from './free-limits.js';
import type { ModelMetrics } from './metrics.js';
import { costMicros, totalTokens, ZERO_USAGE, type Usage } from './pricing.js';
import type { OrgProviderKeys } from './provider-keys.js';
import type { Operation } from './providers/index.js';
import { UpstreamError, classifyUpstreamError, type Upstream, type UpstreamResponse } from './upstream.js';
import type { UsageSink } from './usage-records.js';

/** Largest non-streamed provider answer we hold in memory. */
const MAX_JSON_RESPONSE_BYTES = 64 * 1024 * 1024;
/** Largest provider error body relayed to the client. */
const MAX_ERROR_BYTES = 64 * 1024;

export interface ModelGatewayOptions {
  catalogue: ModelCatalogue;
  upstream: Upstream;
  admission: Admission;
  usage: UsageSink;
  freeLimits: FreeModelLimits;
  metrics: ModelMetrics;
  clock: Clock;
  orgKeys?: OrgProviderKeys;
  allowUnpricedModels: boolean;
  maxAttempts: number;
}

export interface ModelCall {
  operation: Operation;
  /** Route pattern, for admission and the usage row. */
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

type Attempt =
  | { kind: 'response'; response: UpstreamResponse; model: CatalogueModel; apiKey: string | null }
  | { kind: 'failed'; failure: 'timeout' | 'error' }
  | { kind: 'abandoned' };

export function mayUsePaidModels(principal: Principal): boolean {
  return principal.kind !== 'anonymous' && can(principal, 'models.use', principal.orgId);
}

function requestedMaxOutput(body: Record<string, unknown>): number | null {
  for (const field of ['max_tokens', 'max_completion_tokens', 'max_output_tokens']) {
    const value = body[field];
    if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) return value;
  }
  return null;
}

/** Drops a provider body we will not read; undici reports the abort as an error nobody needs. */
function discard(body: UpstreamResponse['body']): void {
  body.on('error', () => undefined);
  body.destroy();
}

async function readBounded(body: UpstreamResponse['body'], limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > limit) {
      discard(body);
      throw new UpstreamError('network', 'the provider answer is too large');
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

export class ModelGateway {
  constructor(private readonly options: ModelGatewayOptions) {}

  get catalogue(): ModelCatalogue {
    return this.options.catalogue;
  }

  /** Models this caller may call: free ones for everyone, the rest for members allowed to use models. */
  visibleModels(principal: Principal): CatalogueModel[] {
    const paid = mayUsePaidModels(principal);
    return this.options.catalogue.models().filter((model) => model.free || paid);
  }

  async serve(call: ModelCall, reply: FastifyReply): Promise<void> {
    const { catalogue, metrics } = this.options;
    const model = catalogue.get(call.model);
    if (model === undefined || !model.provider.adapter.supports(call.operation)) throw new AppError('model_not_found');
    const anonymous = call.principal.kind === 'anonymous';
    if (!model.free) {
      if (anonymous) throw new AppError('paid_model_auth_required');
      if (!mayUsePaidModels(call.principal)) throw new AppError('model_not_found');
    }
    if (model.free) {
      const decision = await this.options.freeLimits.hit(call.principal.ip, anonymous);
      if (!decision.ok) throw new AppError('free_model_limit_reached', { retryAfterSeconds: decision.retryAfterSeconds, details: { limit: decision.limit } });
    }
    // Fallbacks an anonymous caller could not call directly are not reachable through a free model either.
    const chain = catalogue
      .chain(model, this.options.maxAttempts)
      .filter((candidate) => candidate.provider.adapter.supports(call.operation) && (candidate.free || !anonymous));
    const estimate = this.#estimate(call, chain);

    const admitted = await this.options.admission.admit({
      principal: call.principal,
      route: call.route,
      requestId: call.requestId,
      cost: estimate,
      dependency: `provider:${model.provider.id}`,
      kind: 'sync',
    });
    for (const [name, value] of Object.entries(admitted.headers)) reply.header(name, value);
    if (!admitted.ok) {
      const { refusal } = admitted;
      throw new AppError(refusal.code, {
        message: refusal.message,
        details: { gate: refusal.gate },
        ...(refusal.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: refusal.retryAfterSeconds }),
      });
    }
    const ticket = admitted.ticket;
    const abort = new AbortController();
    const onClose = (): void => {
      if (!reply.raw.writableFinished) abort.abort();
    };
    reply.raw.once('close', onClose);
    try {
      const attempt = await this.#attempt(call, chain, abort.signal);
      if (attempt.kind === 'abandoned') {
        await this.#finish(ticket, call, model, estimate, null, { kind: 'unmetered', reason: 'client_abort' });
        return;
      }
      if (attempt.kind === 'failed') {
        await ticket.settle({ kind: 'upstream_failure', reason: attempt.failure });
        metrics.requests.inc({ model: model.alias, outcome: 'upstream_failure' });
        throw new AppError(attempt.failure === 'timeout' ? 'upstream_timeout' : 'upstream_error');
      }
      const { response } = attempt;
      if (response.status >= 400) {
        await ticket.settle({ kind: 'upstream_failure', reason: 'error' });
        metrics.requests.inc({ model: model.alias, outcome: 'upstream_refused' });
        await this.#relayClientError(response, attempt.apiKey, reply);
        return;
      }
      const contentType = String(response.headers['content-type'] ?? '');
      if (call.stream && contentType.startsWith('text/event-stream')) {
        this.#stream(call, attempt.model, estimate, ticket, response, reply, abort);
        return;
      }
      await this.#json(call, attempt.model, estimate, ticket, response, reply, contentType);
    } catch (error) {
      // Whatever went wrong after admission, the reservation must not stay open.
      if (!ticket.settled) await ticket.settle({ kind: 'upstream_failure', reason: 'error' });
      throw error;
    } finally {
      if (!call.stream) reply.raw.off('close', onClose);
    }
  }

  #estimate(call: ModelCall, chain: readonly CatalogueModel[]): CostEstimate {
    const maxOutput = requestedMaxOutput(call.body);
    let maxMicros = 0;
    let maxTokens = 0;
    for (const candidate of chain) {
      if (candidate.price === null && !this.options.allowUnpricedModels) throw new AppError('unknown_price', { details: { model: candidate.alias } });
      const output = call.operation === 'embeddings' || call.operation === 'transcriptions' ? 0 : (maxOutput ?? candidate.maxOutputTokens);
      // Audio is bounded by its size at a very low bitrate (1 kB/s), so the bound always holds.
      const usage: Usage = { ...ZERO_USAGE, inputTokens: call.inputBytes, outputTokens: output, audioSeconds: call.operation === 'transcriptions' ? Math.ceil(call.inputBytes / 1000) : 0 };
      maxMicros = Math.max(maxMicros, costMicros(usage, candidate.price));
      maxTokens = Math.max(maxTokens, totalTokens(usage));
    }
    return { model: call.model, maxMicros, maxTokens };
  }

  async #keyFor(principal: Principal, model: CatalogueModel): Promise<string | null> {
    if (principal.orgId !== null && this.options.orgKeys !== undefined) {
      const own = await this.options.orgKeys.keyFor(principal.orgId, model.provider.id);
      if (own !== null) return own;
    }
    return model.provider.managedKey;
  }

  async #attempt(call: ModelCall, chain: readonly CatalogueModel[], signal: AbortSignal): Promise<Attempt> {
    let failure: 'timeout' | 'error' = 'error';
    for (const candidate of chain) {
      if (signal.aborted) return { kind: 'abandoned' };
      const apiKey = await this.#keyFor(call.principal, candidate);
      const provider = candidate.provider;
      let response: UpstreamResponse;
      try {
        response = await this.options.upstream.send({ ...(await this.#request(call, candidate, apiKey)), timeoutMs: provider.timeoutMs, signal });
      } catch (error) {
        if (signal.aborted) return { kind: 'abandoned' };
        const classified = classifyUpstreamError(error);
        if (classified.kind === 'egress_refused') throw new AppError('egress_refused');
        failure = classified.kind === 'timeout' ? 'timeout' : 'error';
        this.options.metrics.fallbacks.inc({ model: candidate.alias });
        continue;
      }
      if (response.status === 429 || response.status >= 500) {
        discard(response.body);
        failure = 'error';
        this.options.metrics.fallbacks.inc({ model: candidate.alias });
        continue;
      }
      return { kind: 'response', response, model: candidate, apiKey };
    }
    return { kind: 'failed', failure };
  }

  async #request(call: ModelCall, model: CatalogueModel, apiKey: string | null): Promise<{ url: string; method: 'POST'; headers: Record<string, string>; body: string | Buffer }> {
    const adapter = model.provider.adapter;
    if (call.multipart !== undefined) {
      const form = new FormData();
      for (const [name, value] of call.multipart.entries()) form.append(name, name === 'model' ? model.upstreamModel : value);
      // The platform's own multipart encoder (fetch's Request) writes the body and its boundary.
      const encoded = new Request('http://form.invalid/', { method: 'POST', body: form });
      return {
        url: `${model.provider.baseUrl}/audio/transcriptions`,
        method: 'POST',
        headers: { ...adapter.authHeaders(apiKey), 'content-type': encoded.headers.get('content-type') ?? 'multipart/form-data' },
        body: Buffer.from(await encoded.arrayBuffer()),
      };
    }
    const built = adapter.buildRequest({ operation: call.operation, body: call.body, upstreamModel: model.upstreamModel, apiKey, stream: call.stream, clientHeaders: call.clientHeaders });
    return { url: `${model.provider.baseUrl}${built.path}`, method: 'POST', headers: built.headers, body: JSON.stringify(built.body) };
  }

  async #relayClientError(response: UpstreamResponse, apiKey: string | null, reply: FastifyReply): Promise<void> {
    const body = await readBounded(response.body, MAX_ERROR_BYTES).catch(() => Buffer.alloc(0));
    // A provider's 401/403 is about our credential, not the caller's: say so without echoing anything.
    if (response.status === 401 || response.status === 403) throw new AppError('upstream_error', { message: 'The provider refused the gateway credential for this model.' });
    let text = body.toString('utf8');
    if (apiKey !== null && apiKey.length > 0) text = text.split(apiKey).join('[redacted]');
    await reply.code(response.status).type('application/json').send(text);
  }

  async #json(call: ModelCall, model: CatalogueModel, estimate: CostEstimate, ticket: AdmissionTicket, response: UpstreamResponse, reply: FastifyReply, contentType: string): Promise<void> {
    const body = await readBounded(response.body, MAX_JSON_RESPONSE_BYTES);
    let usage: Usage | null = null;
    if (contentType.includes('json')) {
      try {
        usage = model.provider.adapter.parseUsage(call.operation, JSON.parse(body.toString('utf8')));
      } catch {
        usage = null;
      }
    }
    await this.#finish(ticket, call, model, estimate, usage, usage === null ? { kind: 'unmetered', reason: 'no_usage' } : null);
    await reply.code(200).type(contentType === '' ? 'application/json' : contentType).send(body);
  }

  #stream(call: ModelCall, model: CatalogueModel, estimate: CostEstimate, ticket: AdmissionTicket, response: UpstreamResponse, reply: FastifyReply, abort: AbortController): void {
    const observer = model.provider.adapter.streamUsage(call.operation, call.clientWantsUsage);
    let done = false;
    const settleOnce = (outcome: SettleOutcome | null): void => {
      if (done) return;
      done = true;
      void this.#finish(ticket, call, model, estimate, observer.usage(), outcome);
    };
    reply.raw.once('close', () => {
      if (reply.raw.writableFinished) return;
      abort.abort();
      settleOnce({ kind: 'unmetered', reason: 'client_abort' });
    });
    const upstreamBody = response.body;
    async function* pump(): AsyncGenerator<Buffer> {
      let pending = '';
      const decoder = new TextDecoder();
      let failure: 'timeout' | 'no_usage' | null = null;
      try {
        for await (const chunk of upstreamBody) {
          pending += decoder.decode(chunk as Buffer, { stream: true });
          if (pending.includes('\r')) pending = pending.replace(/\r\n/g, '\n');
          let out = '';
          let end = pending.indexOf('\n\n');
          while (end !== -1) {
            const event = pending.slice(0, end + 2);
            pending = pending.slice(end + 2);
            if (observer.onEvent(event)) out += event;
            end = pending.indexOf('\n\n');
          }
          if (out !== '') yield Buffer.from(out);
        }
        if (pending !== '' && observer.onEvent(pending)) yield Buffer.from(pending);
      } catch (error) {
        failure = classifyUpstreamError(error).kind === 'timeout' ? 'timeout' : 'no_usage';
      } finally {
        if (abort.signal.aborted) settleOnce({ kind: 'unmetered', reason: 'client_abort' });
        else if (failure === 'timeout') settleOnce({ kind: 'unmetered', reason: 'timeout' });
        else settleOnce(observer.usage() === null || failure !== null ? { kind: 'unmetered', reason: 'no_usage' } : null);
        discard(upstreamBody);
      }
    }
    void reply
      .code(200)
      .header('content-type', 'text/event-stream; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header('x-accel-buffering', 'no')
      .send(Readable.from(pump(), { objectMode: false }));
  }

  /** Settles the ticket (success with usage, or the given outcome) and records one usage row. */
  async #finish(ticket: AdmissionTicket, call: ModelCall, model: CatalogueModel, estimate: CostEstimate, usage: Usage | null, outcome: SettleOutcome | null): Promise<void> {
    const metered = usage ?? ZERO_USAGE;
    const actualMicros = costMicros(metered, model.price);
    const settle: SettleOutcome = outcome ?? { kind: 'success', actualMicros, actualTokens: totalTokens(metered) };
    const unmetered = settle.kind === 'unmetered';
    const billed = unmetered ? estimate.maxMicros : actualMicros;
    const { metrics } = this.options;
    metrics.requests.inc({ model: model.alias, outcome: settle.kind });
    metrics.tokens.inc({ model: model.alias, direction: 'input' }, metered.inputTokens);
    metrics.tokens.inc({ model: model.alias, direction: 'output' }, metered.outputTokens);
    metrics.cost.inc({ model: model.alias }, billed);
    const { principal } = call;
    this.options.usage.record({
      at: this.options.clock.now(),
      orgId: principal.orgId,
      userId: principal.userId,
      keyId: principal.keyId ?? null,
      model: model.alias,
      provider: model.provider.id,
      inputTokens: metered.inputTokens,
      outputTokens: metered.outputTokens,
      cachedInputTokens: metered.cachedInputTokens,
      costMicros: billed,
      free: model.free,
      unmetered,
    });
    await ticket.settle(settle);
  }
}
