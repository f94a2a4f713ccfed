/**
 * The floor of a model gateway in Node on this machine: Fastify in front, undici's dispatch behind,
 * and nothing else — no authentication, admission, metering, metrics or headers. It parses the
 * client's JSON body and sets the upstream model (as any gateway must), relays a JSON answer whole
 * and an event stream chunk by chunk. The model-gateway scenario measures it side by side with
 * Portcullis so the report shows how much of the distance to direct is Node's own.
 *
 * `node dist/bench/floor-proxy.js <upstream origin>` prints `{"url": …}` once listening.
 */
import type { IncomingHttpHeaders } from 'node:http';
import Fastify from 'fastify';
import { Agent, type Dispatcher } from 'undici';

const upstream = new URL(process.argv[2] ?? '');
if (upstream.protocol !== 'http:') throw new Error('usage: floor-proxy <http upstream origin>');
const agent = new Agent({ connections: 512, keepAliveTimeout: 30_000 });
const app = Fastify();

app.post('/v1/chat/completions', (request, reply) => {
  const body = { ...(request.body as Record<string, unknown>), model: 'sim-chat' };
  const chunks: Buffer[] = [];
  let streaming = false;
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart() {
      // Nothing to keep: the floor never aborts a call.
    },
    onResponseStart(_controller, status: number, headers: IncomingHttpHeaders) {
      const type = String(headers['content-type'] ?? 'application/json');
      streaming = type.startsWith('text/event-stream');
      if (!streaming) {
        reply.code(status).type(type);
        return;
      }
      reply.hijack();
      reply.raw.writeHead(status, { 'content-type': type, 'cache-control': 'no-cache' });
    },
    onResponseData(_controller, chunk: Buffer) {
      if (streaming) reply.raw.write(chunk);
      else chunks.push(chunk);
    },
    onResponseEnd() {
      if (streaming) reply.raw.end();
      else void reply.send(Buffer.concat(chunks));
    },
    onResponseError() {
      if (streaming) reply.raw.destroy();
      else void reply.code(502).send({ error: 'upstream failed' });
    },
  };
  agent.dispatch({ origin: upstream.origin, path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }, handler);
});

await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
if (address === null || typeof address === 'string') throw new Error('no TCP address');
console.log(JSON.stringify({ url: `http://127.0.0.1:${address.port}` }));
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void app.close().then(() => process.exit(0)));
