/**
 * The provider simulator's HTTP server: plain node:http, no framework, so it costs as little as
 * possible and stays the fair baseline every benchmark compares against. Routing, bounded body
 * reading, failure injection, delays and stream writing live here; response shapes live in
 * openai.ts / anthropic.ts and are rendered (and cached) by handlers.ts.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { anthropicModelsJson } from './anthropic.js';
import {
  DEFAULT_BEHAVIOUR,
  FailureInjector,
  behaviourForRequest,
  controlConfigSchema,
  failureFromHeader,
  type Behaviour,
  type BehaviourPatch,
  type FailureMode,
  type FailurePlan,
} from './behaviour.js';
import { transcribe } from './transcription.js';
import { errorFor, renderEmbeddings, renderText, type TextProtocol } from './handlers.js';
import { modelsJson } from './openai.js';
import { RequestRecorder, finish, type RecordedRequest } from './recorder.js';
import { fill, type JsonReply, type Reply, type StreamReply } from './reply.js';

export interface SimulatorOptions {
  /** Defaults to 127.0.0.1: the simulator is a test fixture and never listens beyond loopback by default. */
  host?: string;
  /** Defaults to 0 (an ephemeral port). */
  port?: number;
  behaviour?: BehaviourPatch;
  failure?: FailurePlan | null;
  /** Models listed by `GET /v1/models`; requests may name any model. */
  models?: readonly string[];
  /** How many recent requests `/_sim/requests` keeps (0 disables recording). Default 200. */
  recordLimit?: number;
  /**
   * When set, API requests must present this key (`Authorization: Bearer` or `x-api-key`), else 401
   * in the provider's envelope: a gateway test can prove which credential was injected.
   */
  apiKey?: string;
  /** Body limit for JSON requests (default 1 MiB) and for audio uploads (default 25 MiB). */
  maxJsonBytes?: number;
  maxAudioBytes?: number;
  /** Sent as `retry-after-ms` on injected 429/500 so SDK retries stay fast in tests. Default 10. */
  retryAfterMs?: number;
}

export interface SimulatorConfig {
  behaviour: Behaviour;
  failure: FailurePlan | null;
}

export interface Simulator {
  url: string;
  port: number;
  /** Merges behaviour fields; `failure` replaces the failure plan (null clears it). */
  configure(patch: BehaviourPatch & { failure?: FailurePlan | null }): void;
  config(): SimulatorConfig;
  /** Recorded requests, oldest first. */
  requests(): RecordedRequest[];
  lastRequest(): RecordedRequest | undefined;
  clearRequests(): void;
  /** Back to the start options' behaviour, no failure plan, no recorded requests. */
  reset(): void;
  close(): Promise<void>;
}

const DEFAULT_MODELS = ['sim-chat', 'sim-chat-large', 'sim-embed', 'sim-whisper', 'sim-claude'];

type Route = TextProtocol | 'embeddings' | 'transcriptions' | 'models';

const API_ROUTES: Record<string, Route | undefined> = {
  'POST /v1/chat/completions': 'chat',
  'POST /v1/completions': 'completions',
  'POST /v1/responses': 'responses',
  'POST /v1/embeddings': 'embeddings',
  'POST /v1/audio/transcriptions': 'transcriptions',
  'POST /v1/messages': 'messages',
  'GET /v1/models': 'models',
};

export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const initial: Behaviour = { ...DEFAULT_BEHAVIOUR, ...controlConfigSchema.parse(options.behaviour ?? {}) };
  let behaviour: Behaviour = { ...initial };
  const injector = new FailureInjector();
  injector.set(options.failure ?? null);
  const recorder = new RequestRecorder(options.recordLimit ?? 200);
  const models = options.models ?? DEFAULT_MODELS;
  const maxJsonBytes = options.maxJsonBytes ?? 1024 * 1024;
  const maxAudioBytes = options.maxAudioBytes ?? 25 * 1024 * 1024;
  const retryAfterMs = String(options.retryAfterMs ?? 10);
  const idPrefix = `sim${Date.now().toString(36)}`;
  const created = Math.floor(Date.now() / 1000);

  const configure = (patch: BehaviourPatch & { failure?: FailurePlan | null }): void => {
    const { failure, ...fields } = controlConfigSchema.parse(patch);
    behaviour = { ...behaviour, ...fields };
    if (failure !== undefined) injector.set(failure);
  };

  const authorised = (req: IncomingMessage): boolean => {
    if (options.apiKey === undefined) return true;
    return req.headers.authorization === `Bearer ${options.apiKey}` || req.headers['x-api-key'] === options.apiKey;
  };

  const handleControl = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    const key = `${req.method ?? ''} ${path}`;
    if (key === 'GET /_sim/requests') return sendJson(res, 200, { total: recorder.total, requests: recorder.list() });
    if (key === 'DELETE /_sim/requests') {
      recorder.clear();
      return sendJson(res, 200, { ok: true });
    }
    if (key === 'GET /_sim/config') return sendJson(res, 200, { behaviour, failure: injector.plan });
    if (key === 'GET /_sim/stats') return sendJson(res, 200, processStats(recorder.total));
    if (key === 'POST /_sim/reset') {
      behaviour = { ...initial };
      injector.set(null);
      recorder.clear();
      return sendJson(res, 200, { ok: true });
    }
    if (key === 'POST /_sim/config') {
      const body = await readBody(req, 64 * 1024);
      const parsed = body === null ? null : controlConfigSchema.safeParse(parseJson(body));
      if (parsed === null || !parsed.success) return sendJson(res, 400, { error: parsed?.error.message ?? 'body too large' });
      configure(parsed.data);
      return sendJson(res, 200, { behaviour, failure: injector.plan });
    }
    return sendJson(res, 404, { error: 'unknown control endpoint' });
  };

  const handleApi = async (req: IncomingMessage, res: ServerResponse, route: Route, record: RecordedRequest): Promise<void> => {
    const anthropic = route === 'messages' || (route === 'models' && req.headers['anthropic-version'] !== undefined);
    const protocolForErrors = anthropic ? (route === 'messages' ? 'messages' : 'models-anthropic') : 'other';
    const requestBehaviour = behaviourForRequest(behaviour, req.headers);

    let body: Record<string, unknown> | null = null;
    let raw: Buffer | null = null;
    if (req.method === 'POST') {
      raw = await readBody(req, route === 'transcriptions' ? maxAudioBytes : maxJsonBytes);
      if (raw === null) return sendReply(res, record, errorFor(protocolForErrors, 413, 'request body too large'), '', true);
      record.bodyBytes = raw.length;
      if (route !== 'transcriptions') {
        const parsed = parseJson(raw);
        if (parsed === undefined) return sendReply(res, record, errorFor(protocolForErrors, 400, 'body must be a JSON object'), '');
        body = parsed;
        record.body = parsed;
        record.stream = parsed.stream === true;
      }
    }
    if (!authorised(req)) return sendReply(res, record, errorFor(protocolForErrors, 401, 'invalid api key'), '');

    const failure: FailureMode | undefined = failureFromHeader(req.headers) ?? injector.next();
    if (failure === 'hang') {
      // Never answer; the record turns `aborted` when the caller gives up, and close() ends it.
      record.outcome = 'hung';
      return;
    }
    if (failure !== undefined) {
      const reply = errorFor(protocolForErrors, failure, failure === 429 ? 'simulated rate limit' : 'simulated server error');
      res.setHeader('retry-after-ms', retryAfterMs);
      if (failure === 429) res.setHeader('retry-after', '0');
      return sendReply(res, record, reply, '');
    }

    let reply: Reply;
    if (route === 'models') reply = anthropic ? anthropicModelsJson(models, new Date(created * 1000).toISOString()) : modelsJson(models, created);
    else if (route === 'transcriptions') {
      const result = await transcribe(raw ?? Buffer.alloc(0), req.headers['content-type'], requestBehaviour);
      record.body = result.summary;
      reply = result.reply;
    } else if (body === null) reply = errorFor(protocolForErrors, 400, 'body required');
    else if (route === 'embeddings') reply = renderEmbeddings(body, requestBehaviour);
    else reply = renderText(route, body, requestBehaviour, created);

    if (requestBehaviour.latencyMs > 0) await sleep(requestBehaviour.latencyMs);
    if (res.destroyed) return;
    const id = `${idPrefix}${record.seq.toString(36)}`;
    if (reply.kind === 'json') return sendReply(res, record, reply, id);
    return writeStream(res, record, reply, id, requestBehaviour);
  };

  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    if (path.startsWith('/_sim/')) {
      handleControl(req, res, path).catch(() => sendJson(res, 500, { error: 'control failure' }));
      return;
    }
    const route = API_ROUTES[`${req.method ?? ''} ${path}`];
    const record = recorder.start(req.method ?? '', path, req.headers);
    res.on('close', () => {
      const failed = record.status !== null && record.status >= 400;
      finish(record, res.writableFinished ? (failed ? 'failed' : 'completed') : 'aborted', null);
    });
    if (route === undefined) {
      sendReply(res, record, errorFor('other', 404, `no route for ${req.method ?? ''} ${path}`), '');
      return;
    }
    handleApi(req, res, route, record).catch(() => {
      if (!res.headersSent) sendReply(res, record, errorFor('other', 500, 'simulator failure'), '');
      else res.destroy();
    });
  });
  // Long keep-alive so a load generator's pooled connections are not recycled mid-run.
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 65_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    configure,
    config: () => ({ behaviour: { ...behaviour }, failure: injector.plan }),
    requests: () => recorder.list(),
    lastRequest: () => recorder.list().at(-1),
    clearRequests: () => recorder.clear(),
    reset: () => {
      behaviour = { ...initial };
      injector.set(null);
      recorder.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Hung requests and idle keep-alive sockets would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
}

/** Reads the body up to `limit` bytes; null when it is larger (the rest is discarded). */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > limit) {
    req.resume();
    return Promise.resolve(null);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) over = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(over ? null : chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseJson(raw: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(raw.toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

function sendReply(res: ServerResponse, record: RecordedRequest, reply: JsonReply, id: string, closeAfter = false): void {
  record.usage = reply.status === 200 ? reply.usage : null;
  record.status = reply.status;
  const body = fill(reply.parts, id);
  const headers: Record<string, string | number> = { 'content-type': reply.contentType, 'content-length': Buffer.byteLength(body) };
  if (closeAfter) headers.connection = 'close';
  res.writeHead(reply.status, headers);
  res.end(body);
}

const STREAM_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' };

async function writeStream(res: ServerResponse, record: RecordedRequest, reply: StreamReply, id: string, behaviour: Behaviour): Promise<void> {
  record.status = 200;
  record.stream = true;
  const cutAt = behaviour.abortAfterChunks;
  record.usage = reply.usage === null ? null : { ...reply.usage, reported: reply.usage.reported && cutAt === null };
  res.writeHead(200, STREAM_HEADERS);
  if (behaviour.chunkDelayMs === 0 && cutAt === null) {
    // The common benchmark case: the whole stream in one write.
    let out = '';
    for (const event of reply.head) out += fill(event, id);
    for (const event of reply.pieces) out += fill(event, id);
    for (const event of reply.tail) out += fill(event, id);
    res.end(out);
    return;
  }
  let head = '';
  for (const event of reply.head) head += fill(event, id);
  await writeFlushed(res, head);
  for (let index = 0; index < reply.pieces.length; index += 1) {
    if (cutAt !== null && index >= cutAt) return cut(res, record);
    if (index > 0 && behaviour.chunkDelayMs > 0) await sleep(behaviour.chunkDelayMs);
    if (res.destroyed) return;
    await writeFlushed(res, fill(reply.pieces[index] ?? [], id));
  }
  // Asked to cut after at least every content chunk: still drop the tail (no usage, no terminator).
  if (cutAt !== null) return cut(res, record);
  if (behaviour.chunkDelayMs > 0) await sleep(behaviour.chunkDelayMs);
  if (res.destroyed) return;
  let tail = '';
  for (const event of reply.tail) tail += fill(event, id);
  res.end(tail);
}

/** Writes and waits until the bytes left for the socket, so a later cut cannot discard them. */
function writeFlushed(res: ServerResponse, text: string): Promise<void> {
  return new Promise((resolve) => {
    if (res.destroyed) return resolve();
    res.write(text, () => resolve());
  });
}

/** Ends the connection mid-body (no final chunk): the client sees a stream that broke off. */
function cut(res: ServerResponse, record: RecordedRequest): void {
  finish(record, 'cut', 200);
  res.destroy();
}

function processStats(requests: number) {
  const cpu = process.cpuUsage();
  return {
    pid: process.pid,
    requests,
    cpuUserMicros: cpu.user,
    cpuSystemMicros: cpu.system,
    rssBytes: process.memoryUsage.rss(),
    // resourceUsage reports the peak resident set in kilobytes.
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
  };
}
