/**
 * The official `openai` and `@anthropic-ai/sdk` clients pointed at Portcullis in front of the
 * provider simulator: every endpoint, plain and streamed, their error cases, and metering that
 * equals the simulator's own usage exactly.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { costMicros } from '../../src/models/index.js';
import { MANAGED_KEY, PRICE, eventually, startRig, usageSince, usageTotals, type Rig } from './harness.js';

let rig: Rig;
let openai: OpenAI;
let anthropic: Anthropic;

beforeAll(async () => {
  rig = await startRig();
  openai = new OpenAI({ apiKey: 'pk-member', baseURL: `${rig.url}/v1`, maxRetries: 0 });
  anthropic = new Anthropic({ apiKey: 'pk-member', baseURL: rig.url, maxRetries: 0 });
}, 180_000);

afterAll(async () => {
  await rig.close();
});


function lastSettlement() {
  const last = rig.settlements[rig.settlements.length - 1];
  if (last === undefined) throw new Error('nothing settled');
  return last;
}

describe('OpenAI SDK through Portcullis', () => {
  it('chat completion: answer relayed, managed key injected upstream, usage and cost recorded exactly', async () => {
    const before = await usageTotals(rig);
    const { data, response } = await openai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Hello there, simulator!' }] }).withResponse();
    expect(data.choices[0]?.message.content).toBeTruthy();
    const upstream = rig.primary.lastRequest();
    expect(upstream?.headers.authorization).toBe(`Bearer ${MANAGED_KEY}`);
    expect((upstream?.body as { model: string } | undefined)?.model).toBe('sim-chat');
    const simUsage = upstream?.usage;
    expect(data.usage?.prompt_tokens).toBe(simUsage?.promptTokens);
    const requestId = response.headers.get('x-request-id') ?? '';
    const expected = costMicros({ inputTokens: simUsage?.promptTokens ?? -1, outputTokens: simUsage?.completionTokens ?? -1, cachedInputTokens: 0, audioSeconds: 0 }, PRICE);
    expect(await usageSince(rig, before)).toEqual({
      requests: 1,
      inputTokens: simUsage?.promptTokens,
      outputTokens: simUsage?.completionTokens,
      cachedInputTokens: 0,
      costMicros: expected,
      unmeteredRequests: 0,
    });
    expect(lastSettlement()).toEqual({ requestId, outcome: { kind: 'success', actualMicros: expected, actualTokens: (simUsage?.promptTokens ?? 0) + (simUsage?.completionTokens ?? 0) } });
  });

  it('streaming chat: usage is asked for upstream, stripped for a client that did not ask, and metered exactly', async () => {
    const before = await usageTotals(rig);
    const { data: stream } = await openai.chat.completions.create({ model: 'chat', stream: true, messages: [{ role: 'user', content: 'Stream me something' }] }).withResponse();
    let text = '';
    let sawUsage = false;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) sawUsage = true;
    }
    expect(text.length).toBeGreaterThan(0);
    expect(sawUsage).toBe(false);
    const upstream = rig.primary.lastRequest();
    expect((upstream?.body as { stream_options?: { include_usage?: boolean } } | undefined)?.stream_options?.include_usage).toBe(true);
    const metered = await usageSince(rig, before);
    expect(metered).toMatchObject({ requests: 1, inputTokens: upstream?.usage?.promptTokens, outputTokens: upstream?.usage?.completionTokens, unmeteredRequests: 0 });
    expect(metered.costMicros).toBe(costMicros({ inputTokens: upstream?.usage?.promptTokens ?? -1, outputTokens: upstream?.usage?.completionTokens ?? -1, cachedInputTokens: 0, audioSeconds: 0 }, PRICE));
  });

  it('streaming chat with include_usage keeps the usage chunk for the client', async () => {
    const stream = await openai.chat.completions.create({ model: 'chat', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'usage please' }] });
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) usage = chunk.usage ?? usage;
    expect(usage?.completion_tokens).toBe(rig.primary.lastRequest()?.usage?.completionTokens);
  });

  it('completions with a FIM suffix', async () => {
    const completion = await openai.completions.create({ model: 'chat', prompt: 'def add(a, b):', suffix: '\n\nprint(add(1, 2))', max_tokens: 8 });
    expect(completion.choices[0]?.text).toBeTruthy();
    expect((rig.primary.lastRequest()?.body as { suffix?: string } | undefined)?.suffix).toBe('\n\nprint(add(1, 2))');
    expect(completion.usage?.completion_tokens).toBe(8);
  });

  it('responses, plain and streamed', async () => {
    const response = await openai.responses.create({ model: 'chat', input: 'Say hi' });
    expect(response.output_text.length).toBeGreaterThan(0);
    const stream = await openai.responses.create({ model: 'chat', input: 'Say hi as a stream', stream: true });
    let completed = false;
    for await (const event of stream) if (event.type === 'response.completed') completed = true;
    expect(completed).toBe(true);
    const last = lastSettlement().outcome;
    expect(last.kind).toBe('success');
  });

  it('Prometheus counts each call\'s tokens and cost per model, exactly', async () => {
    const value = async (name: string, labels: Record<string, string>): Promise<number> => {
      const metric = (await rig.metrics.getMetricsAsJSON()).find((m) => m.name === name) as { values?: { labels: Record<string, string>; value: number }[] } | undefined;
      return metric?.values?.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0;
    };
    const read = async () => ({
      input: await value('portcullis_model_tokens_total', { model: 'chat', direction: 'input' }),
      output: await value('portcullis_model_tokens_total', { model: 'chat', direction: 'output' }),
      cost: await value('portcullis_model_cost_micros_total', { model: 'chat' }),
      success: await value('portcullis_model_requests_total', { model: 'chat', outcome: 'success' }),
    });
    const before = await read();
    await openai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'count me' }] });
    const usage = rig.primary.lastRequest()?.usage;
    const after = await read();
    expect(after.input - before.input).toBe(usage?.promptTokens);
    expect(after.output - before.output).toBe(usage?.completionTokens);
    expect(after.cost - before.cost).toBe(costMicros({ inputTokens: usage?.promptTokens ?? -1, outputTokens: usage?.completionTokens ?? -1, cachedInputTokens: 0, audioSeconds: 0 }, PRICE));
    expect(after.success - before.success).toBe(1);
  });

  it('embeddings', async () => {
    const result = await openai.embeddings.create({ model: 'embed', input: ['one', 'two'] });
    expect(result.data).toHaveLength(2);
    expect(result.usage.prompt_tokens).toBe(rig.primary.lastRequest()?.usage?.promptTokens);
  });

  it('transcription (multipart upload) is forwarded with the upstream model name and billed by duration', async () => {
    const audio = Buffer.alloc(64_000, 1);
    const before = await usageTotals(rig);
    const { data } = await openai.audio.transcriptions.create({ model: 'whisper', file: await toFile(audio, 'clip.wav') }).withResponse();
    expect(data.text.length).toBeGreaterThan(0);
    const upstream = rig.primary.lastRequest();
    expect((upstream?.body as { model: string; fileBytes: number } | undefined)?.model).toBe('sim-whisper');
    expect((upstream?.body as { fileBytes: number } | undefined)?.fileBytes).toBe(64_000);
    expect(await usageSince(rig, before)).toMatchObject({ requests: 1, costMicros: (upstream?.usage?.audioSeconds ?? -1) * 100, unmeteredRequests: 0 });
  });

  it('models lists what this caller may use', async () => {
    const page = await openai.models.list();
    const ids = page.data.map((model) => model.id).sort();
    expect(ids).toEqual(['chat', 'chat-backup', 'claude', 'embed', 'free-chat', 'whisper']);
  });

  it('errors arrive in the OpenAI envelope with the stable code', async () => {
    await expect(openai.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
    const badKey = new OpenAI({ apiKey: 'pk-wrong', baseURL: `${rig.url}/v1`, maxRetries: 0 });
    await expect(badKey.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 401, code: 'invalid_token' });
    await expect(openai.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 404 });
  });
});

describe('Anthropic SDK through Portcullis', () => {
  it('messages: x-api-key accepted as the Portcullis credential; upstream gets the managed key', async () => {
    const before = await usageTotals(rig);
    const { data } = await anthropic.messages.create({ model: 'claude', max_tokens: 50, messages: [{ role: 'user', content: 'Hello Claude' }] }).withResponse();
    expect(data.content[0]?.type).toBe('text');
    const upstream = rig.primary.lastRequest();
    expect(upstream?.headers['x-api-key']).toBe(MANAGED_KEY);
    expect(upstream?.headers['anthropic-version']).toBeTruthy();
    expect(await usageSince(rig, before)).toMatchObject({ requests: 1, inputTokens: upstream?.usage?.promptTokens, outputTokens: upstream?.usage?.completionTokens, unmeteredRequests: 0 });
  });

  it('streaming messages are metered from message_start and message_delta', async () => {
    const stream = anthropic.messages.stream({ model: 'claude', max_tokens: 50, messages: [{ role: 'user', content: 'Stream please' }] });
    const final = await stream.finalMessage();
    expect(final.content[0]?.type).toBe('text');
    const upstream = rig.primary.lastRequest();
    await eventually(() => lastSettlement().outcome.kind === 'success');
    const outcome = lastSettlement().outcome;
    expect(outcome).toMatchObject({ kind: 'success', actualTokens: (upstream?.usage?.promptTokens ?? 0) + (upstream?.usage?.completionTokens ?? 0) });
  });

  it('errors arrive in the Anthropic envelope', async () => {
    await expect(anthropic.messages.create({ model: 'nope', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 404, error: { type: 'error', error: { type: 'not_found_error', code: 'model_not_found' } } });
    const wrong = new Anthropic({ apiKey: 'pk-wrong', baseURL: rig.url, maxRetries: 0 });
    await expect(wrong.messages.create({ model: 'claude', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 401, error: { error: { type: 'authentication_error' } } });
  });
});

describe('usage API', () => {
  it('groups an org’s usage by model and day for an admin, refuses a member, hides other orgs', async () => {
    await rig.service.usage.flush();
    const ok = await fetch(`${rig.url}/api/orgs/org_models_test/usage?groupBy=model,day`, { headers: { authorization: 'Bearer pk-admin' } });
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as { data: { model: string; requests: number; costMicros: number }[] };
    expect(body.data.find((row) => row.model === 'chat')?.requests).toBeGreaterThan(0);
    const member = await fetch(`${rig.url}/api/orgs/org_models_test/usage`, { headers: { authorization: 'Bearer pk-member' } });
    expect(member.status).toBe(403);
    const other = await fetch(`${rig.url}/api/orgs/org_other/usage`, { headers: { authorization: 'Bearer pk-admin' } });
    expect(other.status).toBe(404);
  });
});
