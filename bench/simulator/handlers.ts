/**
 * Turns one parsed provider request into a Reply. Pure apart from a bounded render cache: the same
 * request shape (protocol, model, token counts, chunking, usage) always renders the same bytes, so
 * the benchmark pays for rendering once per shape, not once per request.
 */
import { anthropicError, messagesJson, messagesStream } from './anthropic.js';
import type { Behaviour } from './behaviour.js';
import {
  chatJson,
  chatStream,
  completionJson,
  completionStream,
  embeddingsJson,
  openAiError,
  responsesJson,
  responsesStream,
  type TextRenderInput,
} from './openai.js';
import type { JsonReply, Reply } from './reply.js';
import { completionFor, completionPieces, promptTokensFor, type Protocol } from './usage.js';

export type TextProtocol = Exclude<Protocol, 'embeddings'>;

const MAX_MODEL_LENGTH = 256;
const MAX_EMBEDDING_INPUTS = 2_048;
const CACHE_LIMIT = 1_024;
const cache = new Map<string, Reply>();

function cached(key: string, render: () => Reply): Reply {
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const reply = render();
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(key, reply);
  return reply;
}

/** A provider-shaped client error for the protocol the caller speaks. */
export function errorFor(protocol: Protocol | 'models-anthropic' | 'other', status: number, message: string): JsonReply {
  return protocol === 'messages' || protocol === 'models-anthropic' ? anthropicError(status, message) : openAiError(status, message);
}

function modelOf(protocol: Protocol, body: Record<string, unknown>): string | Reply {
  const model = body.model;
  if (typeof model !== 'string' || model.length === 0 || model.length > MAX_MODEL_LENGTH) {
    return errorFor(protocol, 400, 'model: a string of 1 to 256 characters is required');
  }
  return model;
}

function isStream(body: Record<string, unknown>): boolean {
  return body.stream === true;
}

function usageRequested(body: Record<string, unknown>): boolean {
  const options = body.stream_options;
  return typeof options === 'object' && options !== null && (options as Record<string, unknown>).include_usage === true;
}

/** Renders chat, completions, responses or messages. */
export function renderText(protocol: TextProtocol, body: Record<string, unknown>, behaviour: Behaviour, created: number): Reply {
  const model = modelOf(protocol, body);
  if (typeof model !== 'string') return model;
  if (protocol === 'messages' && typeof body.max_tokens !== 'number') {
    return errorFor(protocol, 400, 'max_tokens: Field required');
  }
  const stream = isStream(body);
  const promptTokens = promptTokensFor(protocol, body);
  const completion = completionFor(behaviour.responseTokens, body);
  const chunks = stream ? behaviour.streamChunks : 1;
  const asked = usageRequested(body);
  // Only OpenAI chat/completions streams make usage opt-in; elsewhere the protocol always carries it.
  const optIn = stream && (protocol === 'chat' || protocol === 'completions');
  const withUsage = behaviour.usage === 'never' ? false : behaviour.usage === 'always' || !optIn || asked;
  const maxOutput = typeof body.max_output_tokens === 'number' ? body.max_output_tokens : null;
  const key = `${protocol}|${stream}|${model}|${promptTokens}|${completion.tokens}|${completion.truncated}|${chunks}|${withUsage}|${asked}|${maxOutput}`;
  return cached(key, () => {
    const input: TextRenderInput = {
      model,
      created,
      promptTokens,
      completion,
      pieces: completionPieces(completion.tokens, chunks),
      withUsage,
    };
    switch (protocol) {
      case 'chat':
        return stream ? chatStream(input, asked) : chatJson(input);
      case 'completions':
        return stream ? completionStream(input) : completionJson(input);
      case 'responses':
        return stream ? responsesStream(input, maxOutput) : responsesJson(input, maxOutput);
      case 'messages':
        return stream ? messagesStream(input) : messagesJson(input);
    }
  });
}

function embeddingInputCount(input: unknown): number {
  if (typeof input === 'string') return 1;
  if (!Array.isArray(input) || input.length === 0) return 0;
  // A flat array of numbers is one tokenised input; otherwise each element is one input.
  return input.every((item) => typeof item === 'number') ? 1 : input.length;
}

export function renderEmbeddings(body: Record<string, unknown>, behaviour: Behaviour): Reply {
  const model = modelOf('embeddings', body);
  if (typeof model !== 'string') return model;
  const inputs = embeddingInputCount(body.input);
  if (inputs === 0 || inputs > MAX_EMBEDDING_INPUTS) {
    return errorFor('embeddings', 400, 'input: a non-empty string or array of at most 2048 items is required');
  }
  const requested = body.dimensions;
  const dimensions = typeof requested === 'number' && Number.isInteger(requested) && requested >= 1 && requested <= 4_096
    ? requested
    : behaviour.embeddingDimensions;
  const base64 = body.encoding_format === 'base64';
  const promptTokens = promptTokensFor('embeddings', body);
  const withUsage = behaviour.usage !== 'never';
  const key = `embeddings|${model}|${inputs}|${dimensions}|${base64}|${promptTokens}|${withUsage}`;
  return cached(key, () => embeddingsJson(model, inputs, dimensions, base64, promptTokens, withUsage));
}
