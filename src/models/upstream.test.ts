import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UpstreamError} from './upstream.js';
import { Upstream, UpstreamAbort, type BodySink } from './upstream.js';

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

describe('upstream client (undici dispatch)', () => {
  let server: Server;
  let base: string;
  let handler: Handler = (_request, response) => response.end('{}');
  const closed: string[] = [];
  const upstream = new Upstream({ allow: { loopback: true, private: false } });

  beforeAll(async () => {
    server = createServer((request, response) => {
      request.on('close', () => closed.push(request.url ?? ''));
      handler(request, response);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await upstream.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const call = (path: string, extra: { timeoutMs?: number; abort?: UpstreamAbort } = {}) =>
    upstream.send({ url: `${base}${path}`, method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}', timeoutMs: extra.timeoutMs ?? 2000, ...(extra.abort === undefined ? {} : { abort: extra.abort }) });

  it('sends the body and reads a bounded answer whole', async () => {
    handler = (request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => response.writeHead(201, { 'content-type': 'application/json', 'x-echo': request.headers['content-type'] ?? '' }).end(JSON.stringify({ got: body })));
    };
    const response = await call('/echo');
    expect(response.status).toBe(201);
    expect(response.headers['x-echo']).toBe('application/json');
    expect(JSON.parse((await response.read(1024)).toString())).toEqual({ got: '{"a":1}' });
  });

  it('an answer above the read limit fails as a network error instead of being held', async () => {
    handler = (_request, response) => response.end(Buffer.alloc(256 * 1024, 120));
    const response = await call('/large');
    await expect(response.read(64 * 1024)).rejects.toMatchObject({ name: 'UpstreamError', kind: 'network' });
  });

  it('a sink that says "enough" pauses the provider socket: a slow client never makes us buffer without bound', async () => {
    const total = 64 * 1024 * 1024;
    let written = 0;
    handler = (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      const piece = Buffer.alloc(64 * 1024, 97);
      const pump = (): void => {
        while (written < total) {
          written += piece.length;
          if (!response.write(piece)) {
            response.once('drain', pump);
            return;
          }
        }
        response.end();
      };
      pump();
    };
    const response = await call('/flood');
    let received = 0;
    let ended = false;
    let paused = false;
    const sink: BodySink = {
      chunk: (data) => {
        received += data.length;
        // Say "stop" after the first megabyte, and keep saying it.
        paused = received >= 1024 * 1024;
        return !paused;
      },
      end: () => (ended = true),
      error: (error) => {
        throw error;
      },
    };
    response.pipe(sink);
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Paused: what arrived is the first megabyte plus at most what was already in flight, and the
    // server is stuck behind full socket buffers far short of the whole answer.
    expect(received).toBeLessThan(4 * 1024 * 1024);
    expect(written).toBeLessThan(total / 2);
    const stalledAt = received;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(received).toBe(stalledAt);
    // Resuming for good lets the rest through.
    sink.chunk = (data) => {
      received += data.length;
      return true;
    };
    response.resume();
    const deadline = Date.now() + 10_000;
    while (!ended && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(ended).toBe(true);
    expect(received).toBe(total);
  });

  it('an abandoned call stops waiting at once and drops the connection', async () => {
    handler = () => undefined; // never answers
    const abort = new UpstreamAbort();
    const pending = call('/hang', { abort });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    abort.abort();
    await expect(pending).rejects.toMatchObject({ kind: 'network' });
    expect(Date.now() - started).toBeLessThan(500);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(closed).toContain('/hang');
  });

  it('an abandoned stream ends its sink with an error and the provider sees the connection go', async () => {
    handler = (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write('data: 1\n\n');
    };
    const abort = new UpstreamAbort();
    const response = await call('/stream-then-abort', { abort });
    const failure = new Promise<UpstreamError>((resolve) => response.pipe({ chunk: () => true, end: () => undefined, error: resolve }));
    abort.abort();
    expect((await failure).kind).toBe('network');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(closed).toContain('/stream-then-abort');
  });

  it('no answer within the timeout is a timeout', async () => {
    handler = () => undefined;
    await expect(call('/slow', { timeoutMs: 100 })).rejects.toMatchObject({ kind: 'timeout' });
  });

  it('an IP-literal host in a refused class is refused before any connection, every time', async () => {
    const strict = new Upstream({ allow: { loopback: false, private: false } });
    try {
      for (const url of ['http://169.254.169.254/v1/chat', 'http://127.0.0.1:9/v1/chat', 'http://[::1]:9/v1/chat']) {
        await expect(strict.send({ url, method: 'POST', headers: {}, timeoutMs: 1000 })).rejects.toMatchObject({ kind: 'egress_refused' });
        await expect(strict.send({ url, method: 'POST', headers: {}, timeoutMs: 1000 })).rejects.toMatchObject({ kind: 'egress_refused' });
      }
    } finally {
      await strict.close();
    }
  });
});
