import { describe, expect, it } from 'vitest';
import { adapterFor } from './index.js';

const sse = (data: unknown, event?: string) => `${event === undefined ? '' : `event: ${event}\n`}data: ${JSON.stringify(data)}\n\n`;

describe('OpenAI adapter', () => {
  const openai = adapterFor('openai');

  it('asks for stream usage and injects the credential and upstream model without mutating the client body', () => {
    const body = { model: 'alias', stream: true, messages: [] };
    const built = openai.buildRequest({ operation: 'chat', body, upstreamModel: 'gpt-x', apiKey: 'sk-1', stream: true, clientHeaders: {} });
    expect(built.path).toBe('/chat/completions');
    expect(built.body).toMatchObject({ model: 'gpt-x', stream_options: { include_usage: true } });
    expect(built.headers.authorization).toBe('Bearer sk-1');
    expect(body.model).toBe('alias');
    expect(openai.supports('messages')).toBe(false);
  });

  it('reads usage from JSON and drops the usage-only chunk only when the client did not ask', () => {
    expect(openai.parseUsage('chat', { usage: { prompt_tokens: 5, completion_tokens: 7, prompt_tokens_details: { cached_tokens: 2 } } })).toEqual({ inputTokens: 5, outputTokens: 7, cachedInputTokens: 2, audioInputTokens: 0, audioOutputTokens: 0, audioSeconds: 0 });
    // Audio models say how much of each side was audio.
    expect(openai.parseUsage('chat', { usage: { prompt_tokens: 17, completion_tokens: 108, prompt_tokens_details: { cached_tokens: 0, audio_tokens: 9 }, completion_tokens_details: { audio_tokens: 85 } } })).toMatchObject({ audioInputTokens: 9, audioOutputTokens: 85 });
    expect(openai.parseUsage('transcriptions', { usage: { type: 'tokens', input_tokens: 40, output_tokens: 12, input_token_details: { text_tokens: 4, audio_tokens: 36 } } })).toMatchObject({ inputTokens: 40, outputTokens: 12, audioInputTokens: 36 });
    const usageChunk = sse({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 4 } });
    const contentChunk = sse({ choices: [{ delta: { content: 'hi' } }], usage: null });
    const hidden = openai.streamUsage('chat', false);
    expect(hidden.onEvent(contentChunk)).toBe(true);
    expect(hidden.onEvent(usageChunk)).toBe(false);
    expect(hidden.usage()).toEqual({ inputTokens: 3, outputTokens: 4, cachedInputTokens: 0, audioInputTokens: 0, audioOutputTokens: 0, audioSeconds: 0 });
    const shown = openai.streamUsage('chat', true);
    expect(shown.onEvent(usageChunk)).toBe(true);
    expect(openai.streamUsage('chat', false).usage()).toBeNull();
  });

  it('tells the relay where usage may sit: an object value, with or without spaces, never `null` or quoted text', () => {
    const observer = openai.streamUsage('chat', true);
    const at = (text: string, from = 0): number => observer.find(Buffer.from(text), from);
    expect(at('data: {"usage":{"prompt_tokens":1}}')).toBe(7);
    expect(at('data: {"usage" :\n {"prompt_tokens":1}}')).toBe(7);
    expect(at('data: {"usage":null,"x":{"usage":{}}}')).toBe(25);
    expect(at('data: {"usage":{}}\n\ndata: {"usage":{}}', 8)).toBe(27);
    expect(at('data: {"usage":null}')).toBe(-1);
    expect(at('data: {"choices":[{"delta":{"content":"\\"usage\\":{"}}]}')).toBe(-1);
    expect(at('data: {"choices":[]}')).toBe(-1);
    expect(adapterFor('anthropic').streamUsage('messages', false).find(Buffer.from('data: {"type":"ping"}'), 0)).toBe(-1);
    expect(adapterFor('anthropic').streamUsage('messages', false).find(Buffer.from('data: {"usage":{}}'), 0)).toBe(7);
  });

  it('reads Responses usage from response.completed', () => {
    const observer = openai.streamUsage('responses', false);
    observer.onEvent(sse({ type: 'response.completed', response: { usage: { input_tokens: 9, output_tokens: 1, input_tokens_details: { cached_tokens: 0 } } } }, 'response.completed'));
    expect(observer.usage()).toEqual({ inputTokens: 9, outputTokens: 1, cachedInputTokens: 0, audioSeconds: 0 });
  });
});

describe('Anthropic adapter', () => {
  const anthropic = adapterFor('anthropic');

  it('uses x-api-key and a default anthropic-version; counts cache reads and writes as input', () => {
    const built = anthropic.buildRequest({ operation: 'messages', body: { model: 'a', max_tokens: 5 }, upstreamModel: 'claude-x', apiKey: 'k', stream: false, clientHeaders: {} });
    expect(built.headers).toMatchObject({ 'x-api-key': 'k', 'anthropic-version': '2023-06-01' });
    expect(built.headers.authorization).toBeUndefined();
    expect(anthropic.parseUsage('messages', { usage: { input_tokens: 10, output_tokens: 3, cache_read_input_tokens: 4, cache_creation_input_tokens: 1 } })).toEqual({
      inputTokens: 15,
      outputTokens: 3,
      cachedInputTokens: 4,
      cacheWriteInputTokens: 1,
      cacheWriteLongInputTokens: 0,
      audioSeconds: 0,
    });
  });

  it('splits cache writes by how long the entry is kept when the answer says, never past the writes reported', () => {
    const usage = (cacheCreation: unknown) => anthropic.parseUsage('messages', { usage: { input_tokens: 5, output_tokens: 1, cache_creation_input_tokens: 100, cache_creation: cacheCreation } });
    expect(usage({ ephemeral_5m_input_tokens: 40, ephemeral_1h_input_tokens: 60 })).toMatchObject({ inputTokens: 105, cacheWriteInputTokens: 40, cacheWriteLongInputTokens: 60 });
    expect(usage({ ephemeral_1h_input_tokens: 500 })).toMatchObject({ inputTokens: 105, cacheWriteInputTokens: 0, cacheWriteLongInputTokens: 100 });
    expect(usage('nonsense')).toMatchObject({ cacheWriteInputTokens: 100, cacheWriteLongInputTokens: 0 });
  });

  it('combines message_start and the cumulative message_delta of a stream', () => {
    const observer = anthropic.streamUsage('messages', false);
    observer.onEvent(sse({ type: 'message_start', message: { usage: { input_tokens: 12, output_tokens: 1 } } }, 'message_start'));
    expect(observer.onEvent(sse({ type: 'message_delta', usage: { output_tokens: 30 } }, 'message_delta'))).toBe(true);
    expect(observer.usage()).toEqual({ inputTokens: 12, outputTokens: 30, cachedInputTokens: 0, cacheWriteInputTokens: 0, cacheWriteLongInputTokens: 0, audioSeconds: 0 });
  });
});
