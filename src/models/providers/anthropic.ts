/**
 * Anthropic Messages: `x-api-key` credential, `anthropic-version` header, usage split between
 * `message_start` (input, cache reads/writes) and `message_delta` (cumulative output).
 */
import { tokenCount, type Usage } from '../pricing.js';
import { eventData, usageKeyAt, isRecord, type BuildInput, type ProviderAdapter, type StreamObserver, type UpstreamRequest } from './types.js';

export const DEFAULT_ANTHROPIC_VERSION = '2023-06-01';

/** Anthropic's input_tokens excludes cache reads and writes; our input is all of them. */
function inputUsage(usage: Record<string, unknown>): { input: number; cached: number } {
  const cached = tokenCount(usage.cache_read_input_tokens);
  return { input: tokenCount(usage.input_tokens) + cached + tokenCount(usage.cache_creation_input_tokens), cached };
}

class MessagesStreamObserver implements StreamObserver {
  #input: { input: number; cached: number } | null = null;
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
    return { inputTokens: this.#input.input, outputTokens: this.#output, cachedInputTokens: this.#input.cached, audioSeconds: 0 };
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
    const input = inputUsage(json.usage);
    return { inputTokens: input.input, outputTokens: tokenCount(json.usage.output_tokens), cachedInputTokens: input.cached, audioSeconds: 0 };
  },
  streamUsage: () => new MessagesStreamObserver(),
};
