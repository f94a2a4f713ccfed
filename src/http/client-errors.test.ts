/**
 * Requests Node's parser refuses never reach a route; over a real socket they still get the one
 * error shape (not the framework's), and the connection is closed after it. A body refused as too
 * large is read to its end first (refused-body.ts), so the client reads the 413.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpApp } from './app.js';
import { createTestHttpApp } from './testing.js';

let http: HttpApp;
let port: number;

/** Listens on a loopback port of its own and says which. */
async function listen(app: HttpApp): Promise<number> {
  await app.app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.app.server.address();
  return typeof address === 'object' && address !== null ? address.port : 0;
}

beforeAll(async () => {
  http = createTestHttpApp();
  port = await listen(http);
});

afterAll(async () => {
  await http.app.close();
});

/** A raw connection: what the server sent so far, and everything it sent once it closes. */
function rawConnection(to: number): { socket: Socket; received: () => string; closed: Promise<string> } {
  const socket = connect(to, '127.0.0.1');
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (received += chunk));
  const closed = new Promise<string>((resolve, reject) => {
    socket.on('end', () => resolve(received));
    socket.on('error', reject);
  });
  return { socket, received: () => received, closed };
}

/** Sends raw bytes and reads until the server closes the connection. */
function exchange(raw: string): Promise<string> {
  const connection = rawConnection(port);
  connection.socket.write(raw);
  return connection.closed;
}

function parse(answer: string): { status: number; headers: string; body: unknown } {
  const [head = '', body = ''] = answer.split('\r\n\r\n');
  return { status: Number(head.split(' ')[1]), headers: head.toLowerCase(), body: JSON.parse(body) as unknown };
}

describe('requests the HTTP parser refuses', () => {
  it('a header holding a control character gets 400 in our shape, and the connection closes', async () => {
    const answer = parse(await exchange('GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: a\x01b\r\n\r\n'));
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({ error: { code: 'bad_request', message: 'The request is malformed.' } });
    expect(answer.headers).toContain('connection: close');
    expect(answer.headers).toContain('x-content-type-options: nosniff');
  });

  it('headers over the size limit get 431 in our shape', async () => {
    const answer = parse(await exchange(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`));
    expect(answer.status).toBe(431);
    expect(answer.body).toEqual({ error: { code: 'headers_too_large', message: 'The request headers are too large.' } });
  });

  it('a request whose body trickles in past the request timeout gets 408 in our shape, and the connection closes', async () => {
    const slow = createTestHttpApp({ requestTimeoutMs: 1_000 });
    const slowPort = await listen(slow);
    try {
      const started = performance.now();
      const { socket, closed } = rawConnection(slowPort);
      // Headers at once, then one byte of a 100-byte body every 100 ms: never a whole request.
      socket.write('POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n');
      const drip = setInterval(() => socket.write(' '), 100);
      socket.on('close', () => clearInterval(drip));
      const answer = await closed;
      const elapsed = performance.now() - started;
      const parsed = parse(answer);
      expect(parsed.status).toBe(408);
      expect(parsed.body).toEqual({ error: { code: 'request_timeout', message: 'The request took too long to arrive.' } });
      // Past the timeout, within a checking interval (a quarter of it) and some slack of it.
      expect(elapsed).toBeGreaterThanOrEqual(950);
      expect(elapsed).toBeLessThan(3_000);
    } finally {
      await slow.app.close();
    }
  });

  it('a request line that is not HTTP gets 400, and the server keeps answering others', async () => {
    expect(parse(await exchange('NOT HTTP AT ALL\r\n\r\n')).status).toBe(400);
    const response = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(response.status).toBe(200);
  });
});

describe('bodies refused as too large', () => {
  it('a body over the limit is read to its end before the 413, so a client still sending reads the answer', async () => {
    // The test app's limit is 1 MiB; 3 MiB declared, sent in two parts with a pause between them.
    const body = Buffer.alloc(3 * 1024 * 1024, 0x20);
    const { socket, received, closed } = rawConnection(port);
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(`POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
    socket.write(body.subarray(0, 2 * 1024 * 1024));
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Nothing yet: answering now (and closing) would reset the connection under the writer.
    expect(received()).toBe('');
    socket.write(body.subarray(2 * 1024 * 1024));
    const answer = parse(await closed);
    expect(answer.status).toBe(413);
    expect(answer.body).toEqual({ error: { code: 'payload_too_large', message: 'The request body is too large.' } });
    expect(answer.headers).toContain('connection: close');
  });

  it('a declared body far past the limit is refused at once, without reading it', async () => {
    const started = performance.now();
    // One byte of 512 MiB declared: waiting for the rest would hold the answer until the drain gives up (10 s).
    const answer = parse(await exchange(`POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${512 * 1024 * 1024}\r\n\r\n{`));
    expect(answer.status).toBe(413);
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
