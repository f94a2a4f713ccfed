/**
 * OpenAI and every OpenAI-compatible server (OpenRouter, vLLM, Ollama…): same paths, same usage
 * fields, Bearer credential. Streams of chat and completions ask for usage with
 * `stream_options.include_usage`; when the client did not ask, the usage-only chunk is dropped.
 */
import { tokenCount, type Usage } from '../pricing.js';
import { eventData, usageObjectAt, isRecord, type BuildInput, type Operation, type ProviderAdapter, type StreamObserver, type UpstreamRequest } from './types.js';

const PATHS: Partial<Record<Operation, string>> = {
  chat: '/chat/completions',
  completions: '/completions',
  responses: '/responses',
  embeddings: '/embeddings',
  transcriptions: '/audio/transcriptions',
};

function detailsOf(value: unknown): Record<string, unknown> {
  return isRecord(value) ? value : {};
}

function chatUsage(usage: Record<string, unknown>): Usage {
  const input = detailsOf(usage.prompt_tokens_details);
  const output = detailsOf(usage.completion_tokens_details);
  return {
    inputTokens: tokenCount(usage.prompt_tokens),
    outputTokens: tokenCount(usage.completion_tokens),
    cachedInputTokens: tokenCount(input.cached_tokens),
    audioInputTokens: tokenCount(input.audio_tokens),
    audioOutputTokens: tokenCount(output.audio_tokens),
    audioSeconds: 0,
  };
}

function responsesUsage(usage: Record<string, unknown>): Usage {
  const details = isRecord(usage.input_tokens_details) ? usage.input_tokens_details : {};
  return {
    inputTokens: tokenCount(usage.input_tokens),
    outputTokens: tokenCount(usage.output_tokens),
    cachedInputTokens: tokenCount(details.cached_tokens),
    audioSeconds: 0,
  };
}

function transcriptionUsage(usage: Record<string, unknown>): Usage {
  if (usage.type === 'duration') {
    const seconds = typeof usage.seconds === 'number' && Number.isFinite(usage.seconds) && usage.seconds >= 0 ? usage.seconds : 0;
    return { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, audioSeconds: seconds };
  }
  // Token-billed transcription: the audio is input, and `input_token_details` says how much of it.
  return { inputTokens: tokenCount(usage.input_tokens), outputTokens: tokenCount(usage.output_tokens), cachedInputTokens: 0, audioInputTokens: tokenCount(detailsOf(usage.input_token_details).audio_tokens), audioSeconds: 0 };
}

function usageOf(operation: Operation, json: unknown): Usage | null {
  if (!isRecord(json) || !isRecord(json.usage)) return null;
  switch (operation) {
    case 'responses':
      return responsesUsage(json.usage);
    case 'transcriptions':
      return transcriptionUsage(json.usage);
    default:
      return chatUsage(json.usage);
  }
}

class ChatStreamObserver implements StreamObserver {
  #usage: Usage | null = null;
  constructor(private readonly clientWantsUsage: boolean) {}
  /** Only the final chunk carries a usage object; the others say `"usage":null` or nothing. */
  find(bytes: Buffer, from: number): number {
    return usageObjectAt(bytes, from);
  }
  onEvent(event: string): boolean {
    const data = eventData(event);
    const usage = usageOf('chat', data);
    if (usage === null) return true;
    this.#usage = usage;
    const usageOnly = isRecord(data) && Array.isArray(data.choices) && data.choices.length === 0;
    return this.clientWantsUsage || !usageOnly;
  }
  usage(): Usage | null {
    return this.#usage;
  }
}

class ResponsesStreamObserver implements StreamObserver {
  #usage: Usage | null = null;
  find(bytes: Buffer, from: number): number {
    return usageObjectAt(bytes, from);
  }
  onEvent(event: string): boolean {
    const data = eventData(event);
    if (isRecord(data) && isRecord(data.response)) {
      const usage = usageOf('responses', data.response);
      if (usage !== null) this.#usage = usage;
    }
    return true;
  }
  usage(): Usage | null {
    return this.#usage;
  }
}

export function openAiAdapter(kind: 'openai' | 'openai_compatible'): ProviderAdapter {
  return {
    kind,
    supports: (operation) => PATHS[operation] !== undefined,
    authHeaders: (apiKey): Record<string, string> => (apiKey === null ? {} : { authorization: `Bearer ${apiKey}` }),
    buildRequest(input: BuildInput): UpstreamRequest {
      const path = PATHS[input.operation];
      if (path === undefined) throw new Error(`operation ${input.operation} is not an OpenAI operation`);
      const body: Record<string, unknown> = { ...input.body, model: input.upstreamModel };
      if (input.stream && (input.operation === 'chat' || input.operation === 'completions')) {
        const options = isRecord(input.body.stream_options) ? input.body.stream_options : {};
        body.stream_options = { ...options, include_usage: true };
      }
      return {
        path,
        headers: { 'content-type': 'application/json', accept: input.stream ? 'text/event-stream' : 'application/json', ...(input.apiKey === null ? {} : { authorization: `Bearer ${input.apiKey}` }) },
        body,
      };
    },
    parseUsage: usageOf,
    streamUsage: (operation, clientWantsUsage) => (operation === 'responses' ? new ResponsesStreamObserver() : new ChatStreamObserver(clientWantsUsage)),
  };
}
