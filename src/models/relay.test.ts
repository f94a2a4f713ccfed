import Fastify, { type FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import type { SettleOutcome } from '../admission/types.js';
import { createLogger } from '../core/logger.js';
import { createHttpApp } from '../http/app.js';
import { openAiAdapter } from './providers/openai.js';
import type { Usage } from './pricing.js';
import { relayStream } from './relay.js';
import { UpstreamAbort, type BodySink, type UpstreamResponse } from './upstream.js';

/** A provider answer we drive by hand: it sends while the sink takes more, and waits for resume(). */
function fakeStream(totalEvents: number, event: (i: number) => string) {
  let sink: BodySink | null = null;
  let sent = 0;
  let pauses = 0;
  let discarded = false;
  const pump = (): void => {
    while (sink !== null && sent < totalEvents && !discarded) {
      const more = sink.chunk(Buffer.from(event(sent)));
      sent += 1;
      if (!more) {
        pauses += 1;
        return;
      }
    }
    if (sink !== null && sent === totalEvents && !discarded) {
      sent += 1;
      sink.end();
    }
  };
  const response: UpstreamResponse = {
    status: 200,
    headers: { 'content-type': 'text/event-stream' },
    read: () => Promise.reject(new Error('not used')),
    pipe: (s) => {
      sink = s;
      pump();
    },
    resume: () => setImmediate(pump),
    discard: () => {
      discarded = true;
    },
  };
  return { response, sent: () => Math.min(sent, totalEvents), pauses: () => pauses };
}

const chunkEvent = (i: number) => `data: {"id":"c","choices":[{"index":0,"delta":{"content":"${'x'.repeat(1000)}${i}"}}]}\n\n`;
const USAGE_EVENT = 'data: {"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5}}\n\n';

describe('stream relay', () => {
  let app: FastifyInstance | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  /** `clientGoneFirst`: the relay starts only after the client's connection has closed. */
  async function serve(response: UpstreamResponse, abort = new UpstreamAbort(), clientGoneFirst = false) {
    const ends: { usage: Usage | null; outcome: SettleOutcome | null }[] = [];
    app = Fastify();
    app.post('/stream', async (request, reply) => {
      if (clientGoneFirst) await new Promise((resolve) => request.raw.socket.once('close', resolve));
      relayStream(response, openAiAdapter('openai').streamUsage('chat', false), reply, abort, async (usage, outcome) => {
        ends.push({ usage, outcome });
      });
      return reply;
    });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    return { url, ends, abort };
  }

  it('a client that stops reading pauses the provider; reading again lets it finish, metered once', async () => {
    const total = 20_000;
    const fake = fakeStream(total + 1, (i) => (i === total ? USAGE_EVENT : chunkEvent(i)));
    const { url, ends } = await serve(fake.response);
    const answer = await request(`${url}/stream`, { method: 'POST' });
    // Read nothing for a while: the relay must stop asking the provider for more.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const whileStalled = fake.sent();
    expect(fake.pauses()).toBeGreaterThan(0);
    // ~20 MB of events in all; only socket buffers' worth may have gone while nobody read.
    expect(whileStalled).toBeLessThan(total / 2);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(fake.sent()).toBe(whileStalled);
    const text = await answer.body.text();
    expect(text.split('\n\n').filter((e) => e.startsWith('data:')).length).toBe(total);
    // The usage-only event was stripped for a client that did not ask, but counted.
    expect(text).not.toContain('"usage"');
    expect(ends).toEqual([{ usage: { inputTokens: 3, outputTokens: 5, cachedInputTokens: 0, audioInputTokens: 0, audioOutputTokens: 0, audioSeconds: 0 }, outcome: null }]);
  });

  it('an event that never ends is cut at the bound and settled unmetered, not held forever', async () => {
    const fake = fakeStream(20_000, () => `data: ${'y'.repeat(1000)}`);
    const { url, ends } = await serve(fake.response);
    const answer = await request(`${url}/stream`, { method: 'POST' });
    await answer.body.text();
    expect(ends).toEqual([{ usage: null, outcome: { kind: 'unmetered', reason: 'no_usage' } }]);
    expect(fake.sent()).toBeLessThan(20_000);
  });

  it('a client that goes away mid-stream is settled once as client_abort and the provider call is abandoned', async () => {
    const fake = fakeStream(100_000, chunkEvent);
    const { url, ends, abort } = await serve(fake.response);
    const controller = new AbortController();
    const answer = await request(`${url}/stream`, { method: 'POST', signal: controller.signal });
    answer.body.on('error', () => undefined);
    controller.abort();
    const deadline = Date.now() + 2000;
    while (ends.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(ends).toEqual([{ usage: null, outcome: { kind: 'unmetered', reason: 'client_abort' } }]);
    expect(abort.aborted).toBe(true);
  });

  it('a client gone before the relay starts is settled at once as client_abort, not left waiting for a drain that never comes', async () => {
    const fake = fakeStream(100_000, chunkEvent);
    const { url, ends, abort } = await serve(fake.response, new UpstreamAbort(), true);
    const controller = new AbortController();
    const answer = request(`${url}/stream`, { method: 'POST', signal: controller.signal }).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 50));
    controller.abort();
    await answer;
    const deadline = Date.now() + 2000;
    while (ends.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(ends).toEqual([{ usage: null, outcome: { kind: 'unmetered', reason: 'client_abort' } }]);
    expect(abort.aborted).toBe(true);
    expect(fake.sent()).toBeLessThan(100);
  });
});

describe('stream relay in the HTTP shell', () => {
  it('a stream that opens once a graceful close has begun says Connection: close, as every other answer then does', async () => {
    const { app: shell } = createHttpApp({
      logger: createLogger({ level: 'silent' }),
      bodyLimitBytes: 1024,
      trustedProxies: [],
      behindTls: false,
      authenticate: async () => ({ ok: true, principal: null }),
      readiness: async () => ({ ready: true, checks: {} }),
      metrics: new Registry(),
      version: 'test',
    });
    // The provider is still thinking when the close begins; the stream opens after.
    let release: () => void = () => undefined;
    let markWaiting: () => void = () => undefined;
    shell.post('/stream', { config: { portcullis: { auth: 'none', streaming: true } } }, async (request, reply) => {
      if (request.headers['x-wait'] === '1') {
        await new Promise<void>((resolve) => {
          release = resolve;
          markWaiting();
        });
      }
      relayStream(fakeStream(3, chunkEvent).response, openAiAdapter('openai').streamUsage('chat', false), reply, new UpstreamAbort(), async () => undefined);
      return reply;
    });
    const url = await shell.listen({ host: '127.0.0.1', port: 0 });
    try {
      const before = await request(`${url}/stream`, { method: 'POST' });
      await before.body.text();
      expect(before.headers.connection).toBe('keep-alive');

      const waiting = new Promise<void>((resolve) => (markWaiting = resolve));
      const during = request(`${url}/stream`, { method: 'POST', headers: { 'x-wait': '1' } });
      await waiting;
      const closing = shell.close();
      // The close begins in the framework's next turns (its preClose hook); wait for it, bounded.
      for (let turn = 0; turn < 200 && !shell.closing; turn += 1) await new Promise((resolve) => setTimeout(resolve, 5));
      expect(shell.closing).toBe(true);
      release();
      const answer = await during;
      expect(answer.headers.connection).toBe('close');
      expect((await answer.body.text()).split('\n\n').filter((e) => e.startsWith('data:')).length).toBe(3);
      await closing;
    } finally {
      await shell.close();
    }
  });
});
