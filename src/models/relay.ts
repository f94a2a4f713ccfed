/**
 * Passing a provider's answer to the client: a JSON body read whole (bounded) and metered from its
 * usage; a server-sent event stream relayed event by event with backpressure (the provider's socket
 * pauses while the client is slow, so nothing is buffered without bound), metered from the usage
 * event and settled exactly once however the stream ends; a provider's error relayed without our
 * credential in it.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
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
  // Settled before the answer goes out, so a caller's next request sees this one's spend.
  await end(usage, usage === null ? { kind: 'unmetered', reason: 'no_usage' } : null);
  // Not awaited: awaiting a reply waits for the response to finish, which nothing here needs.
  void reply.code(200).type(contentType === '' ? 'application/json' : contentType).send(body);
}

export async function relayClientError(response: UpstreamResponse, apiKey: string | null, reply: FastifyReply): Promise<void> {
  const body = await response.read(MAX_ERROR_BYTES).catch(() => Buffer.alloc(0));
  // A provider's 401/403 is about our credential, not the caller's: say so without echoing anything.
  if (response.status === 401 || response.status === 403) throw new AppError('upstream_error', { message: 'The provider refused the gateway credential for this model.' });
  let text = body.toString('utf8');
  if (apiKey !== null && apiKey.length > 0) text = text.split(apiKey).join('[redacted]');
  await reply.code(response.status).type('application/json').send(text);
}

/** Headers of a relayed event stream, after the ones the request already carries. */
const STREAM_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' };

/**
 * The stream is written straight to the connection rather than through a stream object and the
 * framework's piping (which cost a measurable share of a streamed call): the reply is hijacked,
 * the headers already set on it (request id, security, admission) go out with the status line.
 */
function openEventStream(reply: FastifyReply): ServerResponse {
  const headers: OutgoingHttpHeaders = {};
  const set = reply.getHeaders();
  for (const name in set) {
    const value = set[name];
    if (value !== undefined) headers[name] = value;
  }
  Object.assign(headers, STREAM_HEADERS);
  // A stream that opens while the gateway shuts down is the connection's last answer, as any other
  // answer then is (the shell's onSend hook, which a hijacked reply bypasses, says so for those).
  if (reply.server.closing) headers.connection = 'close';
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, headers);
  return raw;
}

export function relayStream(response: UpstreamResponse, observer: StreamObserver, reply: FastifyReply, abort: UpstreamAbort, end: RelayEnd): void {
  let done = false;
  const settleOnce = (outcome: SettleOutcome | null): void => {
    if (done) return;
    done = true;
    void end(observer.usage(), outcome);
  };
  const raw = openEventStream(reply);
  const clientGone = (): void => {
    abort.abort();
    settleOnce({ kind: 'unmetered', reason: 'client_abort' });
  };
  // A client already gone has emitted its 'close': nothing would abort the call, and a write to it
  // waits for a 'drain' that never comes.
  if (raw.destroyed) {
    response.discard();
    clientGone();
    return;
  }
  raw.once('close', () => {
    if (!raw.writableFinished) clientGone();
  });
  // A slow client: the provider's socket stays paused until the client has taken what we wrote.
  const resumeOnDrain = (): void => response.resume();
  const write = (bytes: Buffer): boolean => {
    if (bytes.length === 0 || raw.write(bytes)) return true;
    raw.once('drain', resumeOnDrain);
    return false;
  };
  const splitter = new EventSplitter(observer);
  response.pipe({
    chunk: (data) => {
      const out = splitter.feed(data);
      if (out === null) {
        response.discard();
        settleOnce({ kind: 'unmetered', reason: 'no_usage' });
        raw.end();
        return false;
      }
      return write(out);
    },
    end: () => {
      const rest = splitter.rest();
      settleOnce(observer.usage() === null ? { kind: 'unmetered', reason: 'no_usage' } : null);
      if (rest.length > 0) raw.end(rest);
      else raw.end();
    },
    error: (error) => {
      if (abort.aborted) settleOnce({ kind: 'unmetered', reason: 'client_abort' });
      else settleOnce({ kind: 'unmetered', reason: error.kind === 'timeout' ? 'timeout' : 'no_usage' });
      raw.end();
    },
  });
}
