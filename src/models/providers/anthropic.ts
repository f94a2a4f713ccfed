/**
 * Anthropic Messages: `x-api-key` credential, `anthropic-version` header, usage split between
 * `message_start` (input, cache reads/writes) and `message_delta` (cumulative output).
 */
import { tokenCount, type Usage } from '../pricing.js';
import { eventData, usageKeyAt, isRecord, type BuildInput, type ProviderAdapter, type StreamObserver, type UpstreamRequest } from './types.js';

export const DEFAULT_ANTHROPIC_VERSION = '2023-06-01';

interface InputUsage {
  input: number;
  cached: number;
  written: number;
  writtenLong: number;
}

/**
 * Anthropic's input_tokens excludes cache reads and writes; our input is all of them. Writes are
 * split by how long the entry is kept when the answer says (`cache_creation`), else all short.
 */
function inputUsage(usage: Record<string, unknown>): InputUsage {
  const cached = tokenCount(usage.cache_read_input_tokens);
  const written = tokenCount(usage.cache_creation_input_tokens);
  const split = isRecord(usage.cache_creation) ? usage.cache_creation : null;
  const writtenLong = split === null ? 0 : Math.min(written, tokenCount(split.ephemeral_1h_input_tokens));
  return { input: tokenCount(usage.input_tokens) + cached + written, cached, written: written - writtenLong, writtenLong };
}

function usageOf(input: InputUsage, outputTokens: number): Usage {
  return { inputTokens: input.input, outputTokens, cachedInputTokens: input.cached, cacheWriteInputTokens: input.written, cacheWriteLongInputTokens: input.writtenLong, audioSeconds: 0 };
}

class MessagesStreamObserver implements StreamObserver {
  #input: InputUsage | null = null;
  #output: number | null = null;
  find(bytes: Buffer, from: number): number {
    return usageKeyAt(bytes, from);
  }
  onEvent(event: string): boolean {
    const data = eventData(event);
    if (!isRecord(data)) return true;
    if (data.type === 'message_start' && isRecord(data.message) && isRecord(data.message.usage)) {
      this.#input = inputUsage(data.message.usage);
      this.#output = tokenCount(data.message.usage.output_tokens);
    } else if (data.type === 'message_delta' && isRecord(data.usage)) {
      this.#output = tokenCount(data.usage.output_tokens);
      // Newer API versions repeat input counts in the delta; take them when present.
      if (typeof data.usage.input_tokens === 'number') this.#input = inputUsage(data.usage);
    }
    return true;
  }
  usage(): Usage | null {
    if (this.#input === null || this.#output === null) return null;
    return usageOf(this.#input, this.#output);
  }
}

export const anthropicAdapter: ProviderAdapter = {
  kind: 'anthropic',
  supports: (operation) => operation === 'messages',
  authHeaders: (apiKey): Record<string, string> => (apiKey === null ? {} : { 'x-api-key': apiKey }),
  buildRequest(input: BuildInput): UpstreamRequest {
    if (input.operation !== 'messages') throw new Error(`operation ${input.operation} is not an Anthropic operation`);
    return {
      path: '/messages',
      headers: {
        'content-type': 'application/json',
        accept: input.stream ? 'text/event-stream' : 'application/json',
        'anthropic-version': input.clientHeaders['anthropic-version'] ?? DEFAULT_ANTHROPIC_VERSION,
        ...(input.clientHeaders['anthropic-beta'] === undefined ? {} : { 'anthropic-beta': input.clientHeaders['anthropic-beta'] }),
        ...(input.apiKey === null ? {} : { 'x-api-key': input.apiKey }),
      },
      body: { ...input.body, model: input.upstreamModel },
    };
  },
  parseUsage(_operation, json) {
    if (!isRecord(json) || !isRecord(json.usage)) return null;
    return usageOf(inputUsage(json.usage), tokenCount(json.usage.output_tokens));
  },
  streamUsage: () => new MessagesStreamObserver(),
};
