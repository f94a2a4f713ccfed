import Anthropic from '@anthropic-ai/sdk';
import OpenAI, { toFile } from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, tokensForCharacters, type Simulator } from './index.js';

const API_KEY = 'sim-test-key';
let sim: Simulator;
let openai: OpenAI;
let anthropic: Anthropic;

beforeAll(async () => {
  sim = await startSimulator({ apiKey: API_KEY, behaviour: { responseTokens: 12, streamChunks: 4 } });
  openai = new OpenAI({ apiKey: API_KEY, baseURL: `${sim.url}/v1`, maxRetries: 0 });
  anthropic = new Anthropic({ apiKey: API_KEY, baseURL: sim.url, maxRetries: 0 });
});

afterAll(async () => {
  await sim.close();
});

afterEach(() => {
  sim.reset();
});

const PROMPT = 'Say something about portcullises, please.';

describe('simulator: OpenAI chat completions', () => {
  it('answers plain chat with deterministic usage and records the request', async () => {
    const reply = await openai.chat.completions.create({ model: 'sim-chat', messages: [{ role: 'user', content: PROMPT }] });
    expect(reply.choices[0]?.message.content?.split(' ')).toHaveLength(12);
    expect(reply.choices[0]?.finish_reason).toBe('stop');
    expect(reply.usage).toEqual({ prompt_tokens: tokensForCharacters(PROMPT.length), completion_tokens: 12, total_tokens: tokensForCharacters(PROMPT.length) + 12 });
    const last = sim.lastRequest();
    expect(last?.path).toBe('/v1/chat/completions');
    expect(last?.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(last?.usage).toEqual({ promptTokens: tokensForCharacters(PROMPT.length), completionTokens: 12, reported: true });
    expect(last?.outcome).toBe('completed');
  });

  it('caps the completion at max_tokens with finish_reason length', async () => {
    const reply = await openai.chat.completions.create({ model: 'sim-chat', max_tokens: 5, messages: [{ role: 'user', content: PROMPT }] });
    expect(reply.choices[0]?.finish_reason).toBe('length');
    expect(reply.usage?.completion_tokens).toBe(5);
  });

  it('streams chunks and sends usage in the last chunk only when asked', async () => {
    const withUsage = await openai.chat.completions.create({
      model: 'sim-chat',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: PROMPT }],
    });
    const chunks = [];
    for await (const chunk of withUsage) chunks.push(chunk);
    const text = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');
    expect(text.split(' ')).toHaveLength(12);
    expect(chunks.at(-1)?.choices).toEqual([]);
    expect(chunks.at(-1)?.usage?.completion_tokens).toBe(12);
    expect(chunks.slice(0, -1).every((chunk) => chunk.usage === null)).toBe(true);
    // role chunk + 4 content chunks + finish chunk + usage chunk
    expect(chunks).toHaveLength(7);

    const without = await openai.chat.completions.create({ model: 'sim-chat', stream: true, messages: [{ role: 'user', content: PROMPT }] });
    const plain = [];
    for await (const chunk of without) plain.push(chunk);
    expect(plain.some((chunk) => chunk.usage !== undefined && chunk.usage !== null)).toBe(false);
    expect(sim.lastRequest()?.usage?.reported).toBe(false);
  });

  it('honours per-request x-sim headers', async () => {
    const reply = await openai.chat.completions.create(
      { model: 'sim-chat', messages: [{ role: 'user', content: PROMPT }] },
      { headers: { 'x-sim-tokens': '3', 'x-sim-latency-ms': '20' } },
    );
    expect(reply.usage?.completion_tokens).toBe(3);
  });

  it('streams with inter-chunk delay and records a client abort', async () => {
    sim.configure({ chunkDelayMs: 50, streamChunks: 12 });
    const stream = await openai.chat.completions.create({ model: 'sim-chat', stream: true, messages: [{ role: 'user', content: PROMPT }] });
    let seen = 0;
    // Leaving the loop early makes the SDK abort the underlying request.
    for await (const _chunk of stream) {
      seen += 1;
      if (seen === 3) break;
    }
    expect(seen).toBe(3);
    await waitFor(() => sim.lastRequest()?.outcome === 'aborted');
  });

  it('cuts a stream early without usage when asked to', async () => {
    const stream = await openai.chat.completions.create(
      { model: 'sim-chat', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: PROMPT }] },
      { headers: { 'x-sim-abort-after-chunks': '2' } },
    );
    const consume = async () => {
      for await (const _chunk of stream) { /* drain */ }
    };
    await expect(consume()).rejects.toThrow();
    expect(sim.lastRequest()?.outcome).toBe('cut');
    expect(sim.lastRequest()?.usage?.reported).toBe(false);
  });
});

describe('simulator: other OpenAI endpoints', () => {
  it('completions count the FIM suffix in the prompt', async () => {
    const reply = await openai.completions.create({ model: 'sim-chat', prompt: 'def add(a, b):', suffix: '    return c' });
    expect(reply.usage?.prompt_tokens).toBe(tokensForCharacters('def add(a, b):'.length + '    return c'.length));
    expect(reply.choices[0]?.text.length).toBeGreaterThan(0);
  });

  it('responses: JSON and streaming events', async () => {
    const reply = await openai.responses.create({ model: 'sim-chat', input: PROMPT });
    expect(reply.output_text.split(' ')).toHaveLength(12);
    expect(reply.usage?.input_tokens).toBe(tokensForCharacters(PROMPT.length));

    const stream = await openai.responses.create({ model: 'sim-chat', input: PROMPT, stream: true });
    const types: string[] = [];
    let completedTokens = 0;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.completed') completedTokens = event.response.usage?.output_tokens ?? 0;
    }
    expect(types[0]).toBe('response.created');
    expect(types.filter((type) => type === 'response.output_text.delta')).toHaveLength(4);
    expect(types.at(-1)).toBe('response.completed');
    expect(completedTokens).toBe(12);
  });

  it('embeddings in the SDK default (base64) and float encodings', async () => {
    const base64 = await openai.embeddings.create({ model: 'sim-embed', input: ['one', 'two'] });
    expect(base64.data).toHaveLength(2);
    expect(base64.data[0]?.embedding).toHaveLength(16);
    const floats = await openai.embeddings.create({ model: 'sim-embed', input: 'one', encoding_format: 'float', dimensions: 8 });
    expect(floats.data[0]?.embedding).toHaveLength(8);
    expect(floats.data[0]?.embedding[0]).toBeCloseTo(base64.data[0]?.embedding[0] ?? NaN, 3);
    expect(floats.usage.prompt_tokens).toBe(1);
  });

  it('transcribes a multipart upload, billing by duration', async () => {
    const audio = await toFile(Buffer.alloc(70_000), 'clip.wav', { type: 'audio/wav' });
    const reply = await openai.audio.transcriptions.create({ model: 'sim-whisper', file: audio });
    expect(reply.text.length).toBeGreaterThan(0);
    expect(sim.lastRequest()?.body).toMatchObject({ model: 'sim-whisper', fileBytes: 70_000 });
    expect(sim.lastRequest()?.usage?.audioSeconds).toBe(3);
  });

  it('lists models', async () => {
    const page = await openai.models.list();
    expect(page.data.map((model) => model.id)).toContain('sim-chat');
  });

  it('refuses a wrong key in the provider envelope', async () => {
    const wrong = new OpenAI({ apiKey: 'nope', baseURL: `${sim.url}/v1`, maxRetries: 0 });
    await expect(wrong.models.list()).rejects.toMatchObject({ status: 401 });
  });
});

describe('simulator: usage modes, limits and listing shapes', () => {
  it('adds usage to a stream that did not ask (always) and drops it everywhere (never)', async () => {
    sim.configure({ usage: 'always' });
    const stream = await openai.completions.create({ model: 'sim-chat', prompt: PROMPT, stream: true });
    let usage: number | undefined;
    for await (const chunk of stream) if (chunk.usage) usage = chunk.usage.completion_tokens;
    expect(usage).toBe(12);

    sim.configure({ usage: 'never' });
    const plain = await openai.chat.completions.create({ model: 'sim-chat', messages: [{ role: 'user', content: PROMPT }] });
    expect(plain.usage).toBeUndefined();
    expect(sim.lastRequest()?.usage).toMatchObject({ completionTokens: 12, reported: false });
  });

  it('lists models in the Anthropic shape for the Anthropic client', async () => {
    const page = await anthropic.models.list();
    expect(page.data.map((model) => model.id)).toContain('sim-claude');
    expect(page.data[0]?.type).toBe('model');
  });

  it('refuses an oversized body with 413 in the provider envelope', async () => {
    const small = await startSimulator({ maxJsonBytes: 1_000 });
    try {
      const response = await fetch(`${small.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'sim-chat', messages: [{ role: 'user', content: 'x'.repeat(2_000) }] }),
      });
      expect(response.status).toBe(413);
      expect(await response.json()).toMatchObject({ error: { type: 'invalid_request_error' } });
    } finally {
      await small.close();
    }
  });
});

describe('simulator: Anthropic messages', () => {
  it('answers plain messages with usage', async () => {
    const reply = await anthropic.messages.create({ model: 'sim-claude', max_tokens: 100, system: 'Be brief.', messages: [{ role: 'user', content: PROMPT }] });
    expect(reply.content[0]?.type).toBe('text');
    expect(reply.stop_reason).toBe('end_turn');
    expect(reply.usage.input_tokens).toBe(tokensForCharacters('Be brief.'.length + PROMPT.length));
    expect(reply.usage.output_tokens).toBe(12);
    // Depending on the SDK version the key travels as x-api-key or as a bearer token.
    const headers = sim.lastRequest()?.headers ?? {};
    expect(headers['x-api-key'] ?? headers.authorization).toMatch(new RegExp(`^(Bearer )?${API_KEY}$`));
  });

  it('streams the full event sequence with usage in message_delta', async () => {
    const stream = anthropic.messages.stream({ model: 'sim-claude', max_tokens: 7, messages: [{ role: 'user', content: PROMPT }] });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    const final = await stream.finalMessage();
    expect(types[0]).toBe('message_start');
    expect(types.at(-1)).toBe('message_stop');
    expect(types).toContain('message_delta');
    expect(final.usage.output_tokens).toBe(7);
    expect(final.stop_reason).toBe('max_tokens');
  });

  it('requires max_tokens like the provider', async () => {
    const response = await fetch(`${sim.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
      body: JSON.stringify({ model: 'sim-claude', messages: [] }),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
  });
});

describe('simulator: failure injection and control endpoint', () => {
  it('fails the next N requests, then recovers; SDK retries see it through', async () => {
    sim.configure({ failure: { mode: 500, count: 2 } });
    await expect(openai.chat.completions.create({ model: 'sim-chat', messages: [] })).rejects.toMatchObject({ status: 500 });
    await expect(anthropic.messages.create({ model: 'sim-claude', max_tokens: 5, messages: [] })).rejects.toMatchObject({ status: 500 });
    const ok = await openai.chat.completions.create({ model: 'sim-chat', messages: [] });
    expect(ok.choices).toHaveLength(1);

    sim.configure({ failure: { mode: 429, count: 2 } });
    const retrying = new OpenAI({ apiKey: API_KEY, baseURL: `${sim.url}/v1`, maxRetries: 2 });
    const retried = await retrying.chat.completions.create({ model: 'sim-chat', messages: [] });
    expect(retried.choices).toHaveLength(1);
    expect(sim.requests().map((request) => request.status)).toEqual([500, 500, 200, 429, 429, 200]);
  });

  it('fails an exact share of requests for a ratio', async () => {
    await control('POST', '/_sim/config', { failure: { mode: 429, ratio: 0.25 } });
    const statuses: number[] = [];
    for (let i = 0; i < 8; i += 1) {
      const response = await fetch(`${sim.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'sim-chat', messages: [] }),
      });
      statuses.push(response.status);
      await response.arrayBuffer();
    }
    expect(statuses.filter((status) => status === 429)).toHaveLength(2);
  });

  it('hangs until the client times out, and records the abort', async () => {
    const impatient = new OpenAI({ apiKey: API_KEY, baseURL: `${sim.url}/v1`, maxRetries: 0, timeout: 200 });
    await expect(
      impatient.chat.completions.create({ model: 'sim-chat', messages: [] }, { headers: { 'x-sim-fail': 'hang' } }),
    ).rejects.toThrow(/timed out/i);
    await waitFor(() => sim.lastRequest()?.outcome === 'aborted');
  });

  it('exposes config, requests and stats over HTTP and rejects bad config', async () => {
    await openai.models.list();
    const requests = (await control('GET', '/_sim/requests')) as { total: number; requests: { path: string }[] };
    expect(requests.requests.at(-1)?.path).toBe('/v1/models');
    expect(await control('POST', '/_sim/config', { latencyMs: -1 }, 400)).toHaveProperty('error');
    expect(await control('POST', '/_sim/config', { responseTokens: 3 })).toMatchObject({ behaviour: { responseTokens: 3 } });
    expect(await control('GET', '/_sim/stats')).toHaveProperty('maxRssBytes');
    await control('POST', '/_sim/reset');
    expect(sim.config().behaviour.responseTokens).toBe(12);
    expect(sim.requests()).toHaveLength(0);
  });
});

async function control(method: string, path: string, body?: unknown, expectStatus = 200): Promise<unknown> {
  const response = await fetch(`${sim.url}${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  expect(response.status).toBe(expectStatus);
  return response.json();
}

async function waitFor(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
