/**
 * Passing a provider's answer to the client: a JSON body read whole (bounded) and metered from its
 * usage; a server-sent event stream relayed event by event with backpressure (the provider's socket
 * pauses while the client is slow, so nothing is buffered without bound), metered from the usage
 * event and settled exactly once however the stream ends; a provider's error relayed without our
 * credential in it.
 */
import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import type { SettleOutcome } from '../admission/types.js';
import { AppError } from '../core/errors.js';
import type { Operation, ProviderAdapter, StreamObserver } from './providers/index.js';
import { EventSplitter } from './sse-events.js';
import type { Usage } from './pricing.js';
import type { UpstreamAbort, UpstreamResponse } from './upstream.js';

/** Largest non-streamed provider answer we hold in memory. */
const MAX_JSON_RESPONSE_BYTES = 64 * 1024 * 1024;
/** Largest provider error body relayed to the client. */
const MAX_ERROR_BYTES = 64 * 1024;

/** How a relayed call ends: its usage (null when unknown) and, unless it succeeded, the outcome. */
export type RelayEnd = (usage: Usage | null, outcome: SettleOutcome | null) => Promise<void>;

export async function relayJson(response: UpstreamResponse, adapter: ProviderAdapter, operation: Operation, reply: FastifyReply, end: RelayEnd): Promise<void> {
  const body = await response.read(MAX_JSON_RESPONSE_BYTES);
  const contentType = String(response.headers['content-type'] ?? '');
  let usage: Usage | null = null;
  if (contentType.includes('json')) {
    try {
      usage = adapter.parseUsage(operation, JSON.parse(body.toString('utf8')));
    } catch {
      usage = null;
    }
  }
  await end(usage, usage === null ? { kind: 'unmetered', reason: 'no_usage' } : null);
  await reply.code(200).type(contentType === '' ? 'application/json' : contentType).send(body);
}

export async function relayClientError(response: UpstreamResponse, apiKey: string | null, reply: FastifyReply): Promise<void> {
  const body = await response.read(MAX_ERROR_BYTES).catch(() => Buffer.alloc(0));
  // A provider's 401/403 is about our credential, not the caller's: say so without echoing anything.
  if (response.status === 401 || response.status === 403) throw new AppError('upstream_error', { message: 'The provider refused the gateway credential for this model.' });
  let text = body.toString('utf8');
  if (apiKey !== null && apiKey.length > 0) text = text.split(apiKey).join('[redacted]');
  await reply.code(response.status).type('application/json').send(text);
}

/** The client side of a relayed stream: reading from it asks the provider for more. */
class EventRelay extends Readable {
  constructor(private readonly upstream: UpstreamResponse) {
    super();
  }

  override _read(): void {
    this.upstream.resume();
  }
}

export function relayStream(response: UpstreamResponse, observer: StreamObserver, reply: FastifyReply, abort: UpstreamAbort, end: RelayEnd): void {
  let done = false;
  const settleOnce = (outcome: SettleOutcome | null): void => {
    if (done) return;
    done = true;
    void end(observer.usage(), outcome);
  };
  reply.raw.once('close', () => {
    if (reply.raw.writableFinished) return;
    abort.abort();
    settleOnce({ kind: 'unmetered', reason: 'client_abort' });
  });
  const relay = new EventRelay(response);
  const splitter = new EventSplitter(observer);
  response.pipe({
    chunk: (data) => {
      const out = splitter.feed(data);
      if (out === null) {
        response.discard();
        settleOnce({ kind: 'unmetered', reason: 'no_usage' });
        relay.push(null);
        return false;
      }
      return out === '' ? true : relay.push(Buffer.from(out));
    },
    end: () => {
      const rest = splitter.rest();
      if (rest !== '') relay.push(Buffer.from(rest));
      settleOnce(observer.usage() === null ? { kind: 'unmetered', reason: 'no_usage' } : null);
      relay.push(null);
    },
    error: (error) => {
      if (abort.aborted) settleOnce({ kind: 'unmetered', reason: 'client_abort' });
      else settleOnce({ kind: 'unmetered', reason: error.kind === 'timeout' ? 'timeout' : 'no_usage' });
      relay.push(null);
    },
  });
  void reply
    .code(200)
    .header('content-type', 'text/event-stream; charset=utf-8')
    .header('cache-control', 'no-cache')
    .header('x-accel-buffering', 'no')
    .send(relay);
}
